"""Options several verbs share, defined once so that ``--state`` or ``--select`` read the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

PIPELINE = click.argument("pipeline", type=click.Path(dir_okay=False, path_type=Path))

STATE = click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The state: a file, or bos:/bucket/key for one in BOS (default: QFRUN_STATE, else the pipeline's "
    "state:, else .qfrun/<name>.state.json beside the pipeline).",
)

TARGET = click.option(
    "--target",
    "target",
    envvar="QFRUN_TARGET",
    metavar="NAME",
    help="The target to use, one of the pipeline's platforms: (default: QFRUN_TARGET, else its "
    "default_target). Each target keeps its own state.",
)

ALLOW_ENV = click.option(
    "--allow-env",
    "allow_env",
    multiple=True,
    metavar="NAME",
    help="Let the pipeline read the environment variable NAME (its env: list asks; this allows); "
    "repeatable. QFRUN_ALLOW_ENV=A,B does the same, and QFRUN_VAR_* are always allowed.",
)

ALLOW_PATH = click.option(
    "--allow-path",
    "allow_paths",
    multiple=True,
    metavar="FOLDER",
    type=click.Path(file_okay=False, path_type=Path),
    help="Let the pipeline's datasets and model folders lie in FOLDER, outside its repository; repeatable. "
    "QFRUN_ALLOW_PATHS=A:B does the same. Custom evaluators' code comes from the repository only.",
)


def selection_options(function: F) -> F:
    """``--select``, ``--from``, ``--force``, ``--state`` and ``--target``: which stages a run or a plan is
    about, and where."""
    for option in reversed(
        [
            click.option(
                "--select",
                "-s",
                "--only",
                "select",
                multiple=True,
                metavar="SELECTOR",
                help="Stages to run: x, +x (with upstream), x+ (with downstream); repeatable.",
            ),
            click.option(
                "--from",
                "from_stages",
                multiple=True,
                metavar="STAGE",
                help="Re-run STAGE and everything downstream of it, even when up to date.",
            ),
            click.option(
                "--force", multiple=True, metavar="STAGE", help="Re-run STAGE even when up to date."
            ),
            STATE,
            TARGET,
        ]
    ):
        function = option(function)
    return function


def refresh_options(function: F) -> F:
    """``--refresh=false`` (Terraform's spelling) or ``--no-refresh``: plan or run from the state file alone,
    without asking the platform what became of the services and model versions it records."""
    function = click.option("--no-refresh", "no_refresh", is_flag=True, help="The same as --refresh=false.")(
        function
    )
    return click.option(
        "--refresh",
        "refresh",
        type=click.BOOL,
        default=True,
        show_default=True,
        metavar="BOOL",
        help="Ask the platform first what became of the services and model versions the state records "
        "(one list per kind); --refresh=false trusts the state file as it is.",
    )(function)
