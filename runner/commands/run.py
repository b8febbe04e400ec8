"""``qfrun run``: validate, lock the state, confirm cost on Qianfan, execute, summarise."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import click

from runner.commands.options import ALLOW_ENV, ALLOW_PATH, PIPELINE, refresh_options, selection_options
from runner.errors import WAITING_EXIT_CODE, InterruptedRun, PlatformError, RunFailedError, UsageError
from runner.pipeline.spec import Pipeline, StageSpec, load_pipeline
from runner.platform.protocol import Inventory
from runner.render.progress import LiveProgress, PlainProgress
from runner.render.report import build_report, default_report_folder, write_reports
from runner.run import saved_plan
from runner.run.executor import (
    FAILED,
    NOT_STARTED,
    SKIPPED,
    SUCCEEDED,
    UP_TO_DATE,
    WAITING,
    Executor,
    RunOptions,
    RunSummary,
)
from runner.run.plan import Plan, make_plan
from runner.run.refresh import Drift, refresh
from runner.state import history
from runner.state.connect import open_backend
from runner.state.file import StateFile


def run_pipeline(
    path: Path,
    options: RunOptions,
    *,
    state_path: Path | None,
    yes: bool,
    verbose: bool,
    allow_env: tuple[str, ...] = (),
    allow_paths: tuple[Path, ...] = (),
    refresh: bool = True,
    target: str | None = None,
    saved: saved_plan.SavedPlan | None = None,
) -> tuple[list[str], int]:
    """Run the pipeline; returns the summary lines and the exit code: 0, 5 when only the platform failed,
    75 when a stage waits for people. A failed stage raises RunFailedError, other errors QfrunError.

    With ``refresh`` the platform is first asked what became of the resources the state records; what
    changed outside qfrun is shown and decided on as ``qfrun plan`` shows it (runner.run.refresh).

    With ``saved`` (``--plan FILE``) the run is that plan or nothing: it refuses, before the platform is
    opened or anything created, unless planning again now decides every stage as the saved plan did; the
    saved plan, reviewed, stands for the confirmation of its costs."""
    pipeline = load_pipeline(path, allow_env=allow_env, allow_paths=allow_paths, target=target)
    if saved is not None:
        saved_plan.check_source(saved, pipeline)
        click.echo(f"Running the saved plan {saved.path} (made {saved.created_at}).", err=True)
        selection = saved.selection
        options = replace(options, select=selection.select, from_stages=selection.from_stages)
        options = replace(options, force=selection.force)
    backend = open_backend(pipeline, state_path, notify=lambda line: click.echo(line, err=True))
    with backend.hold(options.command) as state:
        if saved is not None:
            saved_plan.check_state(saved, state)
        spec = pipeline.platform_spec
        from runner.run.connect import open_platform

        platform = open_platform(
            pipeline.platform,
            notify=lambda line: click.echo(line, err=True),
            pipeline_file=pipeline.path,
        )
        try:
            drift = _refresh(pipeline, state, platform) if refresh else {}
            if saved is not None:
                saved_plan.check_plan(saved, _plan_now(pipeline, state, options, drift))
            elif not spec.local and not yes:
                _confirm_costs(_plan_now(pipeline, state, options, drift))
            options = replace(options, poll=spec.kind.poll)
            observer = _observer(pipeline.stages, verbose)
            try:
                summary = Executor(pipeline, platform, state, options, observer, drift).run()
            finally:
                observer.close()
        finally:
            platform.close()
        # Kept for ``qfrun diff`` and the report's metric history; a run interrupted by an exception
        # above leaves no entry, and its resume (the same run id) writes it.
        history.append(state, {stage_id: spec.type for stage_id, spec in pipeline.stages.items()})
        report = build_report(pipeline, state)
        reports = write_reports(report, default_report_folder(pipeline, state))
    lines, code = _conclude(summary, backend.where)
    for service in report["services"]:
        lines += (
            [
                f"Service {service['stage']} answers at {service['url']}; try:",
                f"  {service['curl']}",
                *(
                    ["  (QFRUN_LOCAL_TOKEN: the token in QFRUN_HOME's credentials.json, or the one you set)"]
                    if "$QFRUN_LOCAL_TOKEN" in service["curl"]
                    else []
                ),
            ]
            if service["curl"]
            else []
        )
    lines.append(f"Report: {reports[-1]}")
    if code == RunFailedError.exit_code:
        raise RunFailedError("\n".join(lines))  # rendered by the CLI as it is, with exit code 1
    return lines, code


def _observer(stages: Mapping[str, StageSpec], verbose: bool) -> LiveProgress | PlainProgress:
    stream = sys.stderr
    if stream.isatty() and not os.environ.get("CI") and os.environ.get("TERM") != "dumb":
        return LiveProgress({stage_id: spec.type for stage_id, spec in stages.items()}, stream)
    return PlainProgress(stream, verbose=verbose)


def _refresh(pipeline: Pipeline, state: StateFile, platform: Inventory) -> dict[str, Drift]:
    """Refresh, and show what changed outside qfrun before anything runs (the plan's own lines)."""
    drift = refresh(pipeline, state, platform)
    if drift:
        plan = make_plan(pipeline, state, drift=drift)
        click.echo("Changed outside qfrun (found by refresh):", err=True)
        for change in plan.outside:
            click.echo(f"  ~ {change.stage_id}: {change.change}; {change.then}", err=True)
    return drift


def _plan_now(pipeline: Pipeline, state: StateFile, options: RunOptions, drift: Mapping[str, Drift]) -> Plan:
    """What this run will do, planned as ``qfrun plan`` plans it (the same selection, what refresh found)."""
    return make_plan(
        pipeline,
        state,
        select=options.select,
        from_stages=options.from_stages,
        force=options.force,
        drift=drift,
    )


def _confirm_costs(plan: Plan) -> None:
    if not plan.costs or not sys.stdin.isatty():
        if plan.costs:
            raise UsageError(
                "This run would create cost-bearing deployments on Qianfan "
                + "; ".join(f"{s.stage_id}: {s.cost}" for s in plan.costs)
                + ". Without a terminal to confirm, pass --yes to allow them."
            )
        return
    click.echo("This run creates cost-bearing deployments:", err=True)
    for stage in plan.costs:
        click.echo(f"  {stage.stage_id}: {stage.cost}", err=True)
    click.confirm("Go ahead?", abort=True, err=True)


def _conclude(summary: RunSummary, state_file: str) -> tuple[list[str], int]:
    counts = ", ".join(
        f"{summary.count(outcome)} {outcome}"
        for outcome in (SUCCEEDED, UP_TO_DATE, WAITING, FAILED, SKIPPED, NOT_STARTED)
        if summary.count(outcome)
    )
    lines = [f"Run {summary.run_id}: {counts or 'nothing to do'}."]
    for outcome in summary.outcomes.values():
        if outcome.outcome == FAILED:
            lines.append(f"  {outcome.stage_id} failed: {outcome.message}")
        elif outcome.outcome == WAITING:
            lines.append(f"  {outcome.stage_id} is {outcome.message}")
    if summary.interrupted:
        raise InterruptedRun(
            "\n".join(lines)
            + f"\nInterrupted; the state is saved in {state_file}. Re-run the same command to resume."
        )
    failed = summary.failed
    if failed:
        lines.append(
            f"The state is saved in {state_file}; fix the cause and re-run the same command to retry."
        )
        code = PlatformError.exit_code if all(o.platform_error for o in failed) else RunFailedError.exit_code
        return lines, code
    if summary.waiting:
        lines.append(
            f"The state is saved in {state_file}; once the scores are in, re-run the same command to go on "
            f"(exit code {WAITING_EXIT_CODE}: waiting for people)."
        )
        return lines, WAITING_EXIT_CODE
    return lines, 0


@click.command(name="run")
@PIPELINE
@selection_options
@click.option(
    "--keep-going", is_flag=True, help="After a failure, finish the stages that do not depend on it."
)
@click.option(
    "--max-parallel",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="How many stages may run at once.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before cost-bearing deployments.")
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Run exactly the plan `qfrun plan --out FILE` saved (its selection too), or refuse, creating "
    "nothing, when the pipeline, the state or the platform changed since: as terraform apply PLANFILE.",
)
@refresh_options
@ALLOW_ENV
@ALLOW_PATH
@click.pass_context
def command(
    ctx: click.Context,
    pipeline: Path,
    select: tuple[str, ...],
    from_stages: tuple[str, ...],
    force: tuple[str, ...],
    state_path: Path | None,
    target: str | None,
    keep_going: bool,
    max_parallel: int,
    yes: bool,
    plan_file: Path | None,
    refresh: bool,
    no_refresh: bool,
    allow_env: tuple[str, ...],
    allow_paths: tuple[Path, ...],
) -> None:
    """Run PIPELINE; re-running the same command resumes where it stopped."""
    saved = saved_plan.load(plan_file) if plan_file is not None else None
    if saved is not None and (select or from_stages or force):
        raise UsageError("--plan runs the stages its plan selected; drop --select, --from and --force.")
    # The arguments travel in ctx.obj so that the state and the lock record the command actually run.
    line = " ".join(["qfrun", *ctx.obj.get("argv", sys.argv[1:])])
    options = RunOptions(select, from_stages, force, keep_going, max_parallel, command=line)
    summary_lines, code = run_pipeline(
        pipeline,
        options,
        state_path=state_path,
        yes=yes,
        verbose=ctx.obj["verbose"],
        allow_env=allow_env,
        allow_paths=allow_paths,
        refresh=refresh and not no_refresh,
        target=target,
        saved=saved,
    )
    for text in summary_lines:
        click.echo(text, err=True)
    if code:
        raise SystemExit(code)
