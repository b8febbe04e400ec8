"""Per-sample results as Qianfan hands them out: an export task that writes a file [E7][E14].

``CreateEvalResultExportTask`` ``{evalId, storageType, bucket?, exportContent}`` answers the export's
``taskId`` (``amemt-…``); ``DescribeEvalResultExportTask`` ``{taskId}`` answers ``{taskId, evalId,
exportContent, state, storageType, <path>, downloadUrl}``. The path's field name is not captured on the
official page (it is described as "the full storage path when storageType is BOS"): it is read as
``storagePath`` (the v2 dataset export's name for the same thing) or ``exportPath`` (the v1 export's). The
file's layout is read by runner.platform.eval_export_file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.platform.wire.evaluation import METRIC_WIRE_NAMES
from runner.platform.wire.fields import WireError, obj, opt_str, req_str

EXPORT_CREATE_ACTION = "CreateEvalResultExportTask"
EXPORT_DESCRIBE_ACTION = "DescribeEvalResultExportTask"
EXPORT_PREFIX = "amemt"  # DescribeEvalResultExportTask's example id amemt-gmqxxxxxcm [E14]
EXPORT_CONTENT = ("prompt", "prediction", "completion", "metrics")  # all but system (persona) [E14]
EXPORT_CONTENT_ALLOWED = frozenset({*EXPORT_CONTENT, "system"})
SYS_STORAGE = "sysStorage"  # the platform's shared storage; the default, and the only one with a downloadUrl
BOS_STORAGE = "BOS"
STORAGE_TYPES = (BOS_STORAGE, SYS_STORAGE)
EXPORT_QUEUED, EXPORT_RUNNING, EXPORT_FAILED, EXPORT_SUCCEEDED = "Queued", "Running", "Failed", "Succeeded"
EXPORT_STATES = (EXPORT_QUEUED, EXPORT_RUNNING, EXPORT_FAILED, EXPORT_SUCCEEDED)
PATH_FIELDS = ("storagePath", "exportPath")  # name not captured; see the module's docstring


@dataclass(frozen=True)
class ExportTask:
    """One result export as DescribeEvalResultExportTask answers it."""

    task_id: str
    eval_id: str
    state: str
    storage_type: str
    storage_path: str  # bos:/bucket/key for BOS; empty for sysStorage
    download_url: str  # sysStorage only

    @property
    def succeeded(self) -> bool:
        return self.state == EXPORT_SUCCEEDED

    @property
    def failed(self) -> bool:
        return self.state == EXPORT_FAILED


def export_body(eval_id: str, bucket: str | None = None) -> dict[str, Any]:
    """CreateEvalResultExportTask's body: every content but the persona, to the platform's storage unless a
    BOS ``bucket`` is given."""
    body: dict[str, Any] = {
        "evalId": eval_id,
        "storageType": BOS_STORAGE if bucket else SYS_STORAGE,
        "exportContent": list(EXPORT_CONTENT),
    }
    if bucket:
        body["bucket"] = bucket
    return body


def export_created(result: Any) -> str:
    """The export's id: ``result.taskId`` (the Describe page says the id is the create's field taskId)."""
    return req_str(obj(result, "result"), "taskId")


def export_task(result: Any) -> ExportTask:
    data = obj(result, "result")
    state = req_str(data, "state")
    if state not in EXPORT_STATES:
        raise WireError(
            f"the field 'result.state' should be one of {', '.join(EXPORT_STATES)}, not {state!r}"
        )
    path = next((opt_str(data, name) for name in PATH_FIELDS if opt_str(data, name)), "")
    return ExportTask(
        task_id=req_str(data, "taskId"),
        eval_id=opt_str(data, "evalId"),
        state=state,
        storage_type=opt_str(data, "storageType") or SYS_STORAGE,
        storage_path=path,
        download_url=opt_str(data, "downloadUrl"),
    )


def result_record(
    version_id: str, record: Mapping[str, Any], metrics: Mapping[str, float], passed: bool | None
) -> dict[str, Any]:
    """One row of the local platform's export file (from the engine's record, qfrun's metric names): the
    export's content names [E14] for what was asked, answered and expected, and the metrics under the
    report's wire names; ``modelId``, ``index``, ``judgeReason``, ``passed`` and ``benchmark`` (an OpenCompass
    benchmark item's benchmark, its ``index`` counted within it) are local columns."""
    entry: dict[str, Any] = {
        "modelId": version_id,
        "index": record["index"],
        "prompt": record.get("input", ""),
        "prediction": record.get("output", ""),
        "completion": record.get("expected", ""),
        "metrics": {METRIC_WIRE_NAMES.get(name, name): value for name, value in metrics.items()},
        "passed": passed,
    }
    if record.get("reason"):
        entry["judgeReason"] = record["reason"]
    if record.get("benchmark"):
        entry["benchmark"] = record["benchmark"]
    return entry
