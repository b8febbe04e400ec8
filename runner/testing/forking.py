"""The driver processes of the crash tests: ``python -m MODULE --forking``, which imported what its children
need once and forks one child per request line (runner.testing.crash_driver, runner.testing.state_writer)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import runner

# The checkout under test, first on the driver's path (a worktree beside an editable install of another).
SOURCE = Path(runner.__file__).resolve().parent.parent


@contextmanager
def forking_driver(module: str) -> Iterator[tuple[IO[str], IO[str]]]:
    """The driver's request (its stdin) and answer (its stdout) streams, text, one JSON object a line; at the
    end of the block its stdin is closed, and a driver that does not then exit 0 within a minute fails."""
    driver = subprocess.Popen(
        [sys.executable, "-m", module, "--forking"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SOURCE)},
    )
    assert driver.stdin is not None
    assert driver.stdout is not None
    try:
        yield driver.stdin, driver.stdout
    finally:
        driver.stdin.close()
        code = driver.wait(timeout=60)
        driver.stdout.close()
    if code != 0:
        raise AssertionError(f"{module} --forking exited with {code}")
