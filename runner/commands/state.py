"""``qfrun state list|pull|push|unlock``: inspect and recover a pipeline's state, as ``terraform state`` does.

They work on whichever backend the pipeline's state is in (the local file or BOS: ``--state``,
``QFRUN_STATE`` or the pipeline's ``state:``), so moving a state is ``pull`` from one and ``push`` to the
other; docs/state.md walks through it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runner.commands.options import PIPELINE, STATE, TARGET
from runner.errors import StateError

if TYPE_CHECKING:
    from runner.state.backend import StateBackend


def _backend(pipeline: Path, state_path: Path | None, target: str | None) -> StateBackend:
    from runner.pipeline.spec import load_pipeline
    from runner.state.connect import open_backend

    loaded = load_pipeline(pipeline, check_files=False, allow_env=None, target=target)
    return open_backend(loaded, state_path, notify=lambda line: click.echo(line, err=True))


def _stages(count: int) -> str:
    return f"{count} stage{'s' if count != 1 else ''}"


@click.group(name="state")
def command() -> None:
    """Inspect and recover a pipeline's state (local file or BOS)."""


@command.command(name="list")
@PIPELINE
@STATE
@TARGET
def list_stages(pipeline: Path, state_path: Path | None, target: str | None) -> None:
    """List the stages the state records: id, status, fingerprint and task."""
    backend = _backend(pipeline, state_path, target)
    state = backend.read()
    click.echo(f"# {backend.where}: generation {state.generation}, {_stages(len(state.stages))}")
    width = max((len(stage_id) for stage_id in state.stages), default=5)
    for stage_id, record in state.stages.items():
        task = (record.task or {}).get("task_id", "")
        fingerprint = record.fingerprint[:12] or "-"
        click.echo(f"{stage_id:<{width}}  {record.status.value:<9}  {fingerprint:<12}  {task}".rstrip())


@command.command(name="pull")
@PIPELINE
@STATE
@TARGET
def pull(pipeline: Path, state_path: Path | None, target: str | None) -> None:
    """Print the state as one JSON snapshot (save it to keep a copy or to move the state)."""
    backend = _backend(pipeline, state_path, target)
    sys.stdout.buffer.write(backend.read().snapshot())


@command.command(name="push")
@PIPELINE
@click.argument("snapshot", type=click.Path(dir_okay=False, path_type=Path))
@STATE
@TARGET
@click.option("--force", is_flag=True, help="Replace the state even with an older generation.")
def push(pipeline: Path, snapshot: Path, state_path: Path | None, target: str | None, force: bool) -> None:
    """Replace the state with SNAPSHOT (a `qfrun state pull` output, or a local .state.json), locked."""
    from runner.state.file import MAX_STATE_BYTES

    try:
        with snapshot.open("rb") as handle:
            data = handle.read(MAX_STATE_BYTES + 1)
    except OSError as error:
        raise StateError(f"The snapshot {snapshot} cannot be read: {error.strerror}.") from None
    backend = _backend(pipeline, state_path, target)
    state = backend.replace(data, source=str(snapshot), force=force)
    click.echo(
        f"Pushed {snapshot} to {backend.where}: generation {state.generation}, {_stages(len(state.stages))}."
    )


@command.command(name="unlock")
@PIPELINE
@STATE
@TARGET
@click.option("--force", is_flag=True, help="Break the lock even if it has not expired yet.")
def unlock(pipeline: Path, state_path: Path | None, target: str | None, force: bool) -> None:
    """Break the lock a crashed run left on the state (one that has expired, or any with --force)."""
    backend = _backend(pipeline, state_path, target)
    click.echo(backend.unlock(force=force))
