"""``qfrun diff``: what changed per stage since another run (inputs, metrics, gates, services)."""

from __future__ import annotations

from pathlib import Path

import click

from runner.commands.options import PIPELINE, STATE, TARGET
from runner.commands.plan import markdown_limit


@click.command(name="diff")
@PIPELINE
@click.argument("ref", required=False)
@STATE
@TARGET
@click.option(
    "--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True
)
@markdown_limit("each table keeps its first rows to fit")
@click.pass_context
def command(
    ctx: click.Context,
    pipeline: Path,
    ref: str | None,
    state_path: Path | None,
    target: str | None,
    fmt: str,
    markdown_limit: int,
) -> None:
    """Show what changed in PIPELINE's stages since REF.

    REF is a git revision whose commit holds the state file, a state file (say, main's, from a CI
    artifact) or a run id the history keeps; by default the state committed on main, else the previous run.
    A state kept in BOS is the state on main: by default it is compared with the run before its newest one.
    """
    from runner.pipeline.spec import load_pipeline
    from runner.render import diff as diffformat
    from runner.run.compare import compare
    from runner.state import baseline, history
    from runner.state.connect import open_backend

    loaded = load_pipeline(pipeline, check_files=False, allow_env=None, target=target)
    state = open_backend(loaded, state_path, notify=lambda line: click.echo(line, err=True)).read()
    types = {stage_id: spec.type for stage_id, spec in loaded.stages.items()}
    label, before = baseline.resolve(state, types, ref)
    after = history.snapshot(state, types)
    result = compare(
        loaded, before, after, labels=(label, f"run {after['run_id']}" if after["run_id"] else "now")
    )
    if fmt == "json":
        click.echo(diffformat.as_json(result), nl=False)
    elif fmt == "markdown":
        click.echo(diffformat.as_markdown(result, limit=markdown_limit), nl=False)
    else:
        click.echo(diffformat.as_text(result, verbose=ctx.obj["verbose"]), nl=False)
