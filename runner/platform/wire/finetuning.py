"""Fine-tuning [F1]-[F7] (``/v2/finetuning``): the job and task bodies, what DescribeFineTuningTask says,
publishing the result (CreateCustomModel ``sourceType: Train`` [M5]) and the kind's entry.

On Qianfan a task runs inside a job (CreateFineTuningJob: name, base model, train mode [F1]); the task carries
the method (``parameterScale``), the hyper-parameters and the datasets [F2]. The job is the kind's parent
(``ParentApi``): the client finds or creates it under the task's deterministic name and the executor records
its id before the task is created, so neither is ever made twice. The task itself has no name on Qianfan; it
is found again as the one task of its job. The local platform also takes the task's ``name`` (its documented
extension).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from runner.platform.protocol import TaskKind, TaskRequest, TaskStatus
from runner.platform.wire.fields import opt_str, req_str
from runner.platform.wire.kinds import KindApi, ParentApi, register
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


TRAIN_MODE = "SFT"  # [F1][F6]: supervised fine-tuning, the one mode the stage offers
JOB_LIST_FIELD = "jobList"  # DescribeFineTuningJobs' array [F7]
TASK_LIST_FIELD = "taskList"  # DescribeFineTuningTasks' array [F7]
PUBLISH_SOURCE = "Train"  # CreateCustomModel's sourceType for a training result [M5]


def job_body(request: TaskRequest, local: bool) -> dict[str, Any]:
    """CreateFineTuningJob [F1]: the job's name (the task's deterministic name, which finds it again), the
    base model and the train mode. Qianfan names the base by its model name ("ERNIE-Speed-8K" [F1]); the local
    platform, which has no preset names, by its model version id."""
    p = request.params
    model = p["model_version_id"] if local else p.get("base_model_name") or p["model_version_id"]
    return {
        "name": request.name,
        "model": model,
        "trainMode": TRAIN_MODE,
        "description": str(p.get("description") or ""),
    }


def publish_body(
    task_id: str, *, model_set_id: str, checkpoint_step: int | None, description: str
) -> dict[str, Any]:
    """CreateCustomModel with ``sourceType: Train`` [M5]: ``trainMeta.taskId``, and ``checkpointStep`` to
    publish a given step (the page's table names it so; its example says ``step``, which the local platform
    also takes)."""
    meta: dict[str, Any] = {"taskId": task_id}
    if checkpoint_step is not None:
        meta["checkpointStep"] = checkpoint_step
    return {
        "modelSetId": model_set_id,
        "sourceType": PUBLISH_SOURCE,
        "trainMeta": meta,
        "description": description,
    }


def publish_description(task_id: str, checkpoint_step: int | None) -> str:
    """The published version's description: what it was published from, which is how a publish whose answer
    was lost finds its version again (one version per task and step, whoever publishes it)."""
    step = "final step" if checkpoint_step is None else f"step {checkpoint_step}"
    return f"qfrun publish of fine-tuning task {task_id}, {step}"


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
        body["name"] = request.name  # local: the task's own name (Qianfan's task has none [F2])
    return body


def _finetuning_outcome(data: Mapping[str, Any], status: TaskStatus, report: Any) -> dict[str, Any]:
    """The finished task: its checkpoints and metrics [F3]; the curve and throughput are local additions. The
    model version comes after, from publishing the task (``publish_body``)."""
    if status is not TaskStatus.SUCCEEDED:
        return {}
    checkpoints = data.get("checkpointList")
    speed = data.get("tokensPerSecond")
    return {
        "task_id": req_str(data, "taskId"),
        "job_id": opt_str(data, "jobId") or None,
        "checkpoints": checkpoints if isinstance(checkpoints, list) else [],
        "metrics": data.get("metrics") if isinstance(data.get("metrics"), dict) else {},
        "loss_curve": data.get("lossCurve") if isinstance(data.get("lossCurve"), list) else [],  # local
        "tokens_per_second": speed if isinstance(speed, int | float) else None,  # local
        "eval_curve": data.get("evalCurve") if isinstance(data.get("evalCurve"), list) else [],  # local
    }


# The local platform's ``runMetrics`` (local field): DescribeFineTuningTask's documented answer has no running
# loss [F3][F8]. Its keys, and the names qfrun's progress shows them under.
RUN_METRICS_FIELD = "runMetrics"
RUN_METRICS = {"loss": "loss", "evalLoss": "eval_loss"}


def _finetuning_live(data: Mapping[str, Any], status: TaskStatus) -> dict[str, float]:
    """The latest training and validation loss, where the platform reports them (the local one). Only shown,
    never decided on, so a value that is not a number is left out rather than failing the poll."""
    metrics = data.get(RUN_METRICS_FIELD)
    if not isinstance(metrics, Mapping):
        return {}
    return {
        name: float(value)
        for key, name in RUN_METRICS.items()
        if isinstance(value := metrics.get(key), int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
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
        list_field=TASK_LIST_FIELD,
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
        live=_finetuning_live,
        parent=ParentApi(
            create="CreateFineTuningJob",
            list="DescribeFineTuningJobs",
            list_field=JOB_LIST_FIELD,
            name_field="name",
            id_field="jobId",
            param="job_id",
            child_filter="jobId",
            create_body=job_body,
        ),
    )
)
