"""``qfrun validate``: YAML, schema, references, cycles, expressions, local files; every problem at once.

The work and the printing are runner.commands.validating's, which the CLI also calls without click for
plain command lines; this module is the click command that parses every other one (and prints --help).
"""

from __future__ import annotations

from pathlib import Path

import click

from runner.commands.options import ALLOW_ENV, ALLOW_PATH, TARGET
from runner.commands.validating import FORMATS, validate


@click.command(name="validate")
@click.argument("pipelines", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@ALLOW_ENV
@ALLOW_PATH
@TARGET
def command(
    pipelines: tuple[Path, ...],
    fmt: str,
    allow_env: tuple[str, ...],
    allow_paths: tuple[Path, ...],
    target: str | None,
) -> None:
    """Check PIPELINES: YAML, schema, references, cycles, expressions, local files; all problems at once,
    for every target a file declares unless --target names one."""
    validate(pipelines, fmt, allow_env, allow_paths, target)
