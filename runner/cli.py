"""The command line: ``qfrun PIPELINE`` (= ``qfrun run PIPELINE``) and one verb per module in runner.commands.

This module only dispatches and handles errors. Every error is a ``runner.errors.QfrunError`` rendered
here, once, as sentences with the exit code its class names; no traceback reaches a user unless ``-v`` asks
for one. A plain ``qfrun validate`` command line runs without importing click at all (a pre-commit hook's
hot path, issue 17 P1: runner.commands.validating); every other goes to the click group of the verbs
(runner.commands.group), which loads each verb's module only when it is invoked.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from runner.commands.echo import echo
from runner.errors import InterruptedRun, PipelineError, QfrunError, RunFailedError


def fail(message: str, code: int) -> NoReturn:
    echo(message, err=True)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: run the CLI and turn every error into a message and an exit code."""
    args = list(argv) if argv is not None else sys.argv[1:]
    verbose = any(arg in ("-v", "--verbose") for arg in args)
    try:
        from runner.commands.validating import quick_command

        quick = quick_command(args)
        if quick is not None:
            quick()
            return
        from runner.commands.group import cli

        # The arguments travel in ctx.obj so that the state and the lock record the command actually run.
        cli.main(args=args, prog_name="qfrun", standalone_mode=False, obj={"argv": args})
    # Every error becomes a message and its exit code (a bug's too); SystemExit passes: its code is the code.
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001
        _exit(error, verbose)


def _exit(error: BaseException, verbose: bool) -> NoReturn:
    """Say what went wrong in sentences and exit with the code its class names."""
    if "click" in sys.modules:  # click's own errors exist only once click is imported
        import click

        if isinstance(error, click.exceptions.Abort):
            fail("Aborted.", 130)
        if isinstance(error, click.ClickException):
            error.show()
            raise SystemExit(error.exit_code) from None
    if isinstance(error, PipelineError):
        for issue in error.issues:
            echo(str(issue), err=True)
        count = len(error.issues)
        fail(f"The pipeline is not valid: {count} problem{'s' if count != 1 else ''}.", error.exit_code)
    if isinstance(error, (InterruptedRun, RunFailedError)):
        fail(str(error), error.exit_code)
    if isinstance(error, QfrunError):
        fail(f"error: {_sentence(str(error))}", error.exit_code)
    if isinstance(error, KeyboardInterrupt):
        fail("Interrupted.", 130)
    if verbose:  # a bug in qfrun: show the trace when asked
        raise error
    fail(
        f"internal error: {type(error).__name__}: {error}. Re-run with -v for the traceback and report it.",
        70,
    )


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else text + "."
