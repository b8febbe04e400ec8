"""Benchmark of the local platform, each figure against a baseline measured in the same run.

    python bench/local_bench.py [--only inference,compression,service,poll]

* inference: batched generation (what batch-inference tasks run) against a naive one-prompt-at-a-time
  ``generate`` loop, same model and rows: tokens/s and the ratio (goal >= 5x);
* compression: every scheme on the demo model: size and held-out accuracy against the source (goal: W4A16C16
  <= 0.35x the size, within 2 accuracy points);
* service: a service deployed on the local platform under 8 concurrent chats against the same chats one after
  another, through the platform's chat path (goal >= 3x throughput);
* poll: how long after a task finishes on the local platform its stage finishes in qfrun (goal <= 1 s; the
  official SDK sleeps 15-30 s between polls).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

ADDER = ROOT / "models" / "tiny-adder"
EVAL = ROOT / "data" / "addition" / "eval.jsonl"
CALIB = ROOT / "data" / "addition" / "calib.jsonl"


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


def inference() -> None:
    from runner.local.engine.inference import InferenceParams, generate
    from runner.local.engine.loading import load_model

    data = rows(EVAL)
    model = load_model(ADDER)
    params = InferenceParams.from_dict({"temperature": 0, "max_output_tokens": 8})
    generate(model, chats(data[:8]), params)  # warm-up: the first generate pays one-off costs
    start = time.perf_counter()
    naive = [g for chat in chats(data) for g in generate(model, [chat], params)]
    naive_s = time.perf_counter() - start
    start = time.perf_counter()
    batched = [g for i in range(0, len(data), 64) for g in generate(model, chats(data[i : i + 64]), params)]
    batched_s = time.perf_counter() - start
    naive_tokens = sum(g.completion_tokens for g in naive)
    batched_tokens = sum(g.completion_tokens for g in batched)
    same = sum(a.text == b.text for a, b in zip(naive, batched, strict=True))
    print(
        f"inference ({len(data)} rows, greedy): one prompt at a time {naive_tokens / naive_s:,.0f} tok/s, "
        f"batches of 64 {batched_tokens / batched_s:,.0f} tok/s = "
        f"{(batched_tokens / batched_s) / (naive_tokens / naive_s):.1f}x (goal >= 5x); "
        f"{same}/{len(data)} identical answers"
    )


def compression() -> None:
    from runner.local.engine.compress import compress, folder_size

    data, calib = rows(EVAL), rows(CALIB)
    source_acc, source_size = accuracy(ADDER, data), folder_size(ADDER)
    print(
        f"compression of tiny-adder ({source_size / 1e6:.2f} MB, "
        f"accuracy {source_acc:.3f} on {len(data)} rows):"
    )
    with tempfile.TemporaryDirectory(prefix="qfrun-bench-") as folder:
        for strategy, weight in (
            ("Quantization", "INT8-PTQ"),
            ("Quantization", "W8A16C16"),
            ("Quantization", "W4A16C16"),
            ("Sparsity", None),
        ):
            out = Path(folder) / (weight or "sparse")
            result = compress(ADDER, out, strategy, weight, calib)
            acc = accuracy(out, data)
            print(
                f"  {weight or 'Sparsity 2:4':<12} {result['size_bytes'] / 1e6:5.2f} MB "
                f"({result['size_bytes'] / source_size:.2f}x), accuracy {acc:.3f} "
                f"({(acc - source_acc) * 100:+.1f} points), {result['seconds']:.1f} s"
            )


def _platform(home: Path) -> Any:
    from runner.local.daemon import start
    from runner.local.home import Home
    from runner.platform.client import PlatformClient
    from runner.platform.settings import settings_from_pipeline

    endpoint = start(Home(home))
    return PlatformClient(settings_from_pipeline("local", local_base_url=endpoint.url))


def _wait(client: Any, ref: Any) -> Any:
    from runner.platform.protocol import TaskStatus

    while True:
        info = client.describe_task(ref)
        if info.status.terminal:
            assert info.status is TaskStatus.SUCCEEDED, info.message
            return info
        time.sleep(0.02)


def service(home: Path) -> None:
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
    start = time.perf_counter()
    for question in questions:
        client.chat("bench", question)
    sequential = len(questions) / (time.perf_counter() - start)
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda q: client.chat("bench", q), questions))
    concurrent = len(questions) / (time.perf_counter() - start)
    print(
        f"service (1 replica, through the platform's chat path, {len(questions)} chats): sequential "
        f"{sequential:.1f} req/s, 8 concurrent clients {concurrent:.1f} req/s = "
        f"{concurrent / sequential:.1f}x "
        "(goal >= 3x)"
    )


def poll(home: Path) -> None:
    """Stage finish minus task finish, with the executor's local polling policy, over real infer tasks."""
    client = _platform(home)
    delays = [_poll_once(client, home / f"poll-{attempt}", attempt) for attempt in range(3)]
    print(
        f"poll: a finished task's stage finished {statistics.median(delays):.2f} s later (median of "
        f"{len(delays)}: {', '.join(f'{d:.2f}' for d in delays)}; goal <= 1 s)"
    )


def _poll_once(client: Any, folder: Path, attempt: int) -> float:
    from runner.commands.run import PollPolicy
    from runner.pipeline.spec import load_pipeline
    from runner.platform.protocol import TaskKind, TaskRef, TaskStatus
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
    pipeline = load_pipeline(folder / "p.yaml")
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
    Executor(pipeline, client, state, RunOptions(poll=PollPolicy(maximum=1.0)), Watch()).run()
    watcher.join()
    state.close()
    return done_at["stage i"] - done_at["task"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="inference,compression,service,poll")
    chosen = parser.parse_args().only.split(",")
    with tempfile.TemporaryDirectory(prefix="qfrun-bench-home-") as name:
        home = Path(name)
        os.environ["QFRUN_HOME"] = str(home)
        try:
            if "inference" in chosen:
                inference()
            if "compression" in chosen:
                compression()
            if "service" in chosen:
                service(home / "service")
            if "poll" in chosen:
                poll(home / "poll")
        finally:
            from runner.local.daemon import stop
            from runner.local.home import Home

            for sub in ("service", "poll"):
                if (home / sub).exists():
                    stop(Home(home / sub))


if __name__ == "__main__":
    main()
