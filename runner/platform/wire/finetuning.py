"""Fine-tuning [F1]-[F5] (``/v2/finetuning``): CreateFineTuningTask's body, what DescribeFineTuningTask says,
the kind's entry.

On Qianfan a task runs inside a job (CreateFineTuningJob: name, base model, train mode [F1]); the task carries
the method (``parameterScale``), the hyper-parameters and the datasets [F2]. The client's create is one
action per kind, so this entry creates the task in the job that ``params.job_id`` names; the local platform
also takes the task's ``name`` and ``model`` (its documented extensions), which find it again by name after
a crash and let it run without a job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.platform.protocol import TaskKind, TaskRequest, TaskStatus
from runner.platform.wire.fields import opt_str, req_str
from runner.platform.wire.kinds import KindApi, register
from runner.platform.wire.statuses import FAILED, PENDING, RUNNING, STOPPED, SUCCEEDED

FINETUNING = TaskKind.define("finetuning")

# [F2] parameterScale; the pipeline spells the methods as the platform does.
METHODS = ("FullFineTuning", "LoRA")
# [F2] hyperParameterConfig keys the finetune stage passes through, spelt as documented (the SDK's
# TrainConfig aliases [F6]); which are accepted, and their ranges, depend on the base model [F5].
HYPER_PARAMETERS = (
    "epoch",
    "learningRate",
    "batchSize",
    "maxSeqLen",
    "loraRank",
    "loraAlpha",
    "loraDropout",
    "warmupRatio",
    "weightDecay",
    "schedulerName",
    "loggingSteps",
    "saveStep",
    "seed",
)


def _finetuning_body(request: TaskRequest, model_set_id: str, local: bool) -> dict[str, Any]:
    """CreateFineTuningTask [F2]: the job, the method, the hyper-parameters and the platform dataset."""
    p = request.params
    versions = [{"versionId": p["dataset_id"]}]
    dataset_config: dict[str, Any] = {"sourceType": "Platform", "versions": versions}
    if p.get("validation_dataset_id"):
        dataset_config["evalVersions"] = [{"versionId": p["validation_dataset_id"]}]  # (name not captured)
    body: dict[str, Any] = {
        "jobId": p.get("job_id") or "",
        "parameterScale": p["method"],
        "hyperParameterConfig": dict(p.get("hyper_parameters") or {}),
        "datasetConfig": dataset_config,
    }
    if local:
        body["name"] = request.name  # local: the task's own name, which finds it again after a crash
        body["model"] = p["model_version_id"]  # local: the base model version (on Qianfan the job's model)
    return body


def _finetuning_outcome(data: Mapping[str, Any], status: TaskStatus, report: Any) -> dict[str, Any]:
    """The finished task: its checkpoints [F3]; the published version and curve are local additions."""
    if status is not TaskStatus.SUCCEEDED:
        return {}
    checkpoints = data.get("checkpointList")
    return {
        "task_id": req_str(data, "taskId"),
        "job_id": opt_str(data, "jobId") or None,
        "checkpoints": checkpoints if isinstance(checkpoints, list) else [],
        "metrics": data.get("metrics") if isinstance(data.get("metrics"), dict) else {},
        "version_id": opt_str(data, "modelVersionId") or None,  # local: published on success
        "model_id": opt_str(data, "modelSetId") or None,  # local addition
        "loss_curve": data.get("lossCurve") if isinstance(data.get("lossCurve"), list) else [],  # local
    }


def _finetuning_message(data: Mapping[str, Any], status: TaskStatus) -> str:
    return opt_str(data, "failedReason") or opt_str(data, "runProgress")


# [F2][F3][F4]
FINETUNING_API = register(
    KindApi(
        kind=FINETUNING,
        route="finetuning",
        create="CreateFineTuningTask",
        describe="DescribeFineTuningTask",
        list="DescribeFineTuningTasks",
        cancel="StopFineTuningTask",
        request_id_field="taskId",
        result_id_field="taskId",
        name_field="name",
        list_field="taskList",  # (name not captured [F4])
        list_filter=None,
        list_fixed={},
        status_field="runStatus",
        status_words={  # [F3]: the SDK's TrainStatus
            "Waiting": PENDING,
            "Running": RUNNING,
            "Done": SUCCEEDED,
            "Failed": FAILED,
            "Stopped": STOPPED,
        },
        create_body=_finetuning_body,
        outcome=_finetuning_outcome,
        message=_finetuning_message,
    )
)
