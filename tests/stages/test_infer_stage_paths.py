"""The infer stage's paths on Qianfan's side (run by the executor on the fake platform, which answers as
Qianfan does): a preset model named by its endpoint, results read back from BOS into ``.qfrun/results/``,
results too large to copy, and a console dataset without the BOS folder batch inference needs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner.errors import PipelineError
from runner.pipeline.spec import load_pipeline
from runner.platform.protocol import TaskInfo, TaskKind, TaskRef
from runner.run.executor import SUCCEEDED
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import outcomes, run, write

PIPELINE = """\
version: 1
name: infer_paths
platform: {{kind: qianfan}}
datasets:
  qa: {{path: qa.jsonl}}
stages:
  base:
    type: model
{model}
  guess:
    type: infer
    model: base
    dataset: qa
    params: {{temperature: 0.2, max_output_tokens: 4}}
{extra}
"""


class BosFake(FakePlatform):
    """The fake platform whose batch tasks, like Qianfan's, write their output to a BOS folder [B5]."""

    rows_back: list[dict[str, Any]] | None = None
    read_back: list[tuple[str, str]]

    def __post_init__(self) -> None:
        super().__post_init__()
        self.read_back = []

    def describe_task(self, ref: TaskRef) -> TaskInfo:
        info = super().describe_task(ref)
        if ref.kind is TaskKind.BATCH_INFERENCE and info.result:
            result = {**info.result, "output_bos_uri": "bos:/bucket/out/", "output_dir": ref.task_id}
            return replace(info, result=result)
        return info

    def batch_results(self, output_bos_uri: str, output_dir: str) -> list[dict[str, Any]] | None:
        self.read_back.append((output_bos_uri, output_dir))
        return self.rows_back


def _pipeline(tmp_path: Path, model: str = "    version_id: amv-base", extra: str = "") -> Path:
    return write(tmp_path, PIPELINE.format(model=model, extra=extra))


def _params(platform: FakePlatform) -> dict[str, Any]:
    (task,) = [t for t in platform.tasks.values() if t["kind"] == TaskKind.BATCH_INFERENCE.value]
    return dict(task["params"])


def test_results_are_read_back_into_the_results_folder_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    platform = BosFake()
    platform.rows_back = [
        {"id": "1", "query": "2+3=?", "output": {"result": "5"}},
        {"id": "2", "query": "一加一", "output": {"result": "二"}},
    ]
    summary, state, recorder = run(_pipeline(tmp_path), platform)
    assert outcomes(summary)["guess"] == SUCCEEDED
    outputs = state.stages["guess"].outputs
    assert outputs["rows"] == 2
    results = tmp_path / outputs["results_file"]
    assert results.parent == tmp_path / ".qfrun" / "results"
    assert [
        json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()
    ] == platform.rows_back
    assert "一加一" in results.read_text(encoding="utf-8")  # kept readable, not escaped
    assert not list(results.parent.glob("*.part"))
    assert platform.read_back == [("bos:/bucket/out/", outputs["task_id"])]
    assert any("read back 2 results into" in message for _, message in recorder.logs)


def test_results_too_large_to_copy_stay_in_bos_and_the_log_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    platform = BosFake()  # rows_back None: past the size read back
    summary, state, recorder = run(_pipeline(tmp_path), platform)
    assert outcomes(summary)["guess"] == SUCCEEDED
    outputs = state.stages["guess"].outputs
    assert "results_file" not in outputs
    assert outputs["output_bos_uri"] == "bos:/bucket/out/"
    assert ("guess", "the results are too large to copy here; they are in bos:/bucket/out/") in recorder.logs
    assert not (tmp_path / ".qfrun" / "results").exists()


def test_a_preset_model_is_inferred_by_its_endpoint_not_a_version(tmp_path: Path) -> None:
    platform = BosFake()
    platform.rows_back = []
    summary, state, _ = run(_pipeline(tmp_path, model="    endpoint: ernie-speed-8k"), platform)
    assert outcomes(summary) == {"base": SUCCEEDED, "guess": SUCCEEDED}
    params = _params(platform)
    assert params["endpoint"] == "ernie-speed-8k"
    assert "model_version_id" not in params
    assert state.stages["guess"].outputs["model_version_id"] is None


def test_a_named_version_is_inferred_with_the_stages_parameters_and_bos_folders(tmp_path: Path) -> None:
    platform = BosFake()
    platform.rows_back = []
    extra = "    batch_size: 4\n    input_bos_uri: bos:/bucket/in/\n    output_bos_uri: bos:/bucket/mine/"
    summary, _, _ = run(_pipeline(tmp_path, extra=extra), platform)
    assert outcomes(summary)["guess"] == SUCCEEDED
    params = _params(platform)
    assert params["model_version_id"] == "amv-base"
    assert (params["batch_size"], params["input_bos_uri"], params["output_bos_uri"]) == (
        4,
        "bos:/bucket/in/",
        "bos:/bucket/mine/",
    )
    assert params["inference_params"]["temperature"] == 0.2


def test_a_console_dataset_without_its_bos_folder_is_refused_on_qianfan_where_it_is_named(
    tmp_path: Path,
) -> None:
    text = PIPELINE.format(model="    version_id: amv-base", extra="").replace(
        "qa: {path: qa.jsonl}", "qa: {qianfan_dataset_id: ds-console}"
    )
    with pytest.raises(PipelineError) as caught:
        load_pipeline(write(tmp_path, text))
    assert "batch inference on Qianfan reads its input from BOS" in str(caught.value)
    assert "add input_bos_uri" in str(caught.value)
    fixed = text.replace("    params:", "    input_bos_uri: bos:/bucket/in/\n    params:")
    assert load_pipeline(write(tmp_path, fixed)).stages["guess"].type == "infer"


def test_the_plan_says_what_the_stage_infers_with_its_parameters(tmp_path: Path) -> None:
    pipeline = load_pipeline(_pipeline(tmp_path))
    from runner.stages import STAGE_TYPES

    infer = STAGE_TYPES["infer"]
    detail = infer.plan(infer.planned_fields("guess", pipeline.stages["guess"].fields))
    assert detail.summary.startswith("batch inference of base on dataset qa (")
    assert "temperature" in detail.summary
