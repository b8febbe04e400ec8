"""The fine-tuning kind's wire entry [F1]-[F3][M5]: the job, task and publish bodies are the documented
examples' shapes, the documented status words map to qfrun's, and a finished task's outcome carries its
checkpoints."""

from __future__ import annotations

import pytest

from runner.platform import wire
from runner.platform.protocol import TaskInfo, TaskRef, TaskRequest, TaskStatus
from runner.platform.wire.finetuning import FINETUNING, FINETUNING_API

REQUEST = TaskRequest(
    FINETUNING,
    "qfrun-ft-1",
    {
        "model_version_id": "amv-base",
        "method": "FullFineTuning",
        "hyper_parameters": {"epoch": 1, "learningRate": 0.00003, "maxSeqLen": 4096},
        "dataset_id": "ds-he8srs01ym0b8fh7",
        "job_id": "job-1xzycis4jm3b",
    },
)


def test_the_create_body_for_qianfan_is_the_documented_example_without_local_fields() -> None:
    # [F2]'s example body, less splitRatio (optional: the platform's default split)
    assert wire.create_body(REQUEST) == {
        "jobId": "job-1xzycis4jm3b",
        "parameterScale": "FullFineTuning",
        "hyperParameterConfig": {"epoch": 1, "learningRate": 0.00003, "maxSeqLen": 4096},
        "datasetConfig": {"sourceType": "Platform", "versions": [{"versionId": "ds-he8srs01ym0b8fh7"}]},
    }


def test_the_local_create_body_adds_only_the_task_name() -> None:
    body = wire.create_body(REQUEST, local=True)
    assert body["name"] == "qfrun-ft-1"
    assert "model" not in body
    assert wire.created_id(FINETUNING, {"taskId": "task-0tgmn4a7h4i6"}) == "task-0tgmn4a7h4i6"


def test_the_job_body_is_the_documented_example_shape_with_the_base_model_name_on_qianfan() -> None:
    job = FINETUNING_API.parent
    assert job is not None
    assert (job.create, job.list, job.param) == (
        "CreateFineTuningJob",
        "DescribeFineTuningJobs",
        "job_id",
    )
    request = TaskRequest(
        FINETUNING,
        "test_name",
        {
            "model_version_id": "amv-pzqtzdspm77m",
            "base_model_name": "ERNIE-Speed-8K",
            "description": "test_description",
        },
    )
    # [F1]'s example: {"name", "description", "model": "ERNIE-Speed-8K", "trainMode": "SFT"}
    assert job.create_body(request, False) == {
        "name": "test_name",
        "description": "test_description",
        "model": "ERNIE-Speed-8K",
        "trainMode": "SFT",
    }
    assert job.create_body(request, True)["model"] == "amv-pzqtzdspm77m"  # local: no preset names


def test_the_publish_body_is_create_custom_model_with_source_type_train() -> None:
    # [M5]'s example: {"modelSetId", "sourceType": "Train", "trainMeta": {"taskId", "step": 50}}; the table
    # names the step checkpointStep, which is what qfrun sends
    body = wire.publish_body("task-sdvsdfbhjsdfb", model_set_id="am-ash", checkpoint_step=50, description="d")
    assert body == {
        "modelSetId": "am-ash",
        "sourceType": "Train",
        "trainMeta": {"taskId": "task-sdvsdfbhjsdfb", "checkpointStep": 50},
        "description": "d",
    }
    final = wire.publish_body("task-1", model_set_id="am-1", checkpoint_step=None, description="d")
    assert final["trainMeta"] == {"taskId": "task-1"}
    assert wire.publish_description("task-1", None) != wire.publish_description("task-1", 50)


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("Waiting", TaskStatus.PENDING),
        ("Running", TaskStatus.RUNNING),
        ("Done", TaskStatus.SUCCEEDED),
        ("Failed", TaskStatus.FAILED),
        ("Stopped", TaskStatus.STOPPED),
    ],
)
def test_every_documented_run_status_maps_to_a_task_status(word: str, status: TaskStatus) -> None:
    assert wire.status_of(FINETUNING, {"runStatus": word}) is status


def test_a_finished_task_yields_its_checkpoints_and_a_running_one_its_progress() -> None:
    ref = TaskRef(FINETUNING, "task-0tgmn4a7h4i6", "qfrun-ft-1")
    done = {
        "taskId": "task-0tgmn4a7h4i6",
        "jobId": "job-1xzycis4jm3b",
        "runStatus": "Done",
        "runProgress": "100%",
        "checkpointList": [{"step": 50}],
        "metrics": {"train_loss": 0.1},
    }
    info: TaskInfo = wire.task_info(FINETUNING, ref, done)
    assert info.status is TaskStatus.SUCCEEDED
    assert info.result["checkpoints"] == [{"step": 50}]
    assert info.result["job_id"] == "job-1xzycis4jm3b"
    assert "version_id" not in info.result
    running = wire.task_info(FINETUNING, ref, {**done, "runStatus": "Running", "runProgress": "40%"})
    assert (running.status, running.message, running.result) == (TaskStatus.RUNNING, "40%", {})


def test_a_running_task_yields_the_local_running_losses_and_a_qianfan_answer_none() -> None:
    ref = TaskRef(FINETUNING, "task-0tgmn4a7h4i6", "qfrun-ft-1")
    running = {"taskId": "task-0tgmn4a7h4i6", "runStatus": "Running", "runProgress": "40%"}
    assert wire.task_info(FINETUNING, ref, running).live == {}  # [F3][F8]: no running loss on Qianfan
    local = {**running, "runMetrics": {"step": 120, "loss": 0.412, "evalStep": 120, "evalLoss": 0.5}}
    assert wire.task_info(FINETUNING, ref, local).live == {"loss": 0.412, "eval_loss": 0.5}
    # shown only, never decided on: what is not a number is left out rather than failing the poll
    odd = {**running, "runMetrics": {"loss": "NaN", "evalLoss": True}}
    assert wire.task_info(FINETUNING, ref, odd).live == {}
    assert wire.task_info(FINETUNING, ref, {**running, "runMetrics": [1.0]}).live == {}
    assert wire.task_info(FINETUNING, ref, {**running, "runMetrics": {"loss": float("inf")}}).live == {}
