"""The local platform's figures (issue 17: P4, P5, P6, P7), each against a baseline measured in the same run.
``python bench/run.py`` runs them; this module only measures.

* P4: how long after a task finishes on the local platform its stage finishes in qfrun;
* P5: batched generation (what batch-inference tasks run) against one prompt at a time and against a
  ``transformers`` pipeline with ``batch_size``, same model, rows and greedy answers;
* P6: W4A16 on the demo model: size and held-out accuracy against the source;
* P7: a service under 8 concurrent chats against the same chats one after another, with latency percentiles.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness import ROOT, Row, paired

ADDER = ROOT / "models" / "tiny-adder"
EVAL = ROOT / "data" / "addition" / "eval.jsonl"
CALIB = ROOT / "data" / "addition" / "calib.jsonl"
ROUNDS = 5  # P7: sequential and concurrent passes, alternated
PAIRS = 7  # P5: our batches and the pipeline, alternated
COMPRESS_PAIRS = 3  # P6: qfrun's compression and oneshot called directly
QUICKSTART_PAIRS = 3  # P8: the quickstart and the direct script, 1-2 minutes each


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def chats(data: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [[{"role": "user", "content": row["prompt"]}] for row in data]


def accuracy(model_dir: Path, data: list[dict[str, Any]]) -> float:
    from runner.local.engine.inference import InferenceParams, generate
    from runner.local.engine.loading import load_model

    model = load_model(model_dir)
    params = InferenceParams.from_dict({"temperature": 0, "max_output_tokens": 5})
    outputs = [g.text for g in generate(model, chats(data), params)]
    return sum(o.strip() == r["response"] for o, r in zip(outputs, data, strict=True)) / len(data)


def one_at_a_time(model: Any, chat: list[dict[str, Any]], max_new_tokens: int) -> str:
    """What a user would write without batching: ``model.generate`` on one rendered prompt, greedy."""
    from runner.local.engine.loading import render_chat

    tokenizer = model.tokenizer
    encoded = tokenizer(render_chat(tokenizer, chat), return_tensors="pt")
    output = model.model.generate(
        **encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    return str(tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)).strip()


def inference() -> list[Row]:
    """P5: our batched generation (what batch-inference tasks run) in batches of 64 against one prompt at a
    time and against a ``transformers`` pipeline with ``batch_size=64`` (what a user would write instead);
    then both with the whole file as one batch (a user could pass the pipeline a larger batch too, and here
    the whole file is the pipeline's best), same model, rows and greedy answers."""
    import transformers

    from runner.local.engine.inference import InferenceParams, generate
    from runner.local.engine.loading import load_model, render_chat

    data = rows(EVAL)
    model = load_model(ADDER)
    params = InferenceParams.from_dict({"temperature": 0, "max_output_tokens": 8})
    generate(model, chats(data[:8]), params)  # warm-up: the first generate pays one-off costs
    one_at_a_time(model, chats(data)[0], 8)
    start = time.perf_counter()
    naive = [one_at_a_time(model, chat, 8) for chat in chats(data)]
    naive_s = time.perf_counter() - start
    pipe = transformers.pipeline(
        "text-generation", model=model.model, tokenizer=model.tokenizer, batch_size=64, device="cpu"
    )
    texts = [render_chat(model.tokenizer, chat) for chat in chats(data)]
    options = {"max_new_tokens": 8, "do_sample": False, "return_full_text": False}
    results: list[Row] = []
    answers: dict[str, list[str]] = {}  # each side's answers from its last pass
    for size in (64, len(data)):

        def ours(size: int = size) -> None:
            batches = (chats(data[i : i + size]) for i in range(0, len(data), size))
            answers["ours"] = [g.text for batch in batches for g in generate(model, batch, params)]

        def pipeline(size: int = size) -> None:
            outputs = pipe(texts, batch_size=size, **options)
            answers["pipeline"] = [out[0]["generated_text"].strip() for out in outputs]

        # Alternated and paired like every other ratio here: one pass of each alone moved the ratio 2x under
        # load.
        pair = paired(ours, pipeline, repeat=PAIRS)
        batched_s, pipe_s = pair.candidate, pair.baseline
        same = sum(a == b for a, b in zip(naive, answers["ours"], strict=True))
        same_pipe = sum(a == b for a, b in zip(answers["ours"], answers["pipeline"], strict=True))
        label = "batches of 64" if size == 64 else "the whole file as one batch"
        results.append(
            Row(
                "P5",
                f"local batch inference ({len(data)} rows, {label}) ÷ one prompt at a time "
                "(`model.generate` per prompt)",
                f"{naive_s / batched_s:.1f}x ({batched_s:.2f} s vs {naive_s:.2f} s; "
                f"{same}/{len(data)} same answers)",
                "≥ 20x",
                naive_s / batched_s >= 20,
            )
        )
        results.append(
            Row(
                "P5",
                f"the same ÷ `transformers` text-generation pipeline, `batch_size={size}`",
                f"{1 / pair.ratio:.2f}x ({batched_s:.2f} s vs {pipe_s:.2f} s, medians of {PAIRS} alternated "
                f"pairs; {same_pipe}/{len(data)} same answers)",
                "≥ 1.5x",
                1 / pair.ratio >= 1.5,
            )
        )
    return results


def compression(pairs: int = COMPRESS_PAIRS) -> list[Row]:
    """P6: W4A16 on the demo model: size and accuracy against the source, and qfrun's compression (the
    engine function a ``compress`` task job runs) against the same recipe written with ``oneshot`` directly
    (bench/direct_baselines.py), alternated in this process: both pay their imports before the first pair."""
    import direct_baselines

    from runner.local.engine.compress import compress, folder_size

    data, calib = rows(EVAL), rows(CALIB)
    source_acc, source_size = accuracy(ADDER, data), folder_size(ADDER)
    with tempfile.TemporaryDirectory(prefix="qfrun-bench-") as folder:
        ours, theirs = Path(folder) / "w4", Path(folder) / "direct-w4"
        result: dict[str, Any] = {}

        def qfrun_side() -> None:
            result.update(compress(ADDER, ours, "Quantization", "W4A16C16", calib))

        pair = paired(
            qfrun_side, lambda: direct_baselines.compress(ADDER, theirs, "W4A16", calib), repeat=pairs
        )
        acc, direct_acc = accuracy(ours, data), accuracy(theirs, data)
        weights = [(out / "model.safetensors").stat().st_size for out in (ours, theirs)]
    size = result["size_bytes"] / source_size
    same = "same" if weights[0] == weights[1] else "different"
    return [
        Row("P6", "W4A16 size ÷ source (tiny-adder)", f"{size:.2f}", "≤ 0.30", size <= 0.30),
        Row(
            "P6",
            f"W4A16 accuracy change ({len(data)} rows)",
            f"{(acc - source_acc) * 100:+.1f} points ({source_acc:.3f} → {acc:.3f})",
            "≤ 1 point lost",
            (source_acc - acc) * 100 <= 1,
        ),
        Row(
            "P6",
            "compression wall ÷ llm-compressor called directly",
            f"{pair.ratio:.2f}x ({pair.candidate:.1f} s vs {pair.baseline:.1f} s, medians of {pairs} "
            f"alternated pairs; weights {weights[0]:,} vs {weights[1]:,} bytes ({same}), accuracy "
            f"{acc:.3f} vs {direct_acc:.3f})",
            "≤ 1.1x",
            pair.ratio <= 1.1,
        ),
    ]


def quickstart(folder: Path, pairs: int = QUICKSTART_PAIRS, smoke: bool = False) -> list[Row]:
    """P8: ``qfrun run pipelines/quickstart.yaml`` from a fresh state, with a QFRUN_HOME of its own so the
    local platform starts cold as a user's first run does, against bench/direct_baselines.py doing the same
    compute as one script; both are fresh processes, alternated (no warm-up: a cold start is the point).
    The direct script runs twice a round: as written (torch's default threads) and on one thread
    (``OMP_NUM_THREADS=1``), the count the engine gives a model this small, so that the second ratio
    compares the same thread policy. ``smoke`` runs only the direct script, on its small size, and reports
    no ratio."""
    script = [sys.executable, str(ROOT / "bench" / "direct_baselines.py")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if smoke:
        command = [*script, "--smoke", "--out", str(folder / "direct")]
        done = subprocess.run(command, env=env, check=False, capture_output=True, text=True)
        ran = done.returncode == 0 and (folder / "direct" / "summary.json").is_file()
        result = "smoke run of the direct script: " + ("ran" if ran else f"FAILED: {done.stderr[-300:]!r}")
        return [Row("P8", "quickstart wall ÷ the same compute as one direct script", result, "≤ 1.3x", None)]
    times: dict[str, list[float]] = {"qfrun": [], "direct": [], "direct-1": []}
    metrics: dict[str, Any] = {}
    rounds = [
        ("direct", "qfrun", "direct-1"),
        ("qfrun", "direct-1", "direct"),
        ("direct-1", "direct", "qfrun"),
    ]
    for index in range(pairs):
        for side in rounds[index % len(rounds)]:
            run_dir = folder / f"{side}-{index}"
            home = {**env, "QFRUN_HOME": str(run_dir / "home")}
            if side == "direct-1":
                home["OMP_NUM_THREADS"] = "1"
            command = [*script, "--out", str(run_dir / "out")]
            if side == "qfrun":
                pipeline = _quickstart_copy(run_dir / "repo")
                home["QFRUN_ALLOW_PATHS"] = str(pipeline.parent.parent)
                command = [
                    sys.executable,
                    "-m",
                    "runner",
                    "run",
                    str(pipeline),
                    "--state",
                    str(run_dir / "s.json"),
                    "-y",
                ]
            start = time.perf_counter()
            subprocess.run(command, env=home, cwd=ROOT, check=True, capture_output=True)
            times[side].append(time.perf_counter() - start)
            if side == "qfrun":
                stop = [sys.executable, "-m", "runner", "platform", "stop"]
                subprocess.run(stop, env=home, cwd=ROOT, check=False, capture_output=True)
                metrics["qfrun"] = _quickstart_accuracies(run_dir / "s.json")
            else:
                summary = json.loads((run_dir / "out" / "summary.json").read_text(encoding="utf-8"))
                metrics[side] = {k: v["accuracy"] for k, v in summary["metrics"].items()}
                metrics["deployed"] = summary["deployed"]
    ours = statistics.median(times["qfrun"])
    rows = []
    for side, measure in (
        ("direct", "quickstart wall ÷ the same compute as one direct script"),
        ("direct-1", "the same ÷ the direct script on one torch thread (`OMP_NUM_THREADS=1`)"),
    ):
        ratios = [q / d for q, d in zip(times["qfrun"], times[side], strict=True)]
        ratio = statistics.median(ratios)
        theirs = statistics.median(times[side])
        rows.append(
            Row(
                "P8",
                measure,
                f"{ratio:.2f}x ({ours:.1f} s vs {theirs:.1f} s, medians of {pairs} alternated rounds: "
                f"{', '.join(f'{r:.2f}x' for r in ratios)}; accuracy "
                f"base/w8/w4 {_triple(metrics['qfrun'])} vs {_triple(metrics[side])}, direct deployed "
                f"{metrics['deployed']})",
                "≤ 1.3x",
                ratio <= 1.3,
            )
        )
    return rows


def _quickstart_copy(repo: Path) -> Path:
    """The quickstart with its model and data in a folder of its own, so that each run starts from nothing
    (qfrun keeps per-sample results beside the pipeline) and the checkout's own state is left alone."""
    shutil.copytree(ROOT / "models" / "tiny-adder", repo / "models" / "tiny-adder")
    shutil.copytree(ROOT / "data" / "addition", repo / "data" / "addition")
    (repo / "pipelines").mkdir()
    return Path(shutil.copy2(ROOT / "pipelines" / "quickstart.yaml", repo / "pipelines" / "quickstart.yaml"))


def _quickstart_accuracies(state_file: Path) -> dict[str, float]:
    """base, w8 and w4 accuracy as qfrun's state recorded them."""
    stages = json.loads(state_file.read_text(encoding="utf-8"))["stages"]
    compressed = stages["compressed_eval"]["outputs"]["models"]
    return {
        "base": stages["base_eval"]["outputs"]["metrics"]["accuracy"],
        "w8": compressed["w8"]["metrics"]["accuracy"],
        "w4": compressed["w4"]["metrics"]["accuracy"],
    }


def _triple(values: dict[str, float]) -> str:
    return "/".join(f"{values[name]:.3f}" for name in ("base", "w8", "w4"))


def _platform(home: Path) -> Any:
    from runner.local.home import Home
    from runner.local.launcher import start
    from runner.platform.client import PlatformClient
    from runner.platform.settings import settings_from_pipeline

    endpoint = start(Home(home))
    environ = {"QFRUN_LOCAL_TOKEN": endpoint.token}  # the token the platform made at its first start
    return PlatformClient(settings_from_pipeline("local", environ=environ, local_base_url=endpoint.url))


def _wait(client: Any, ref: Any) -> Any:
    from runner.platform.protocol import TaskStatus

    while True:
        info = client.describe_task(ref)
        if info.status.terminal:
            assert info.status is TaskStatus.SUCCEEDED, info.message
            return info
        time.sleep(0.02)


def service(home: Path) -> list[Row]:
    """P7: 8 concurrent clients against the same chats one after another, through the platform's chat path."""
    from runner.platform.protocol import ChatMessage, TaskKind, TaskRequest

    client = _platform(home)
    version = client.import_model(name="tiny-adder", path=str(ADDER))
    params = {
        "model_version_id": version.version_id,
        "name": "bench",
        "url_suffix": "bench",
        "replicas": 1,
        "billing": {"payment": "postpaid", "charge": "computing_unit"},
        "resource_type": "CPU-1-1",
    }
    _wait(client, client.create_task(TaskRequest(TaskKind.SERVICE, "bench-service", params)))
    questions = [[ChatMessage("user", row["prompt"])] for row in rows(EVAL)[:64]]
    client.chat("bench", questions[0])  # warm-up

    def timed(question: list[Any]) -> float:
        start = time.perf_counter()
        client.chat("bench", question)
        return time.perf_counter() - start

    alone: list[float] = []
    together: list[float] = []

    def one_by_one() -> float:
        start = time.perf_counter()
        alone.extend(timed(question) for question in questions)
        return len(questions) / (time.perf_counter() - start)

    def eight_at_once() -> float:
        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            together.extend(pool.map(timed, questions))
        return len(questions) / (time.perf_counter() - start)

    # Rounds in alternation (the order flips each round), so a burst of load elsewhere hits both sides.
    rates = []
    for round_ in range(ROUNDS):
        order = (one_by_one, eight_at_once) if round_ % 2 == 0 else (eight_at_once, one_by_one)
        got = {action: action() for action in order}
        rates.append((got[one_by_one], got[eight_at_once]))
    ratio = statistics.median(con / seq for seq, con in rates)
    sequential = statistics.median(seq for seq, _ in rates)
    concurrent = statistics.median(con for _, con in rates)
    return [
        Row(
            "P7",
            f"local service, 8 concurrent clients ÷ sequential requests/s ({len(questions)} chats, "
            f"median of {ROUNDS} alternated rounds)",
            f"{ratio:.1f}x ({concurrent:.1f} vs {sequential:.1f} req/s)",
            "≥ 6x",
            ratio >= 6,
        ),
        Row(
            "P7",
            "latency p50 / p99, sequential; 8 concurrent",
            f"{_percentile(alone, 50)}/{_percentile(alone, 99)}; "
            f"{_percentile(together, 50)}/{_percentile(together, 99)} ms",
            "printed",
            None,
        ),
    ]


def _percentile(values: list[float], percent: int) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))] * 1000:.0f}"


def poll(home: Path) -> list[Row]:
    """P4: stage finish minus task finish, with the executor's local polling policy, over real infer tasks."""
    client = _platform(home)
    delays = [_poll_once(client, home / f"poll-{attempt}", attempt) for attempt in range(3)]
    late = statistics.median(delays)
    return [
        Row(
            "P4",
            "local platform: stage done - task done (median of 3 infer tasks)",
            f"{late:.2f} s ({', '.join(f'{d:.2f}' for d in delays)})",
            "≤ 0.25 s",
            late <= 0.25,
        )
    ]


def _poll_once(client: Any, folder: Path, attempt: int) -> float:
    from runner.pipeline.spec import load_pipeline
    from runner.platform.protocol import TaskKind, TaskRef, TaskStatus
    from runner.platform.registry import PLATFORM_KINDS
    from runner.run.executor import Executor, RunOptions
    from runner.state.file import StateFile
    from runner.testing.pipelines import Recorder

    folder.mkdir()
    (folder / "p.yaml").write_text(
        "version: 1\nname: poll\ndatasets: {eval: {path: " + str(EVAL) + "}}\nstages:\n"
        f"  m: {{type: model, import: {ADDER}}}\n"
        # a different temperature per attempt: a new task each time, not an up-to-date stage
        f"  i: {{type: infer, model: m, dataset: eval, params: {{temperature: {0.001 * attempt}}}}}\n"
    )
    # the checkout's demo model and data, outside this temporary folder: allowed as --allow-path would
    pipeline = load_pipeline(folder / "p.yaml", allow_paths=[ROOT / "models", ROOT / "data"])
    state = StateFile.load(folder / "s.json", "poll")
    done_at: dict[str, float] = {}

    class Watch(Recorder):
        def stage_finished(self, stage_id: str, outcome: str, message: str) -> None:
            done_at.setdefault(f"stage {stage_id}", time.monotonic())

    def watch_task() -> None:  # asks every 20 ms, to see when the platform says the task is done
        while "stage i" not in done_at:
            record = state.stages.get("i")
            if record is not None and record.task is not None:
                ref = TaskRef(TaskKind.BATCH_INFERENCE, record.task["task_id"], record.task["name"])
                if client.describe_task(ref).status is TaskStatus.SUCCEEDED:
                    done_at.setdefault("task", time.monotonic())
            time.sleep(0.02)

    watcher = threading.Thread(target=watch_task)
    watcher.start()
    Executor(pipeline, client, state, RunOptions(poll=PLATFORM_KINDS["local"].poll), Watch()).run()
    watcher.join()
    state.close()
    return done_at["stage i"] - done_at["task"]


def measure(home: Path, chosen: list[str]) -> list[Row]:
    """The chosen benchmarks (inference, compression, service, poll) with QFRUN_HOME in ``home``."""
    os.environ["QFRUN_HOME"] = str(home)
    results: list[Row] = []
    try:
        if "poll" in chosen:
            results += poll(home / "poll")
        if "inference" in chosen:
            results += inference()
        if "compression" in chosen:
            results += compression()
        if "service" in chosen:
            results += service(home / "service")
    finally:
        from runner.local.home import Home
        from runner.local.launcher import stop

        for sub in ("service", "poll"):
            if (home / sub).exists():
                stop(Home(home / sub))
    return results
