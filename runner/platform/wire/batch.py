"""Batch inference [B1]-[B7]: CreateBatchInferenceTask's body, what a describe says, the kind's entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.platform.protocol import TaskKind, TaskRequest, TaskStatus
from runner.platform.wire.fields import opt_int, opt_str
from runner.platform.wire.kinds import KindApi, register
from runner.platform.wire.statuses import FAILED, PENDING, RUNNING, STOPPED, SUCCEEDED


def _batch_body(request: TaskRequest, model_set_id: str, local: bool) -> dict[str, Any]:
    """CreateBatchInferenceTask [B1][B2]: exactly one of endpoint/modelId; BOS directories in and out."""
    p = request.params
    body: dict[str, Any] = {
        "name": request.name,
        "description": str(p.get("description") or f"qfrun {request.name}"),
        "inferenceParams": dict(p.get("inference_params") or {}),
    }
    if p.get("endpoint"):
        body["endpoint"] = p["endpoint"]
    else:
        body["modelId"] = p["model_version_id"]
    if p.get("input_bos_uri"):
        body["inputBosUri"] = p["input_bos_uri"]
        body["outputBosUri"] = p["output_bos_uri"]
    if local:
        if p.get("dataset_id"):
            body["inputDatasetId"] = p["dataset_id"]  # local: a dataset version instead of BOS
        if p.get("batch_size") is not None:
            body["batchSize"] = p["batch_size"]
    return body


def _batch_outcome(data: Mapping[str, Any], status: TaskStatus, report: Any) -> dict[str, Any]:
    """A finished task's rows, its result dataset (local) or BOS output folder, and its token usage."""
    if status is not TaskStatus.SUCCEEDED:
        return {}
    done = opt_int(data, "progress")
    total = opt_int(data, "totalCount") or None  # (name not captured [B5]); 0 means "not known yet"
    outcome: dict[str, Any] = {"rows": total if total is not None else done}
    if data.get("outputDatasetId"):  # local: results are also a dataset version
        outcome["result_dataset_id"] = opt_str(data, "outputDatasetId")
    if data.get("outputBosUri"):
        outcome["output_bos_uri"] = opt_str(data, "outputBosUri")
        outcome["output_dir"] = opt_str(data, "outputDir")  # (SDK fixture name [B5])
    for key, wire_key in (("input_tokens", "inputTokenUsage"), ("output_tokens", "outputTokenUsage")):
        if data.get(wire_key) is not None:
            outcome[key] = opt_int(data, wire_key)
    return outcome


def _batch_message(data: Mapping[str, Any], status: TaskStatus) -> str:
    """``errorReason`` (and ``errorCode``) of a failed batch task [B4]; what `Expired` means."""
    reason = opt_str(data, "errorReason") or opt_str(data, "failedReason")
    code = opt_int(data, "errorCode")
    if reason and code is not None:
        reason = f"{reason} (error code {code})"
    if not reason and opt_str(data, "runStatus").lower() == "expired":
        reason = "the task ran past its completion window (Expired)"
    return reason if status is not TaskStatus.SUCCEEDED else ""


# [B2][B4][B6][B7]: `Expired` is a run that passed its completion window, so it failed.
BATCH_INFERENCE = register(
    KindApi(
        kind=TaskKind.BATCH_INFERENCE,
        route="batchinference",
        create="CreateBatchInferenceTask",
        describe="DescribeBatchInferenceTask",
        list="DescribeBatchInferenceTasks",
        cancel="StopBatchInferenceTask",
        request_id_field="taskId",
        result_id_field="taskId",
        name_field="name",
        list_field="taskList",
        list_filter=None,  # no name filter is documented: page through everything [B6]
        list_fixed={},
        status_field="runStatus",
        status_words={
            "Queuing": PENDING,
            "Running": RUNNING,
            "Stopping": RUNNING,
            "Done": SUCCEEDED,
            "Failed": FAILED,
            "Expired": FAILED,
            "Stopped": STOPPED,
        },
        create_body=_batch_body,
        outcome=_batch_outcome,
        message=_batch_message,
    )
)
