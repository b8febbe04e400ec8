"""Helpers to write small pipelines into a temporary folder and run them against the fake platform."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.pipeline.spec import Pipeline, load_pipeline
from runner.platform.registry import PollPolicy
from runner.run.executor import Executor, RunOptions, RunSummary
from runner.state.file import StateFile
from runner.testing.fake_platform import FakePlatform

FAST = PollPolicy(initial=0.001, factor=1.0, maximum=0.001, progress_every=0.0)

DEMO = """\
version: 1
name: demo
vars:
  min_accuracy: 0.5
datasets:
  qa: {path: qa.jsonl}
stages:
  base:
    type: model
    version_id: amv-base
  base_infer:
    type: infer
    model: base
    dataset: qa
    params: {temperature: 0.1}
  base_eval:
    type: evaluate
    infer: [base_infer]
    evaluators: [{kind: rule, accuracy: true}]
  w4:
    type: compress
    model: base
    strategy: quantization
    weight: W4A16C16
  serve:
    type: deploy
    model: w4
    if: ${{ stages.base_eval.outputs.metrics.accuracy >= vars.min_accuracy }}
    service:
      name: demo_svc
      url_suffix: demo_w4
      replicas: 2
      billing: {payment: prepaid, months: 3}
      resource_type: GPU-1-1
    smoke_test:
      - messages: [{role: user, content: "2+3=?"}]
        expect: {contains: "5"}
"""


# An evaluate stage with one opencompass evaluator over a model stage; format() with platform and benchmarks.
BENCH = """\
version: 1
name: bench
platform: {platform}
datasets:
  qa: {{path: qa.jsonl}}
stages:
  base:
    type: model
    version_id: amv-base
  bench:
    type: evaluate
    models: [base]
    dataset: qa
    evaluators:
      - kind: opencompass
        benchmarks: {benchmarks}
"""


# What the plan says DEMO's deploy stage buys (it runs on the local platform).
LOCAL_COST = (
    "2 replicas of GPU-1-1, prepaid 3 months (6 replica-months); "
    "free on the local platform, which runs it on this machine"
)


# A fine-tuning stage on a model named by its version id: the smallest pipeline whose task counts steps.
TUNE = """\
version: 1
name: tune
datasets:
  qa: {path: qa.jsonl}
stages:
  base: {type: model, version_id: amv-base}
  tuned: {type: finetune, model: base, dataset: qa}
"""


def write(folder: Path, text: str = DEMO, name: str = "pipeline.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    dataset = folder / "qa.jsonl"
    if not dataset.exists():
        dataset.write_text('{"prompt": "2+3=?", "response": "5"}\n')
    return path


class Recorder:
    """An Observer that remembers what it was told."""

    def __init__(self) -> None:
        self.finished: dict[str, tuple[str, str]] = {}
        self.logs: list[tuple[str, str]] = []
        self.started: list[str] = []
        self.progress: list[tuple[str, int | None, int | None, str]] = []
        self.live: list[tuple[str, dict[str, float]]] = []  # what tasks said of themselves as they went

    def stage_started(self, stage_id: str, note: str) -> None:
        self.started.append(stage_id)

    def stage_progress(
        self,
        stage_id: str,
        rows_done: int | None,
        rows_total: int | None,
        unit: str = "rows",
        live: Mapping[str, float] | None = None,
    ) -> None:
        self.progress.append((stage_id, rows_done, rows_total, unit))
        if live:
            self.live.append((stage_id, dict(live)))

    def stage_log(self, stage_id: str, message: str) -> None:
        self.logs.append((stage_id, message))

    def stage_finished(self, stage_id: str, outcome: str, message: str) -> None:
        self.finished[stage_id] = (outcome, message)


def state_path(pipeline: Pipeline) -> Path:
    return pipeline.path.parent / ".qfrun" / f"{pipeline.name}.state.json"


def run(path: Path, platform: FakePlatform, **options: Any) -> tuple[RunSummary, StateFile, Recorder]:
    pipeline = load_pipeline(path)
    state = StateFile.load(state_path(pipeline), pipeline.name)
    recorder = Recorder()
    options.setdefault("poll", FAST)
    summary = Executor(pipeline, platform, state, RunOptions(**options), recorder).run()
    state.close()
    return summary, StateFile.load(state_path(pipeline), pipeline.name), recorder


def outcomes(summary: RunSummary) -> dict[str, str]:
    return {stage_id: outcome.outcome for stage_id, outcome in summary.outcomes.items()}
