"""``qfrun schema``: print the JSON Schema of pipeline files or of the state file (for editors and CI)."""

from __future__ import annotations

from importlib import resources

import click


def schema_text(which: str) -> str:
    """The schema named ``pipeline`` or ``state``, as shipped inside the package."""
    name = "state.schema.json" if which == "state" else "pipeline.schema.json"
    return resources.files("runner.schemas").joinpath(name).read_text(encoding="utf-8")


@click.command(name="schema")
@click.option("--state", "which", flag_value="state", help="Print the state file's schema instead.")
@click.option(
    "--pipeline", "which", flag_value="pipeline", default=True, help="Print the pipeline schema (default)."
)
def command(which: str) -> None:
    """Print the JSON Schema of pipeline files (for editors and CI)."""
    click.echo(schema_text(which), nl=False)
