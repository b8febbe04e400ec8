"""Fine-tuning on the local platform: real training over HTTP (seconds: a few tiny steps), checkpoints at the
interval, the result published as a version of the base model with its lineage, and resume after a kill."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import astuple
from pathlib import Path

import pytest

from runner.local import launcher
from runner.local.engine.checkpoints import checkpoint_steps

REPO = Path(__file__).resolve().parents[2]
SUBTRACTION = REPO / "data" / "subtraction"


def _rows(count: int) -> str:
    return "".join(SUBTRACTION.joinpath("train.jsonl").read_text(encoding="utf-8").splitlines(True)[:count])


def _create(api, model, dataset, name: str, **hyper) -> str:
    body = {
        "name": name,
        "model": model["modelId"],
        "parameterScale": hyper.pop("method", "LoRA"),
        "hyperParameterConfig": {"batchSize": 4, "learningRate": 0.003, "saveStep": 2, "seed": 7, **hyper},
        "datasetConfig": {"sourceType": "Platform", "versions": [{"versionId": dataset["versionId"]}]},
    }
    return str(api.call("finetuning", "CreateFineTuningTask", body)["taskId"])


def _describe(api, task_id: str):
    return api.call("finetuning", "DescribeFineTuningTask", {"taskId": task_id})


def _finished(api, task_id: str):
    return lambda: (task := _describe(api, task_id))["runStatus"] not in ("Waiting", "Running") and task


def test_lora_training_publishes_a_merged_version_of_the_base_model_with_its_lineage(
    platform_api, platform_home, adder_dir
):
    model = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    dataset = platform_api.upload("sub16", _rows(16))
    task_id = _create(platform_api, model, dataset, "ft-1", maxSteps=4, loggingSteps=1)
    assert task_id.startswith("task-")
    assert _create(platform_api, model, dataset, "ft-1", maxSteps=4) == task_id  # idempotent by name
    done = platform_api.wait(_finished(platform_api, task_id), timeout=300)
    assert done["runStatus"] == "Done", done["failedReason"]
    assert (done["progress"], done["totalCount"], done["runProgress"]) == (4, 4, "100%")
    assert [point["step"] for point in done["lossCurve"]] == [1, 2, 3, 4]
    assert all(point["loss"] > 0 for point in done["lossCurve"])
    assert checkpoint_steps(platform_home.task_dir(task_id)) == [2, 4]  # every saveStep, the last two kept
    version = platform_api.call("model", "DescribeModel", {"modelId": done["modelVersionId"]})
    assert version["modelSetId"] == model["modelSetId"] == done["modelSetId"]
    assert version["sourceInfo"] == {"sourceType": "Train", "taskId": task_id}
    lineage = version["details"]["lineage"]
    assert (lineage["base_version_id"], lineage["task_id"]) == (model["modelId"], task_id)
    assert lineage["dataset_sha256"] == dataset["sha256"]
    # merged: a plain Llama checkpoint, no adapter files, the base model's shape and size
    folder = Path(platform_home.models_dir / done["modelVersionId"])
    assert not list(folder.glob("adapter_*"))
    assert json.loads((folder / "config.json").read_text())["model_type"] == "llama"
    assert _shapes(folder) == _shapes(adder_dir)


def _shapes(folder: Path) -> dict[str, list[int]]:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as weights:
        return {name: list(weights.get_slice(name).get_shape()) for name in weights.keys()}


def test_a_hyper_parameter_out_of_range_is_refused_at_create_naming_it(platform_api, adder_dir):
    model = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    dataset = platform_api.upload("sub4", _rows(4))
    body = {
        "name": "bad",
        "model": model["modelId"],
        "parameterScale": "LoRA",
        "hyperParameterConfig": {"epoch": 0},
        "datasetConfig": {"sourceType": "Platform", "versions": [{"versionId": dataset["versionId"]}]},
    }
    response = platform_api.post("/v2/finetuning?Action=CreateFineTuningTask", body)
    assert response.status_code == 400
    assert "epoch must be an integer in [1, 50], not 0." in response.text
    body["hyperParameterConfig"] = {"epochs": 2}
    response = platform_api.post("/v2/finetuning?Action=CreateFineTuningTask", body)
    assert "epochs is not a hyper-parameter here; use epoch," in response.text


@pytest.mark.slow  # a platform process killed with SIGKILL mid-training and started again
def test_a_platform_killed_mid_training_resumes_from_the_last_checkpoint(
    platform_home, platform_client, adder_dir
):
    api = platform_client(*astuple(launcher.start(platform_home)))
    try:
        model = api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
        dataset = api.upload("sub64", _rows(64))
        task_id = _create(api, model, dataset, "ft-kill", method="FullFineTuning", maxSteps=40, saveStep=4)
        workdir = platform_home.task_dir(task_id)
        api.wait(lambda: checkpoint_steps(workdir), timeout=300, every=0.05)
        running = launcher.status(platform_home)
        assert running is not None
        os.kill(running.pid, signal.SIGKILL)  # the platform; its orphaned job is killed on the next start
        api = platform_client(*astuple(launcher.start(platform_home)))
        done = api.wait(_finished(api, task_id), timeout=600)
        assert done["runStatus"] == "Done", done["failedReason"]
        trained = json.loads((workdir / "train_result.json").read_text(encoding="utf-8"))
        assert 0 < trained["resumed_from_step"] < 40  # not from step 0
        assert [point["step"] for point in done["lossCurve"]] == list(range(10, 41, 10))
    finally:
        launcher.stop(platform_home)
