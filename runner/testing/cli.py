"""Running ``qfrun`` in process, as a test of what a user sees: exit code, stdout, stderr, no traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.cli import main

if TYPE_CHECKING:
    import pytest


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``qfrun ARGS`` through the console script's entry point; fails the test if a traceback was printed."""
    code = 0
    try:
        main(list(args))
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err
