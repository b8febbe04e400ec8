"""``make bench`` works: its smoke size runs every runner benchmark and prints the table's shape.

Speed is never asserted here; the figures of a smoke run mean nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_smoke_run_prints_the_machine_and_a_row_for_every_goal(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    written = out.read_text()
    assert re.search(r"cores: \d+ · commit: \S+ · Python 3\.\d+\.\d+", written)
    assert "python -X importtime" in written
    rows = [line for line in written.splitlines() if line.startswith("| ") and "---" not in line][1:]
    ids = {row.split("|")[1].strip() for row in rows}
    assert {"P1", "P2", "P3", "P9", "12.4", "P8", "P10"} <= ids
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 5, row
        assert all(cells), row
        assert cells[4] in {"yes", "**no**", "—"}, row
    assert re.search(r"\| P1 \| .* \| \d+\.\d\dx \(\d+ ms ÷ \d+ ms\) \|", written)
