"""What every benchmark shares: paired, interleaved timing; the machine's description; the results table.

Timings on a shared 2-core machine are noisy, so a figure is never one run against another taken minutes
apart: the candidate and its baseline run in alternation (A B A B ...), like ``hyperfine`` with several
commands, and the ratio reported is the median of the per-pair ratios, which a burst of load elsewhere
moves much less than it moves either time.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Pair:
    """Medians of a candidate and its baseline, timed in alternation, and the median of their ratios."""

    candidate: float
    baseline: float
    ratio: float


def paired(candidate: Callable[[], object], baseline: Callable[[], object], repeat: int) -> Pair:
    """Run baseline and candidate alternately ``repeat`` times each (after one untimed warm-up of both)."""
    candidate()
    baseline()
    ours: list[float] = []
    theirs: list[float] = []
    for index in range(repeat):
        # Alternate which goes first, so neither always runs right after the other's cache misses.
        order = (baseline, candidate) if index % 2 == 0 else (candidate, baseline)
        for action in order:
            start = time.perf_counter()
            action()
            (ours if action is candidate else theirs).append(time.perf_counter() - start)
    ratios = [mine / base for mine, base in zip(ours, theirs, strict=True)]
    return Pair(statistics.median(ours), statistics.median(theirs), statistics.median(ratios))


def median_time(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass(frozen=True)
class Row:
    """One line of the results table: a goal of issue 17 (P1..P10) or 12 (12.4) and what this run found."""

    pid: str
    measure: str
    result: str
    goal: str
    met: bool | None  # None: reported, not judged (or not measured in this run)


def machine() -> dict[str, str]:
    """What a reader needs to compare two result tables: cores, commit, Python, platform."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cores": str(os.cpu_count()),
        "commit": commit,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "executable": sys.executable,
    }


def table(rows: list[Row]) -> str:
    lines = ["| id | measure | result | goal | met |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        met = "—" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(f"| {row.pid} | {row.measure} | {row.result} | {row.goal} | {met} |")
    return "\n".join(lines)
