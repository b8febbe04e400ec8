"""What ``qfrun validate`` does, without click: check the files, print what it found, and read the plain
command lines it is given most (a pre-commit hook's, an editor's on save) without click's parser.

Importing click is a fifth of a cold ``qfrun validate`` (issue 17, P1). ``quick_command`` reads the command
lines made of nothing but paths and validate's own options written out in full; any other (``--help``, a
typo, an option click would refuse, a path click's ``Path`` type would refuse) returns None and goes to the
click command (runner.commands.validate), which prints its help and errors as ever. Both print through
``show``, so their output is the same by construction.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from runner.commands.echo import echo
from runner.errors import PipelineError

FORMATS = ("text", "json")
TARGET_VARIABLE = "QFRUN_TARGET"  # --target's default (runner.commands.options.TARGET)


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


def validate(
    pipelines: Sequence[Path],
    fmt: str,
    allow_env: Sequence[str],
    allow_paths: Sequence[Path],
    target: str | None,
) -> None:
    """The command: check PIPELINES, print the problems (or each file's summary), exit 3 if any."""
    checked = validate_paths(pipelines, allow_env, allow_paths, target)
    problems = [problem for result in checked for problem in result.problems]
    if fmt == "json":
        echo(json.dumps({"valid": not problems, "problems": [asdict(p) for p in problems]}, indent=2))
    else:
        for result in checked:
            for line in result.text:
                echo(line)
            if not result.problems:
                echo(f"{result.path}: {_summary(result)}", err=True)
        if problems:
            echo(f"Found {len(problems)} problem{'s' if len(problems) != 1 else ''}.", err=True)
    if problems:
        raise SystemExit(PipelineError.exit_code)


def _summary(result: Checked) -> str:
    plural = "s" if result.stages != 1 else ""
    count = len(result.families)
    matrices = (
        f", {sum(result.families)} of them from {count} matri{'ces' if count != 1 else 'x'}" if count else ""
    )
    on = f"; target{'s' if len(result.targets) != 1 else ''} {', '.join(result.targets)}"
    where = on if result.targets else ""
    return f"valid ({result.stages} stage{plural}{matrices}{where})."


# validate's options that take a value, each to whether it may be repeated (runner.commands.validate).
_OPTIONS = {"--format": False, "--allow-env": True, "--allow-path": True, "--target": False}


def quick_command(args: Sequence[str]) -> Callable[[], None] | None:
    """``qfrun ARGS`` as a call of ``validate`` when ARGS are ``validate``, paths and validate's options
    written in full, each value one the click command would take as it is; None for anything else."""
    if len(args) < 2 or args[0] != "validate" or "_QFRUN_COMPLETE" in os.environ:
        return None  # shell completion calls qfrun back with its words in the environment: click's job
    values: dict[str, list[str]] = {name: [] for name in _OPTIONS}
    paths: list[str] = []
    rest = list(args[1:])
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("-"):
            paths.append(arg)
            continue
        name, equals, value = arg.partition("=")
        if name not in _OPTIONS:
            return None  # --help, --, -v, a short or mistyped option: click says what it means
        if not equals:
            if not rest:
                return None
            value = rest.pop(0)
        if not value or value.startswith("-") or (values[name] and not _OPTIONS[name]):
            return None  # an odd value, or an option given twice that takes one: click decides
        values[name].append(value)
    fmt = values["--format"][0] if values["--format"] else "text"
    if not paths or fmt not in FORMATS:
        return None
    if not all(_path_taken(path, file=True) for path in paths):
        return None
    if not all(_path_taken(folder, file=False) for folder in values["--allow-path"]):
        return None
    targets = values["--target"] or [os.environ.get(TARGET_VARIABLE) or ""]
    target = targets[0] or None  # click reads an empty variable as unset
    pipelines = tuple(Path(path) for path in paths)
    allow_env = tuple(values["--allow-env"])
    allow_paths = tuple(Path(folder) for folder in values["--allow-path"])
    return lambda: validate(pipelines, fmt, allow_env, allow_paths, target)


def _path_taken(path: str, *, file: bool) -> bool:
    """Whether click's ``Path`` type takes ``path`` as it is: a pipeline (``file``) that is no folder, an
    allowed folder that is no regular file, either readable if it exists (it refuses them otherwise)."""
    try:
        mode = os.stat(path).st_mode
    except ValueError:
        return False  # a NUL in it: click's to refuse
    except OSError:
        return True  # a path that does not exist is the loader's to report, at the file
    if stat.S_ISDIR(mode) if file else stat.S_ISREG(mode):
        return False
    return os.access(path, os.R_OK)
