"""``qfrun plan``: what a run would do per stage, and what it would cost, changing nothing.

Unless ``--refresh=false``, it first asks the platform what became of the resources the state records
(``runner.run.refresh``) and decides on that, as ``qfrun run`` does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from runner.commands.options import ALLOW_ENV, ALLOW_PATH, PIPELINE, refresh_options, selection_options
from runner.errors import UsageError

# The markdown limit without importing the renderer (validate and plan's --help stay light).
MARKDOWN_LIMIT = 65_535
F = TypeVar("F", bound=Callable[..., Any])


def markdown_limit(what: str) -> Callable[[F], F]:
    """``--markdown-limit CHARS`` of plan and diff: what each may take of one pull-request comment."""
    return click.option(
        "--markdown-limit",
        type=click.IntRange(2_000, MARKDOWN_LIMIT),
        default=MARKDOWN_LIMIT,
        show_default=True,
        metavar="CHARS",
        help=f"The most characters --format markdown prints; {what} (a GitHub comment holds 65,536: "
        "leave room for what is posted beside it).",
    )


# A link the comment shows as it is: no space or bracket that could end the Markdown link early.
_LINK = re.compile(r"https?://[^\s()<>\[\]]+")

if TYPE_CHECKING:
    from runner.pipeline.spec import Pipeline
    from runner.run.refresh import Drift
    from runner.state.file import StateFile


@click.command(name="plan")
@PIPELINE
@selection_options
@click.option(
    "--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing would run, 2 when some stage would (run, re-run, resume), 1 when a stage "
    "would fail at once — as terraform plan -detailed-exitcode does.",
)
@click.option(
    "--expiry-warning-days",
    type=click.IntRange(0, 3650),
    default=7,
    show_default=True,
    help="Warn about prepaid services whose term ends within this many days.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also save the plan to FILE, for `qfrun run --plan FILE` to run exactly it (or refuse once stale).",
)
@markdown_limit("a larger plan is summarised to fit")
@click.option(
    "--full-plan-url",
    default="",
    metavar="URL",
    help="Where the whole plan can be read (CI's artifact): a summarised markdown plan links to it.",
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
    fmt: str,
    detailed_exitcode: bool,
    expiry_warning_days: int,
    out: Path | None,
    markdown_limit: int,
    full_plan_url: str,
    refresh: bool,
    no_refresh: bool,
    allow_env: tuple[str, ...],
    allow_paths: tuple[Path, ...],
) -> None:
    """Show what a run of PIPELINE would do per stage, changing nothing."""
    from runner.pipeline.spec import load_pipeline
    from runner.render import plan as planformat
    from runner.run import saved_plan
    from runner.run.plan import INVALID, WILL_RUN, make_plan
    from runner.state.connect import open_backend

    if full_plan_url and not _LINK.fullmatch(full_plan_url):
        raise UsageError(
            f"--full-plan-url {full_plan_url!r} is not an http(s) URL without spaces or brackets."
        )
    loaded = load_pipeline(pipeline, allow_env=allow_env, allow_paths=allow_paths, target=target)
    state = open_backend(loaded, state_path, notify=lambda line: click.echo(line, err=True)).read()
    drift = refreshed(loaded, state) if refresh and not no_refresh else None
    result = make_plan(
        loaded,
        state,
        select=select,
        from_stages=from_stages,
        force=force,
        expiry_days=expiry_warning_days,
        drift=drift,
    )
    if out is not None:
        selection = saved_plan.Selection(select, from_stages, force)
        shown = json.loads(planformat.as_json(result))
        saved_plan.write(out, result, loaded, state, selection, shown)
    if fmt == "json":
        click.echo(planformat.as_json(result), nl=False)
    elif fmt == "markdown":
        click.echo(
            planformat.as_markdown(result, limit=markdown_limit, full_plan_url=full_plan_url), nl=False
        )
    else:
        click.echo(planformat.as_text(result, verbose=ctx.obj["verbose"]), nl=False)
    if detailed_exitcode:
        if result.count(INVALID):
            raise SystemExit(1)
        if any(stage.action in WILL_RUN for stage in result.stages):
            raise SystemExit(2)


def refreshed(pipeline: Pipeline, state: StateFile) -> dict[str, Drift]:
    """What refresh finds; the platform is opened (the local one started) only when the state records
    something to ask about, so a pipeline that never ran plans offline."""
    from runner.run.refresh import recorded, refresh

    if not recorded(pipeline, state):
        return {}
    from runner.run.connect import open_platform  # the platform client: only when there is something to ask

    platform = open_platform(
        pipeline.platform, notify=lambda line: click.echo(line, err=True), pipeline_file=pipeline.path
    )
    try:
        return refresh(pipeline, state, platform)
    finally:
        platform.close()
