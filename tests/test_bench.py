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
    # P8's baseline, the quickstart as one direct script, ran on its smoke size (10 rows) and wrote a summary.
    assert re.search(r"\| P8 \| quickstart wall [^|]* \| smoke run of the direct script: ran \|", written)


def test_a_partial_rerun_replaces_only_its_rows_and_the_import_table_and_says_where_they_come_from() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import run  # bench/run.py
        from harness import Row
    finally:
        sys.path.remove(str(ROOT / "bench"))
    existing = (
        "# Benchmark results\n\nintro\n\ncores: 2 · commit: old\n\n| id | measure | result | goal | met |\n"
        "| --- | --- | --- | --- | --- |\n| P1 | a | 7.00x | ≤ 3x | **no** |\n"
        "| P1 | b | 6.00x | (reported) | — |\n"
        "| P2 | c | 25.00x | ≤ 2x | **no** |\n| P3 | d | 1.97 ms | ≤ 0.5 ms | **no** |\n\n"
        "Slowest imports of `qfrun validate` (`python -X importtime`, cumulative):\n\n```\nold imports\n```\n"
    )
    rows = [Row("P1", "a", "4.00x", "≤ 3x", False), Row("P2", "c", "1.50x", "≤ 2x", True)]
    text = run.merged(existing, rows, "new imports", "cores: 2 · commit: new", ("startup", "plan"))
    assert "| P1 | a | 4.00x | ≤ 3x | **no** |\n| P2 | c | 1.50x | ≤ 2x | yes |\n| P3 | d | 1.97 ms |" in text
    assert "| P1 | b |" not in text
    assert "7.00x" not in text
    assert "```\nnew imports\n```" in text
    assert "old imports" not in text
    assert (
        "Rerun of `--only startup,plan` (cores: 2 · commit: new): the P1 and P2 rows and the import" in text
    )
    again = run.merged(text, rows, "newer", "cores: 2 · commit: newer", ("startup", "plan"))
    assert again.count("Rerun of `--only startup,plan`") == 1
