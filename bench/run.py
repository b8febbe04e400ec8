"""``make bench``: every goal of issue 17 (and issue 12 item 4) this machine can measure, as a table.

    python bench/run.py [--smoke] [--suite] [--out FILE]

Each figure is a ratio against a baseline measured in the same run, on the same machine; the table starts
with the core count, the commit and the Python version, and is written to ``bench/RESULTS.md``. ``--smoke``
runs the runner's benchmarks at tiny sizes and skips those that load models (CI runs it to prove the
benchmarks work; its figures mean nothing). ``--suite`` also times the whole test suite (P10, minutes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import local_bench
import runner_bench
from harness import ROOT, Row, machine, table

FULL = {
    "startup_repeat": 15,
    "plan_sizes": [50, 500, 5_000, 20_000],
    "plan_repeat": 9,
    "growth": (2_000, 20_000),
    "run_sizes": [200, 2_000],
    "file_sizes": [100_000, 1_000_000, 5_000_000],  # 5 MiB is the largest pipeline file qfrun reads
}
SMOKE = {
    "startup_repeat": 2,
    "plan_sizes": [50, 200],
    "plan_repeat": 2,
    "growth": (100, 1_000),
    "run_sizes": [20],
    "file_sizes": [20_000, 60_000],
}


def suite() -> Row:
    """`make test`'s command: the whole suite under coverage on two pytest-xdist workers."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "coverage", "run", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2"],
        cwd=ROOT,
        capture_output=True,
    )
    minutes = (time.perf_counter() - start) / 60
    summary = done.stdout.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
    return Row(
        "P10", "`make test`, the whole suite", f"{minutes:.1f} min ({summary[0]})", "≤ 4 min", minutes <= 4
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, no models: proves the benchmarks run"
    )
    parser.add_argument("--suite", action="store_true", help="also time the whole test suite (P10)")
    parser.add_argument("--out", type=Path, help="where to write the table (default: bench/RESULTS.md)")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    out = args.out or (None if args.smoke else ROOT / "bench" / "RESULTS.md")
    about = machine()
    print(" | ".join(f"{key}: {value}" for key, value in about.items()), flush=True)

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="qfrun-bench-") as name:
        folder = Path(name)
        startup_rows, imports = runner_bench.startup(folder, sizes["startup_repeat"])
        rows += startup_rows
        print(
            f"slowest imports of `qfrun validate` (python -X importtime, cumulative):\n{imports}", flush=True
        )
        rows += runner_bench.validate_and_plan(folder, sizes["plan_sizes"], sizes["plan_repeat"])
        rows += runner_bench.growth(folder, *sizes["growth"])
        rows += runner_bench.execute(folder, sizes["run_sizes"])
        rows += runner_bench.linear_in_size(folder, sizes["file_sizes"])
        if args.smoke:
            rows.append(Row("P4-P7", "the local platform's figures", "not measured in --smoke", "—", None))
        else:
            rows += local_bench.measure(folder / "home", ["poll", "inference", "compression", "service"])
    rows.append(
        Row(
            "P8",
            "quickstart wall ÷ the same compute as one direct script",
            "not measured: no direct-script baseline yet",
            "≤ 1.3x",
            None,
        )
    )
    rows.append(
        suite()
        if args.suite
        else Row("P10", "`make test`, the whole suite", "not timed (pass --suite)", "≤ 4 min", None)
    )

    header = " · ".join(
        [
            f"cores: {about['cores']}",
            f"commit: {about['commit']}",
            f"Python {about['python']}",
            about["platform"],
        ]
    )
    text = f"{header}\n\n{table(rows)}\n"
    print(text)
    if out is not None:
        out.write_text(
            "# Benchmark results\n\nWritten by `make bench` (`python bench/run.py`); each ratio's baseline "
            "was measured in the same run, in alternation with it (medians of the pairs).\n\n"
            f"{text}\nSlowest imports of `qfrun validate` (`python -X importtime`, cumulative):\n\n"
            f"```\n{imports}\n```\n"
        )


if __name__ == "__main__":
    main()
