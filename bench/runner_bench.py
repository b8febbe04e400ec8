"""The runner's own costs (issue 17: P1, P2, P3, P9; issue 12 item 4), each against a baseline timed in the
same run. ``python bench/run.py`` runs them with the platform's benchmarks; this module only measures.

* P1: ``qfrun validate`` of 50 stages, a new process, against ``python -c pass`` (same flags), cold (qfrun's
  own modules compiled from source, as in a fresh checkout) and warm (bytecode cached);
* P2: validate + plan in process against ``yaml.load`` with libyaml of the same text, at several sizes;
* P9: validate at 20,000 stages against 2,000, and the peak memory per stage;
* P3: runs of instant stages on the in-memory fake platform with the state fsync'd: overhead per stage;
* 12.4: validate time per MB of file, from 100 KB to 10 MB, for files of many stages, many ``${{``, many
  unknown ``needs`` and long keys; flat means linear in the file size.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path

import yaml
from harness import ROOT, Row, median_time, paired

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
    for group in range(max(1, stages // 5)):
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


def write(folder: Path, stages: int) -> Path:
    (folder / "eval.jsonl").write_text('{"prompt": "1+1=?", "response": "2"}\n')
    path = folder / f"bench-{stages}.yaml"
    path.write_text(pipeline_text(stages))
    return path


def _fresh_state() -> None:
    """Forget what an earlier validation cached in this process: a user's validate starts from nothing
    (parsed and read expressions, compiled templates)."""
    from runner.pipeline import expr

    expr.parse.cache_clear()
    expr.tree.cache_clear()
    expr._compiled.cache_clear()
    expr._TEMPLATES.clear()


# --- P1 -------------------------------------------------------------------------------------------------


def startup(folder: Path, repeat: int) -> tuple[list[Row], str]:
    """P1 cold and warm, and the ``-X importtime`` summary of one validate."""
    path = write(folder, 50)
    cold_root, warm_root = folder / "cold", folder / "warm"
    # qfrun's own modules uncompiled (a fresh checkout); the libraries keep the bytecode pip compiled.
    for root in (cold_root, warm_root):
        shutil.copytree(ROOT / "runner", root / "runner", ignore=shutil.ignore_patterns("__pycache__"))
    # Warm: every module compiled beforehand, whatever PYTHONDONTWRITEBYTECODE the caller runs with (with it
    # set, as on CI or in a container, "warm" would otherwise compile from source on every run too).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(warm_root)], check=True)
    cold_env = {**os.environ, "PYTHONPATH": str(cold_root), "PYTHONDONTWRITEBYTECODE": "1"}
    warm_env = {**os.environ, "PYTHONPATH": str(warm_root), "PYTHONDONTWRITEBYTECODE": "1"}
    validate = [sys.executable, "-m", "runner", "validate", str(path)]
    python = [sys.executable, "-c", "pass"]

    def run(command: list[str], env: dict[str, str]) -> Callable[[], object]:
        return partial(subprocess.run, command, env=env, check=True, capture_output=True, cwd=folder)

    cold = paired(run(validate, cold_env), run(python, cold_env), repeat)
    warm = paired(run(validate, warm_env), run(python, warm_env), repeat)
    rows = [
        Row(
            "P1",
            "`qfrun validate` 50 stages ÷ `python -c pass`, cold (qfrun uncompiled)",
            f"{cold.ratio:.2f}x ({cold.candidate * 1000:.0f} ms ÷ {cold.baseline * 1000:.0f} ms)",
            "≤ 3x",
            cold.ratio <= 3,
        ),
        Row(
            "P1",
            "the same, bytecode cached",
            f"{warm.ratio:.2f}x ({warm.candidate * 1000:.0f} ms ÷ {warm.baseline * 1000:.0f} ms)",
            "(reported)",
            None,
        ),
    ]
    return rows, import_times(validate, warm_env, folder)


def import_times(command: list[str], env: dict[str, str], folder: Path, top: int = 12) -> str:
    """The slowest top-level imports of one run (``python -X importtime``), cumulative microseconds."""
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], env=env, capture_output=True, text=True, cwd=folder
    )
    entries = []
    for line in done.stderr.splitlines():  # "import time:  self |  cumulative |   name", two spaces a level
        fields = line.split("|")
        if len(fields) != 3 or not fields[1].strip().isdigit():
            continue
        depth = (len(fields[2]) - len(fields[2].lstrip()) - 1) // 2
        if depth <= 1:  # imported by the program, or by one of its own first imports
            entries.append((int(fields[1]), "  " * depth + fields[2].strip()))
    entries.sort(reverse=True)
    return "\n".join(f"{micro / 1000:7.1f} ms  {name}" for micro, name in entries[:top])


# --- P2 and P9 -------------------------------------------------------------------------------------------


def validate_and_plan(folder: Path, sizes: list[int], repeat: int) -> list[Row]:
    from runner.pipeline.spec import load_pipeline
    from runner.run.plan import make_plan
    from runner.state.file import StateFile

    rows = []
    for size in sizes:
        path = write(folder, size)
        text = path.read_text()
        state = StateFile.load(folder / ".qfrun" / f"bench-{size}.state.json", f"bench-{size}")

        def validate_plan(path: Path = path, state: StateFile = state) -> None:
            _fresh_state()
            make_plan(load_pipeline(path), state)

        pair = paired(validate_plan, partial(yaml.load, text, Loader=LOADER), repeat if size < 10_000 else 3)
        rows.append(
            Row(
                "P2",
                f"validate + plan ÷ `yaml.load` (libyaml), {size:,} stages",
                f"{pair.ratio:.2f}x ({pair.candidate * 1000:.0f} ms ÷ {pair.baseline * 1000:.0f} ms)",
                "≤ 2x",
                pair.ratio <= 2,
            )
        )
    return rows


def growth(folder: Path, small: int, large: int) -> list[Row]:
    """P9: validate at ``large`` stages ÷ at ``small``, and the peak memory per stage at ``large``."""
    from runner.pipeline.spec import load_pipeline

    paths = {size: write(folder, size) for size in (small, large)}

    def validate(size: int) -> None:
        _fresh_state()
        load_pipeline(paths[size])

    times = {size: median_time(partial(validate, size), 3) for size in (small, large)}
    _fresh_state()
    tracemalloc.start()
    load_pipeline(paths[large])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    ratio = times[large] / times[small]
    return [
        Row(
            "P9",
            f"validate {large:,} ÷ {small:,} stages",
            f"{ratio:.1f} ({times[large]:.2f} s ÷ {times[small]:.3f} s)",
            f"≤ {large / small * 1.1:.0f}",
            ratio <= large / small * 1.1,
        ),
        Row("P9", f"peak memory per stage at {large:,}", f"{peak / large / 1024:.1f} KiB", "reported", None),
    ]


# --- P3 --------------------------------------------------------------------------------------------------


def execute(folder: Path, sizes: list[int]) -> list[Row]:
    """Runs of instant stages on the fake platform, state fsync'd as users get it, and without fsync."""
    from runner.pipeline.spec import load_pipeline
    from runner.run.executor import Executor, RunOptions
    from runner.state.file import StateFile
    from runner.testing.fake_platform import FakePlatform
    from runner.testing.pipelines import FAST, Recorder

    def run_once(size: int, sync: bool) -> float:
        run_folder = Path(tempfile.mkdtemp(dir=folder))
        pipeline = load_pipeline(write(run_folder, size))
        state = StateFile.load(run_folder / ".qfrun" / "s.json", pipeline.name, sync=sync)
        start = time.perf_counter()
        summary = Executor(pipeline, FakePlatform(), state, RunOptions(poll=FAST), Recorder()).run()
        state.close()
        elapsed = time.perf_counter() - start
        assert not summary.failed, summary.failed[:3]
        return elapsed / len(pipeline.stages)

    rows = []
    for size in sizes:
        repeat = 3 if size <= 500 else 1
        durable = sorted(run_once(size, True) for _ in range(repeat))[repeat // 2]
        loose = sorted(run_once(size, False) for _ in range(repeat))[repeat // 2]
        rows.append(
            Row(
                "P3",
                f"run overhead per instant stage, state fsync'd, {size:,} stages",
                f"{durable * 1000:.2f} ms (without fsync {loose * 1000:.2f} ms)",
                "≤ 0.5 ms",
                durable <= 0.0005,
            )
        )
    return rows


# --- issue 12, item 4 ------------------------------------------------------------------------------------

HEAD = "version: 1\nname: big\nvars: {a: 1}\nstages:\n  m: {type: model, version_id: amv-1}\n"
SHAPES: dict[str, Callable[[int], str]] = {
    "stages": lambda n: f"  s{n}: {{type: model, version_id: amv-{n}}}\n",
    "`${{`": lambda n: f"  s{n}: {{type: model, version_id: amv-{n}, if: '" + "${{ vars.a }}" * 40 + "'}\n",
    "unknown `needs`": lambda n: (
        f"  s{n}: {{type: model, version_id: amv-{n}, needs: ["
        + ", ".join(f"no{n}x{k}" for k in range(20))
        + "]}\n"
    ),
    "long keys": lambda n: f"  s{n}: {{type: model, version_id: amv-{n}}}\n  ? {'k' * 5000}{n}\n  : {{}}\n",
}


def shaped_file(folder: Path, shape: str, size: int) -> Path:
    parts, total, index = [HEAD], len(HEAD), 0
    while total < size:
        part = SHAPES[shape](index)
        parts.append(part)
        total += len(part)
        index += 1
    path = folder / f"shape-{len(os.listdir(folder))}.yaml"
    path.write_text("".join(parts))
    return path


def linear_in_size(folder: Path, sizes: list[int]) -> list[Row]:
    """Validate time per MB at each size; the largest's ÷ the smallest's is 1 when validation is linear."""
    from runner.errors import PipelineError
    from runner.pipeline.spec import load_pipeline

    def validate(path: Path) -> None:
        _fresh_state()
        try:
            load_pipeline(path)
        except PipelineError:
            pass  # unknown needs and stray keys are errors, found and reported in full: that is the work

    rows = []
    for shape in SHAPES:
        per_mb = {}
        for size in sizes:
            path = shaped_file(folder, shape, size)
            per_mb[size] = median_time(partial(validate, path), 3 if size < 5_000_000 else 1) / (size / 1e6)
            path.unlink()
        ratio = per_mb[sizes[-1]] / per_mb[sizes[0]]
        steps = " → ".join(f"{per_mb[size]:.2f}" for size in sizes)
        rows.append(
            Row(
                "12.4",
                f"validate s/MB, {shape}, {_mb(sizes[0])} → {_mb(sizes[-1])}",
                f"{ratio:.2f} ({steps} s/MB)",
                "flat (≤ 1.5)",
                ratio <= 1.5,
            )
        )
    return rows


def _mb(size: int) -> str:
    return f"{size / 1e6:g} MB" if size >= 1_000_000 else f"{size / 1e3:g} KB"
