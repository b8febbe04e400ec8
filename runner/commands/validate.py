"""``qfrun validate``: YAML, schema, references, cycles, expressions, local files; every problem at once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from runner.commands.options import ALLOW_ENV, ALLOW_PATH, TARGET
from runner.errors import PipelineError


@dataclass(frozen=True)
class Problem:
    """One problem of one file, where it is."""

    path: str
    line: int
    column: int
    message: str


@dataclass(frozen=True)
class Checked:
    """What validating one file found: its problems, or how many stages it has when it has none."""

    path: Path
    problems: tuple[Problem, ...]
    text: tuple[str, ...]  # the problems as the CLI prints them, "file:line:col: message"
    stages: int = 0
    families: tuple[int, ...] = ()  # the member count of each matrix stage
    targets: tuple[str, ...] = ()  # the targets checked, when the file declares named targets


def validate_paths(
    paths: Sequence[Path],
    allow_env: Sequence[str] = (),
    allow_paths: Sequence[Path] = (),
    target: str | None = None,
) -> list[Checked]:
    """Validate each file, for ``target`` or else for every target it declares; a problem in one file does
    not stop the others from being checked."""
    from runner.pipeline.spec import load_pipeline

    checked: list[Checked] = []
    for path in paths:
        try:
            loaded = load_pipeline(
                path,
                allow_env=tuple(allow_env),
                allow_paths=allow_paths,
                target=target,
                every_target=target is None,
            )
        except PipelineError as error:
            problems = tuple(
                Problem(i.location.path, i.location.line, i.location.column, i.message) for i in error.issues
            )
            checked.append(Checked(path, problems, tuple(str(issue) for issue in error.issues)))
        else:
            families = tuple(len(members) for members in loaded.families.values())
            names = (loaded.target,) if target is not None else loaded.target_names
            shown = names if loaded.targets_declared else ()
            checked.append(Checked(path, (), (), len(loaded.stages), families, shown))
    return checked


@click.command(name="validate")
@click.argument("pipelines", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
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
    checked = validate_paths(pipelines, allow_env, allow_paths, target)
    problems = [problem for result in checked for problem in result.problems]
    if fmt == "json":
        click.echo(json.dumps({"valid": not problems, "problems": [asdict(p) for p in problems]}, indent=2))
    else:
        for result in checked:
            for line in result.text:
                click.echo(line)
            if not result.problems:
                plural = "s" if result.stages != 1 else ""
                count = len(result.families)
                matrices = (
                    f", {sum(result.families)} of them from {count} matri{'ces' if count != 1 else 'x'}"
                    if count
                    else ""
                )
                on = f"; target{'s' if len(result.targets) != 1 else ''} {', '.join(result.targets)}"
                where = on if result.targets else ""
                click.echo(
                    f"{result.path}: valid ({result.stages} stage{plural}{matrices}{where}).", err=True
                )
        if problems:
            click.echo(f"Found {len(problems)} problem{'s' if len(problems) != 1 else ''}.", err=True)
    if problems:
        raise SystemExit(PipelineError.exit_code)
