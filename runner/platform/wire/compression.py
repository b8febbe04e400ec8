"""Compression [C1]-[C4]: CreateModelCompTask's body, what a describe result says, the kind's entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.platform.protocol import TaskKind, TaskRequest, TaskStatus
from runner.platform.wire.fields import opt_int, opt_str, req_str
from runner.platform.wire.kinds import KindApi, register
from runner.platform.wire.statuses import FAILED, PENDING, RUNNING, STOPPED, SUCCEEDED


def _compression_body(request: TaskRequest, model_set_id: str, local: bool) -> dict[str, Any]:
    """CreateModelCompTask [C1]: the source version in its model set, a strategy and a weight format."""
    p = request.params
    config: dict[str, Any] = {"strategy": p["strategy"]}
    if p.get("weight"):
        config["weight"] = p["weight"]
    if local and p.get("dataset_id"):
        config["datasetId"] = p["dataset_id"]  # local: calibration data
    return {
        "name": request.name,
        "description": str(p.get("description") or f"qfrun {request.name}"),
        "sourceModelId": p["model_version_id"],
        "modelSetId": model_set_id,
        "config": config,
    }


def _compression_outcome(data: Mapping[str, Any], status: TaskStatus, report: Any) -> dict[str, Any]:
    """The new model version [C3]; size, scheme and time are the local platform's additions."""
    if status is not TaskStatus.SUCCEEDED:
        return {}
    return {
        "version_id": req_str(data, "modelId"),
        "model_id": opt_str(data, "modelSetId") or None,  # local addition
        "size_bytes": opt_int(data, "sizeBytes"),  # local addition
        "scheme": opt_str(data, "scheme") or None,  # local addition
        "seconds": data.get("seconds"),  # local addition
    }


# [C1][C2][C3][C4]
COMPRESSION = register(
    KindApi(
        kind=TaskKind.COMPRESSION,
        route="model",
        create="CreateModelCompTask",
        describe="DescribeModelCompTask",
        list="DescribeModelCompTasks",
        cancel="CancelModelCompTask",
        request_id_field="modelCompTaskId",
        result_id_field="id",
        name_field="name",
        list_field="modelCompTaskList",
        list_filter=None,  # only sourceModelId narrows the list [C3]
        list_fixed={},
        status_field="status",
        status_words={
            "creating": PENDING,
            "running": RUNNING,
            "stopping": RUNNING,
            "succeeded": SUCCEEDED,
            "failed": FAILED,
            "stopped": STOPPED,
        },
        create_body=_compression_body,
        outcome=_compression_outcome,
        bare_created_id=True,  # the id is the result [C2]
        needs_model_set=True,
    )
)
