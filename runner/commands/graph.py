"""``qfrun graph``: the stage graph as Mermaid or Graphviz dot, optionally coloured by recorded status."""

from __future__ import annotations

from pathlib import Path

import click

from runner.commands.options import PIPELINE, TARGET


@click.command(name="graph")
@PIPELINE
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Colour stages by their status in this state file.",
)
@TARGET
@click.option("--status/--no-status", "with_status", default=False, help="Show each stage's recorded status.")
def command(pipeline: Path, fmt: str, state_path: Path | None, target: str | None, with_status: bool) -> None:
    """Print the stage graph of PIPELINE as Mermaid or Graphviz dot."""
    from runner.pipeline.spec import load_pipeline
    from runner.render import graph as graphformat
    from runner.state.connect import open_backend

    loaded = load_pipeline(pipeline, check_files=False, allow_env=None, target=target)
    types = {stage_id: stage.type for stage_id, stage in loaded.stages.items()}
    statuses = None
    if with_status or state_path:
        state = open_backend(loaded, state_path, notify=lambda line: click.echo(line, err=True)).read()
        statuses = {stage_id: record.status.value for stage_id, record in state.stages.items()}
    render = graphformat.as_dot if fmt == "dot" else graphformat.as_mermaid
    click.echo(render(loaded.graph, types, statuses), nl=False)
