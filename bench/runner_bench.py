"""Benchmark of the runner's own overhead: validate, plan and execute, as ratios to baselines measured here.

    python bench/runner_bench.py [--quick]

* validate of 50 stages (the CLI, a new process) against `python -c pass` (target <= 3x);
* validate + plan of 50 / 500 / 5,000 stages in process, against `yaml.safe_load` of the same text
  (target <= 4x at 5,000);
* runs of 200 and 2,000 instant stages on the in-memory fake platform: overhead per stage (target <= 2 ms)
  and its growth from 200 to 2,000 (near-linear means a ratio near 1).

Every figure is the median of several repetitions; the state file is written for real (fsync included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import yaml

from runner.pipeline.spec import load_pipeline
from runner.run.executor import Executor, RunOptions
from runner.run.plan import make_plan
from runner.state.file import StateFile
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import FAST, Recorder

ROOT = Path(__file__).resolve().parent.parent

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def pipeline_text(stages: int) -> str:
    """A realistic mix: models, their inference, evaluations of the results, compressions and deployments."""
    lines = [
        "# yaml-language-server: $schema=../schemas/pipeline.schema.json",
        "version: 1",
        f"name: bench-{stages}",
        "vars: {min_accuracy: 0.5}",
        "datasets:",
        "  eval: {path: eval.jsonl}",
        "stages:",
    ]
    groups = max(1, stages // 5)
    for group in range(groups):
        g = f"g{group}"
        lines += [
            f"  {g}_model: {{type: model, version_id: amv-{group}}}",
            f"  {g}_infer: {{type: infer, model: {g}_model, dataset: eval, params: {{temperature: 0.1}}}}",
            f"  {g}_eval:",
            "    type: evaluate",
            f"    infer: [{g}_infer]",
            "    evaluators: [{kind: rule, accuracy: true, similarity: true}]",
            f"  {g}_w4: {{type: compress, model: {g}_model, strategy: quantization, weight: W4A16C16}}",
            f"  {g}_serve:",
            "    type: deploy",
            f"    model: {g}_w4",
            f"    if: ${{{{ stages.{g}_eval.outputs.metrics.accuracy >= vars.min_accuracy }}}}",
            f"    service: {{name: s{group}, url_suffix: e{group}, replicas: 1, "
            "billing: {payment: postpaid, charge: tokens}}",
        ]
    return "\n".join(lines) + "\n"


def median_time(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def write(folder: Path, stages: int) -> Path:
    (folder / "eval.jsonl").write_text('{"prompt": "1+1=?", "response": "2"}\n')
    path = folder / f"bench-{stages}.yaml"
    path.write_text(pipeline_text(stages))
    return path


def startup(folder: Path, repeat: int) -> None:
    path = write(folder, 50)
    python = median_time(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeat)
    validate = median_time(
        lambda: subprocess.run(
            [sys.executable, "-m", "runner", "validate", str(path)], check=True, capture_output=True, cwd=ROOT
        ),
        repeat,
    )
    print(
        f"start-up: python -c pass {python * 1000:.0f} ms; "
        f"qfrun validate (50 stages) {validate * 1000:.0f} ms "
        f"= {validate / python:.2f}x python start-up (target <= 3x)"
    )


def validate_and_plan(folder: Path, sizes: list[int], repeat: int) -> None:
    print("validate + plan, in process (median):")
    for size in sizes:
        path = write(folder, size)
        text = path.read_text()
        parse = median_time(partial(yaml.load, text, Loader=LOADER), repeat)
        state = StateFile.load(folder / ".qfrun" / f"bench-{size}.state.json", f"bench-{size}")
        loaded = load_pipeline(path)
        validate = median_time(partial(load_pipeline, path), repeat)
        plan = median_time(partial(make_plan, loaded, state), repeat)
        print(
            f"  {size:>5} stages: yaml.safe_load {parse * 1000:8.1f} ms | validate {validate * 1000:8.1f} ms "
            f"({validate / parse:4.2f}x) | plan {plan * 1000:8.1f} ms | validate+plan "
            f"{(validate + plan) / parse:4.2f}x the YAML parse (target <= 4x at 5,000)"
        )


def execute(folder: Path, sizes: list[int]) -> None:
    """Runs of instant stages, twice: as users get them (fsync'd state), and qfrun's own cost (no fsync)."""
    fsync_ms = median_time(partial(fsync_once, folder), 50) * 1000
    print(
        "runs of instant stages on the fake platform (max_parallel 4); "
        f"one fsync here costs {fsync_ms:.2f} ms:"
    )
    for sync in (True, False):
        per_stage = {}
        for size in sizes:
            run_folder = folder / f"run-{size}-{sync}"
            run_folder.mkdir()
            path = write(run_folder, size)
            pipeline = load_pipeline(path)
            state_file = run_folder / ".qfrun" / f"{pipeline.name}.state.json"
            state = StateFile.load(state_file, pipeline.name, sync=sync)
            start = time.perf_counter()
            summary = Executor(pipeline, FakePlatform(), state, RunOptions(poll=FAST), Recorder()).run()
            state.close()
            elapsed = time.perf_counter() - start
            assert not summary.failed, summary.failed[:3]
            per_stage[size] = elapsed / len(pipeline.stages)
            label = "state fsync'd " if sync else "without fsync "
            print(
                f"  {label} {len(pipeline.stages):>5} stages: {elapsed:6.2f} s = "
                f"{per_stage[size] * 1000:.2f} ms per stage (target <= 2 ms)"
            )
        if len(sizes) > 1:
            small, large = sizes[0], sizes[-1]
            growth = per_stage[large] / per_stage[small]
            print(
                f"  growth of the per-stage cost from {small} to {large} stages: {growth:.2f} (1.0 is linear)"
            )


def fsync_once(folder: Path) -> None:
    with (folder / "fsync-probe").open("ab") as stream:
        stream.write(b"x" * 200 + b"\n")
        stream.flush()
        os.fsync(stream.fileno())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions and smaller sizes (a smoke run)"
    )
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    with tempfile.TemporaryDirectory(prefix="qfrun-bench-") as name:
        folder = Path(name)
        startup(folder, repeat)
        validate_and_plan(folder, [50, 500] if args.quick else [50, 500, 5000], repeat)
        execute(folder, [200] if args.quick else [200, 2000])


if __name__ == "__main__":
    main()
