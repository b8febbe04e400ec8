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


def test_a_job_and_task_train_and_create_custom_model_publishes_the_merged_result_once(
    platform_api, platform_home, adder_dir
):
    model = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    dataset = platform_api.upload("sub16", _rows(16))
    held_out = platform_api.upload("sub4", _rows(4))
    job = {"name": "job-1", "model": model["modelId"], "trainMode": "SFT"}
    job_id = platform_api.call("finetuning", "CreateFineTuningJob", job)["jobId"]
    assert platform_api.call("finetuning", "CreateFineTuningJob", job)["jobId"] == job_id  # by name
    jobs = platform_api.call("finetuning", "DescribeFineTuningJobs", {})["jobList"]
    assert [(item["jobId"], item["name"], item["model"]) for item in jobs] == [
        (job_id, "job-1", model["modelId"])
    ]
    body = {
        "jobId": job_id,
        "parameterScale": "LoRA",
        "hyperParameterConfig": {
            "batchSize": 4,
            "learningRate": 0.003,
            "saveStep": 2,
            "seed": 7,
            "maxSteps": 4,
            "loggingSteps": 2,
        },
        "datasetConfig": {
            "sourceType": "Platform",
            "versions": [{"versionId": dataset["versionId"]}],
            "evalVersions": [{"versionId": held_out["versionId"]}],
        },
    }
    task_id = platform_api.call("finetuning", "CreateFineTuningTask", body)["taskId"]
    assert task_id.startswith("task-")
    listed = platform_api.call("finetuning", "DescribeFineTuningTasks", {"jobId": job_id})["taskList"]
    assert [item["taskId"] for item in listed] == [task_id]
    done = platform_api.wait(_finished(platform_api, task_id), timeout=300)
    assert done["runStatus"] == "Done", done["failedReason"]
    assert (done["progress"], done["totalCount"], done["runProgress"]) == (4, 4, "100%")
    assert [point["step"] for point in done["lossCurve"]] == [2, 4]
    assert all(point["loss"] > 0 for point in done["lossCurve"])
    # the validation dataset's loss at every logging step, the last one in the metrics
    assert [point["step"] for point in done["evalCurve"]] == [2, 4]
    assert done["metrics"]["eval_loss"] == done["evalCurve"][-1]["eval_loss"] > 0
    assert done["checkpointList"] == [{"step": 4}]
    assert done["tokensPerSecond"] > 0
    assert checkpoint_steps(platform_home.task_dir(task_id)) == [2, 4]  # every saveStep, the last two kept
    publish = {
        "modelSetId": model["modelSetId"],
        "sourceType": "Train",
        "trainMeta": {"taskId": task_id},
        "description": "qfrun publish",
    }
    version = platform_api.call("model", "CreateCustomModel", publish)
    assert platform_api.call("model", "CreateCustomModel", publish)["modelId"] == version["modelId"]  # once
    assert version["modelSetId"] == model["modelSetId"]
    assert version["description"] == "qfrun publish"
    assert version["sourceInfo"] == {"sourceType": "Train", "taskId": task_id}
    lineage = version["details"]["lineage"]
    assert (lineage["base_version_id"], lineage["task_id"]) == (model["modelId"], task_id)
    assert lineage["dataset_sha256"] == dataset["sha256"]
    # merged: a plain Llama checkpoint, no adapter files, the base model's shape and size
    folder = Path(platform_home.models_dir / version["modelId"])
    assert not list(folder.glob("adapter_*"))
    assert json.loads((folder / "config.json").read_text())["model_type"] == "llama"
    assert _shapes(folder) == _shapes(adder_dir)
    # a step other than the final one is refused, naming the step the local platform keeps
    early = {**publish, "trainMeta": {"taskId": task_id, "checkpointStep": 2}}
    response = platform_api.post("/v2/model?Action=CreateCustomModel", early)
    assert response.status_code == 400
    assert "final step (4) only, not step 2" in response.text
    imported = {**publish, "sourceType": "Import"}  # an import from BOS: api_models' part of the action
    response = platform_api.post("/v2/model?Action=CreateCustomModel", imported)
    assert response.status_code == 400
    assert "needs the field 'importMeta'" in response.text


def test_the_documented_job_and_task_example_bodies_are_accepted_as_they_are(platform_api, adder_dir):
    model = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    dataset = platform_api.upload("sub8", _rows(8))
    # [F1]'s example, the preset model name replaced by a local version (the local platform has no presets)
    job = {
        "name": "test_name",
        "description": "test_description",
        "model": model["modelId"],
        "trainMode": "SFT",
    }
    job_id = platform_api.call("finetuning", "CreateFineTuningJob", job)["jobId"]
    # [F2]'s example, ids replaced: one epoch at lr 3e-5, a 20% split held out for validation
    task = {
        "jobId": job_id,
        "parameterScale": "FullFineTuning",
        "hyperParameterConfig": {"epoch": 1, "learningRate": 0.00003, "maxSeqLen": 4096},
        "datasetConfig": {
            "sourceType": "Platform",
            "versions": [{"versionId": dataset["versionId"]}],
            "splitRatio": 20,
        },
    }
    created = platform_api.call("finetuning", "CreateFineTuningTask", task)
    assert created["jobId"] == job_id
    done = platform_api.wait(_finished(platform_api, created["taskId"]), timeout=300)
    assert done["runStatus"] == "Done", done["failedReason"]
    assert done["jobId"] == job_id
    assert done["metrics"]["eval_loss"] > 0
    evals = {**task, "datasetConfig": {**task["datasetConfig"], "evalVersions": "ds-1"}}
    response = platform_api.post("/v2/finetuning?Action=CreateFineTuningTask", evals)
    assert response.status_code == 400
    assert "evalVersions must hold one {versionId}." in response.text
    bad = {**task, "datasetConfig": {**task["datasetConfig"], "splitRatio": 101}}
    response = platform_api.post("/v2/finetuning?Action=CreateFineTuningTask", bad)
    assert response.status_code == 400
    assert "splitRatio must be an integer in [0, 100], not 101." in response.text


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


def test_a_training_job_killed_with_sigkill_fails_only_its_task(platform_api, platform_home, adder_dir):
    from runner.local.store import Store

    model = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    dataset = platform_api.upload("sub16", _rows(16))
    doomed = _create(platform_api, model, dataset, "ft-doomed", maxSteps=100000, saveStep=100000)
    store = Store(platform_home.db_path)
    try:
        task = platform_api.wait(
            lambda: (
                (row := store.task(doomed)) is not None
                and row.worker_pid
                and _describe(platform_api, doomed)["progress"]
                and row
            ),
            timeout=300,
            every=0.05,
        )
        os.kill(task.worker_pid, signal.SIGKILL)  # the training job's process, not the platform
    finally:
        store.close()
    failed = platform_api.wait(_finished(platform_api, doomed), timeout=60)
    assert failed["runStatus"] == "Failed"
    assert f"job of task {doomed} ended with signal 9" in failed["failedReason"]
    publish = {"modelSetId": model["modelSetId"], "sourceType": "Train", "trainMeta": {"taskId": doomed}}
    response = platform_api.post("/v2/model?Action=CreateCustomModel", publish)
    assert response.status_code == 400
    assert f"the fine-tuning task {doomed} is failed; publish it once it is Done." in response.text
    # the platform and its other tasks go on: another training runs to the end
    other = _create(platform_api, model, dataset, "ft-after", maxSteps=2)
    done = platform_api.wait(_finished(platform_api, other), timeout=300)
    assert done["runStatus"] == "Done", done["failedReason"]


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
