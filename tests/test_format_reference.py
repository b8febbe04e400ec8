"""docs/pipeline-format.md is generated from the schema and must match it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_the_format_reference_matches_the_schema() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "format_reference.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
