"""``make bench``: every goal of issue 17 (and issue 12 item 4) this machine can measure, as a table.

    python bench/run.py [--smoke] [--suite] [--only GROUP,...] [--out FILE]

Each figure is a ratio against a baseline measured in the same run, on the same machine; the table starts
with the core count, the commit and the Python version, and is written to ``bench/RESULTS.md``. ``--smoke``
runs the runner's benchmarks at tiny sizes, skips the platform's, and runs P8's direct script on 10 rows
(CI runs it to prove the benchmarks work; its figures mean nothing). ``--suite`` also times the whole test
suite (P10, minutes). ``--only startup,plan`` runs those groups alone (startup: P1, plan: P2, growth: P9,
run: P3, size: 12.4, platform: P4-P7, quickstart: P8) and replaces just their rows, and the import table
when startup ran, in the results file, with a line that says which commit and machine they come from.
"""

from __future__ import annotations

import argparse
import re
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


GROUPS = ("startup", "plan", "growth", "run", "size", "platform", "quickstart")


def groups(text: str) -> tuple[str, ...]:
    chosen = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in chosen if name not in GROUPS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(GROUPS)} (got {text!r})")
    return chosen


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
        "--smoke", action="store_true", help="tiny sizes, one small model script: proves the benchmarks run"
    )
    parser.add_argument("--suite", action="store_true", help="also time the whole test suite (P10)")
    parser.add_argument("--only", type=groups, help=f"run only these groups: {', '.join(GROUPS)}")
    parser.add_argument("--out", type=Path, help="where to write the table (default: bench/RESULTS.md)")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    out = args.out or (None if args.smoke else ROOT / "bench" / "RESULTS.md")
    only: tuple[str, ...] = args.only or GROUPS
    about = machine()
    print(" | ".join(f"{key}: {value}" for key, value in about.items()), flush=True)

    rows: list[Row] = []
    imports = ""
    with tempfile.TemporaryDirectory(prefix="qfrun-bench-") as name:
        folder = Path(name)
        if "startup" in only:
            startup_rows, imports = runner_bench.startup(folder, sizes["startup_repeat"])
            rows += startup_rows
            print(
                f"slowest imports of `qfrun validate` (python -X importtime, cumulative):\n{imports}",
                flush=True,
            )
        if "plan" in only:
            rows += runner_bench.validate_and_plan(folder, sizes["plan_sizes"], sizes["plan_repeat"])
        if "growth" in only:
            rows += runner_bench.growth(folder, *sizes["growth"])
        if "run" in only:
            rows += runner_bench.execute(folder, sizes["run_sizes"])
        if "size" in only:
            rows += runner_bench.linear_in_size(folder, sizes["file_sizes"])
        if "platform" in only and args.smoke:
            rows.append(Row("P4-P7", "the local platform's figures", "not measured in --smoke", "—", None))
        elif "platform" in only:
            rows += local_bench.measure(folder / "home", ["poll", "inference", "compression", "service"])
        if "quickstart" in only:
            rows += local_bench.quickstart(folder / "quickstart", smoke=args.smoke)
    if args.suite:
        rows.append(suite())
    elif args.only is None:
        rows.append(Row("P10", "`make test`, the whole suite", "not timed (pass --suite)", "≤ 4 min", None))

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
    if out is None:
        return
    if args.only is not None and out.exists():
        out.write_text(merged(out.read_text(encoding="utf-8"), rows, imports, header, args.only))
        return
    out.write_text(
        "# Benchmark results\n\nWritten by `make bench` (`python bench/run.py`); each ratio's baseline "
        "was measured in the same run, in alternation with it (medians of the pairs).\n\n"
        f"{text}\nSlowest imports of `qfrun validate` (`python -X importtime`, cumulative):\n\n"
        f"```\n{imports}\n```\n"
    )


IMPORTS = re.compile(r"(Slowest imports of `qfrun validate`[^\n]*\n\n```\n)(.*?)(\n```)", re.DOTALL)


def merged(existing: str, rows: list[Row], imports: str, header: str, only: tuple[str, ...]) -> str:
    """The results file with the rows of the ids just measured (and the import table, when startup ran)
    replaced where they stand, the other rows kept, and one line saying where the new rows come from."""
    fresh: dict[str, list[str]] = {}
    for line in table(rows).splitlines()[2:]:
        fresh.setdefault(line.split("|")[1].strip(), []).append(line)
    lines: list[str] = []
    for line in existing.splitlines():
        pid = line.split("|")[1].strip() if line.startswith("| ") else None
        if pid in fresh:
            lines += fresh.pop(pid)  # the first old row of an id takes all its new rows; the others go
        elif pid is None or pid not in {row.pid for row in rows}:
            lines.append(line)
    table_end = max((i for i, line in enumerate(lines) if line.startswith("| ")), default=len(lines) - 1)
    lines[table_end + 1 : table_end + 1] = [line for rest in fresh.values() for line in rest]
    label = f"Rerun of `--only {','.join(only)}`"
    ids = list(dict.fromkeys(row.pid for row in rows))
    named = ", ".join(ids[:-1]) + f" and {ids[-1]}" if len(ids) > 1 else "".join(ids)
    note = f"{label} ({header}): the {named} rows" + (" and the import table." if imports else ".")
    lines = [line for line in lines if not line.startswith(label)]
    first_header = next((i for i, line in enumerate(lines) if line.startswith("cores: ")), len(lines))
    lines[first_header:first_header] = [note, ""]
    text = "\n".join(lines) + "\n"
    return IMPORTS.sub(lambda m: m.group(1) + imports + m.group(3), text) if imports else text


if __name__ == "__main__":
    main()
