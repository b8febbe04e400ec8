"""``qfrun destroy``: release what a pipeline keeps running on the platform, as ``terraform destroy`` does.

What costs money while it exists is a deployed service (Qianfan bills its compute until it is released with
ReleaseComputeUnit [S5]) and a task still queued or running. ``destroy`` finds both in the state file, shows
what it will do, asks unless ``--yes``, then releases each service and stops each task, and records that in
the state: the stage's record is cleared with the reason, so the next ``plan`` shows it as to be run. Model
versions and finished results are kept (they cost nothing to keep and later runs reuse them). A second
``destroy`` finds nothing left and does nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from runner.commands.options import PIPELINE, STATE, TARGET
from runner.errors import PlatformNotFound, UsageError
from runner.pipeline import dag
from runner.pipeline.spec import Pipeline, load_pipeline
from runner.platform.protocol import Platform, TaskKind, TaskRef
from runner.state.connect import open_backend
from runner.state.file import StateFile
from runner.state.records import StageRecord, StageStatus

RELEASE, STOP = "release", "stop"


@dataclass(frozen=True)
class Teardown:
    """One thing ``destroy`` ends: a stage's service to release or its unfinished task to stop."""

    stage_id: str
    action: str  # RELEASE or STOP
    ref: TaskRef
    detail: str

    def describe(self) -> str:
        noun = (
            "service"
            if self.ref.kind is TaskKind.SERVICE
            else self.ref.kind.value.replace("_", " ") + " task"
        )
        verb = "release" if self.action == RELEASE else "stop"
        return f"{self.stage_id}: {verb} {noun} {self.ref.task_id}{self.detail}"


def teardowns(pipeline: Pipeline, state: StateFile, select: Sequence[str] = ()) -> list[Teardown]:
    """What the state says is still alive on the platform for the selected stages, in pipeline order."""
    chosen = dag.select(pipeline.graph, select)
    found: list[Teardown] = []
    for stage_id in dag.topological(pipeline.graph):
        record = state.stages.get(stage_id)
        if stage_id not in chosen or record is None or not record.task:
            continue
        task = record.task
        ref = TaskRef(
            TaskKind(task["kind"]), task["task_id"], task.get("name", ""), task.get("instance_id", "")
        )
        if ref.kind is TaskKind.SERVICE:
            # A service whose smoke test failed is up too (the stage failed after the create succeeded).
            url = record.outputs.get("url") or ""
            found.append(Teardown(stage_id, RELEASE, ref, f" ({url})" if url else ""))
        elif record.status in (StageStatus.SUBMITTED, StageStatus.RUNNING):
            found.append(Teardown(stage_id, STOP, ref, " (still running)"))
    return found


def destroy(
    path: Path,
    *,
    select: Sequence[str],
    state_path: Path | None,
    yes: bool,
    open_platform: Callable[[Pipeline], Platform],
    echo: Callable[[str], None],
    target: str | None = None,
) -> int:
    """Release and stop what ``teardowns`` finds; returns how many were ended."""
    pipeline = load_pipeline(path, check_files=False, allow_env=None, target=target)
    command = "qfrun destroy " + str(path)
    with open_backend(pipeline, state_path, notify=echo).hold(command) as state:
        todo = teardowns(pipeline, state, select)
        if not todo:
            echo(f"Nothing to destroy: no service or running task of {pipeline.name} is recorded.")
            return 0
        echo(f"Destroy plan for {pipeline.name} on {_where(pipeline)}:")
        for item in todo:
            echo(f"  - {item.describe()}")
        echo("  Model versions and finished results are kept.")
        _confirm(len(todo), yes)
        platform = open_platform(pipeline)
        try:
            for item in todo:
                _end(platform, item, echo)
                state.record(item.stage_id, _cleared(item), durable=True)
        finally:
            close = getattr(platform, "close", None)
            if callable(close):
                close()
    echo(f"Destroyed {len(todo)}; `qfrun plan {path}` now shows what a run would create again.")
    return len(todo)


def _where(pipeline: Pipeline) -> str:
    kind = pipeline.platform_spec.name
    return f"{kind} (target {pipeline.target})" if pipeline.targets_declared else kind


def _confirm(count: int, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"destroy would end {count} platform resource{'s' if count != 1 else ''}; without a terminal to "
            "confirm, pass --yes."
        )
    click.confirm("Destroy them?", abort=True, err=True)


def _end(platform: Platform, item: Teardown, echo: Callable[[str], None]) -> None:
    try:
        platform.cancel_task(item.ref)
    except PlatformNotFound:
        # Gone already (released in the console, or the platform forgot it): the end state is reached.
        echo(f"  {item.stage_id}: {item.ref.task_id} was already gone")
        return
    echo(f"  {item.stage_id}: {'released' if item.action == RELEASE else 'stopped'} {item.ref.task_id}")


def _cleared(item: Teardown) -> StageRecord:
    """The stage's record after destroy: nothing on the platform, nothing up to date, the reason kept."""
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    what = "released" if item.action == RELEASE else "stopped"
    return StageRecord(
        status=StageStatus.PENDING, reason=f"{item.ref.task_id} {what} by qfrun destroy at {when}"
    )


@click.command(name="destroy")
@PIPELINE
@click.option(
    "--select",
    "-s",
    "select",
    multiple=True,
    metavar="SELECTOR",
    help="Stages whose resources to end: x, +x, x+ (default: every stage); repeatable.",
)
@STATE
@TARGET
@click.option("--yes", "-y", is_flag=True, help="Do not ask before releasing services and stopping tasks.")
def command(
    pipeline: Path, select: tuple[str, ...], state_path: Path | None, target: str | None, yes: bool
) -> None:
    """Release PIPELINE's services and stop its running tasks; model versions are kept."""
    from runner.run.connect import open_platform

    destroy(
        pipeline,
        select=select,
        state_path=state_path,
        yes=yes,
        open_platform=lambda loaded: open_platform(
            loaded.platform, notify=lambda line: click.echo(line, err=True), pipeline_file=loaded.path
        ),
        echo=lambda line: click.echo(line, err=True),
        target=target,
    )
