"""The wire shapes of docs/platform-api.md: request bodies out, typed protocol values in.

Everything that knows a JSON field name lives here, so the client reads like the protocol and a change of
the contract is one edit. Parsers raise ``WireError`` naming the field (``result.runStatus``); the client
turns it into a ``PlatformProtocolError`` with the request's coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.platform.protocol import (
    ChatReply,
    Dataset,
    ModelVersion,
    TaskInfo,
    TaskKind,
    TaskRef,
    TaskRequest,
    TaskStatus,
)


class WireError(Exception):
    """A response that does not have the documented shape; the message names the field."""


@dataclass(frozen=True)
class KindApi:
    """The actions and field names of one task kind."""

    route: str
    create: str
    describe: str
    list: str
    cancel: str
    id_field: str  # in describe requests and results
    name_field: str  # the deterministic name, in create requests and list items
    list_field: str  # the array in list results
    list_filter: str  # the request field that filters a list by name
    status_field: str


KIND_API: Mapping[TaskKind, KindApi] = {
    TaskKind.BATCH_INFERENCE: KindApi(
        "batchinference",
        "CreateBatchInferenceTask",
        "DescribeBatchInferenceTask",
        "DescribeBatchInferenceTasks",
        "StopBatchInferenceTask",
        "taskId",
        "name",
        "taskList",
        "name",
        "runStatus",
    ),
    TaskKind.EVALUATION: KindApi(
        "eval",
        "CreateEvalTask",
        "DescribeEvalTask",
        "DescribeEvalTasks",
        "StopEvalTask",
        "taskId",
        "taskName",
        "taskList",
        "keyFilter",
        "status",
    ),
    TaskKind.COMPRESSION: KindApi(
        "model",
        "CreateModelCompTask",
        "DescribeModelCompTask",
        "DescribeModelCompTasks",
        "CancelModelCompTask",
        "modelCompTaskId",
        "name",
        "taskList",
        "name",
        "status",
    ),
    # A service is released, not deleted: ``cancel`` goes to SERVICE_RELEASE_ROUTE (see release_body). The
    # list field is not captured in Qianfan's pages; ``serviceList`` is what the SDK reads (service_items).
    TaskKind.SERVICE: KindApi(
        "service",
        "CreateService",
        "DescribeService",
        "DescribeServices",
        "ReleaseComputeUnit",
        "serviceId",
        "name",
        "serviceList",
        "name",
        "runStatus",
    ),
}
EVAL_REPORT_ACTION = "DescribeEvalTaskReport"
QIANFAN_EVAL_CANCEL_ACTION = "DeleteEvalTask"

_STATUS_WORDS: Mapping[TaskKind, Mapping[str, TaskStatus]] = {
    TaskKind.BATCH_INFERENCE: {
        "pending": TaskStatus.PENDING,
        "creating": TaskStatus.PENDING,
        "running": TaskStatus.RUNNING,
        "stopping": TaskStatus.RUNNING,
        "done": TaskStatus.SUCCEEDED,
        "failed": TaskStatus.FAILED,
        "stopped": TaskStatus.STOPPED,
    },
    TaskKind.EVALUATION: {
        "pending": TaskStatus.PENDING,
        "doing": TaskStatus.RUNNING,
        "doingwithmanualbegin": TaskStatus.RUNNING,
        "stopping": TaskStatus.RUNNING,
        "done": TaskStatus.SUCCEEDED,
        "partlydone": TaskStatus.FAILED,
        "failed": TaskStatus.FAILED,
        "stopped": TaskStatus.STOPPED,
    },
    TaskKind.COMPRESSION: {
        "creating": TaskStatus.PENDING,
        "running": TaskStatus.RUNNING,
        "stopping": TaskStatus.RUNNING,
        "succeeded": TaskStatus.SUCCEEDED,
        "failed": TaskStatus.FAILED,
        "stopped": TaskStatus.STOPPED,
    },
    # DescribeService runStatus [S2][S3]: exactly these five words; anything else is a protocol error.
    TaskKind.SERVICE: {
        "new": TaskStatus.PENDING,
        "deploying": TaskStatus.RUNNING,
        "serving": TaskStatus.SUCCEEDED,
        "failed": TaskStatus.FAILED,
        "stopped": TaskStatus.STOPPED,
    },
}

# -- field access ----------------------------------------------------------------------------------


def obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WireError(f"the field '{where}' should be an object, not {type(value).__name__}")
    return value


def req_str(data: Mapping[str, Any], key: str, where: str = "result") -> str:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        shown = "missing" if value is None else f"{type(value).__name__} {value!r}"
        raise WireError(f"the field '{where}.{key}' should be a non-empty string, not {shown}")
    return str(value)


def opt_str(data: Mapping[str, Any], key: str, where: str = "result") -> str:
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise WireError(f"the field '{where}.{key}' should be a string, not {type(value).__name__}")
    return str(value)


def opt_int(data: Mapping[str, Any], key: str, where: str = "result") -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise WireError(f"the field '{where}.{key}' should be an integer, not {type(value).__name__}")
    try:
        return int(value)
    except ValueError:
        raise WireError(f"the field '{where}.{key}' should be an integer, not {value!r}") from None


def status_of(kind: TaskKind, data: Mapping[str, Any]) -> TaskStatus:
    field = KIND_API[kind].status_field
    word = req_str(data, field)
    try:
        return _STATUS_WORDS[kind][word.lower()]
    except KeyError:
        raise WireError(f"the field 'result.{field}' has the unknown status {word!r}") from None


# -- models and datasets ---------------------------------------------------------------------------


def model_version(result: Any) -> ModelVersion:
    data = obj(result, "result")
    details: dict[str, Any] = dict(obj(data.get("details") or {}, "result.details"))
    for key in ("state", "isSupportModelComp", "modelName"):
        if key in data:
            details.setdefault(key, data[key])
    return ModelVersion(
        version_id=req_str(data, "modelId"),
        model_id=req_str(data, "modelSetId"),
        name=opt_str(data, "modelSetName") or opt_str(data, "modelName"),
        version=opt_str(data, "version"),
        size_bytes=opt_int(data, "sizeBytes"),
        source=opt_str(data, "source") or opt_str(data, "sourceType").lower(),
        details=details,
    )


def dataset(result: Any) -> Dataset:
    data = obj(result, "result")
    return Dataset(
        dataset_id=req_str(data, "versionId"),
        name=req_str(data, "datasetName"),
        rows=opt_int(data, "entityCount"),
        sha256=opt_str(data, "sha256") or None,
    )


# -- tasks -----------------------------------------------------------------------------------------


def create_body(request: TaskRequest, *, model_set_id: str = "") -> dict[str, Any]:
    """The body of the create action for ``request`` (``model_set_id`` for compression and services)."""
    p = request.params
    description = f"qfrun task {request.name}"
    if request.kind is TaskKind.BATCH_INFERENCE:
        body: dict[str, Any] = {
            "name": request.name,
            "description": description,
            "modelId": p["model_version_id"],
            "inferenceParams": dict(p.get("inference_params") or {}),
        }
        if p.get("dataset_id"):
            body["inputDatasetId"] = p["dataset_id"]
        if p.get("batch_size") is not None:
            body["batchSize"] = p["batch_size"]
        if p.get("input_bos_uri") and p.get("output_bos_uri"):
            body["inputBosUri"], body["outputBosUri"] = p["input_bos_uri"], p["output_bos_uri"]
        return body
    if request.kind is TaskKind.EVALUATION:
        scored = bool(p.get("result_dataset_ids"))
        return {
            "taskName": request.name,
            "description": description,
            "evalObjectType": "ResultDataset" if scored else "ModelVersion",
            "evalObjectConfig": {
                "modelVersionIds": list(p.get("model_version_ids") or []),
                "datasetId": p.get("dataset_id"),
                "resultDatasetIds": dict(p.get("result_dataset_ids") or {}),
                "inferenceParams": dict(p.get("inference_params") or {}),
            },
            "evalConfig": {"evaluators": [dict(e) for e in p.get("evaluators") or []]},
        }
    if request.kind is TaskKind.COMPRESSION:
        config: dict[str, Any] = {"strategy": p["strategy"]}
        if p.get("weight"):
            config["weight"] = p["weight"]
        if p.get("dataset_id"):
            config["datasetId"] = p["dataset_id"]
        body = {
            "name": request.name,
            "sourceModelId": p["model_version_id"],
            "modelSetId": model_set_id,
            "config": config,
            "description": description,
        }
        if p.get("name"):
            body["outputModelName"] = p["name"]
        return body
    return service_create_body(request, model_set_id)


def created_id(kind: TaskKind, result: Any) -> str:
    """The new task's id: compression answers with a bare string, the others with an object."""
    field = KIND_API[kind].id_field
    if kind is TaskKind.COMPRESSION and isinstance(result, str) and result:
        return result
    return req_str(obj(result, "result"), field)


def list_page(kind: TaskKind, result: Any) -> tuple[list[Mapping[str, Any]], str | None]:
    """The items of one list page and the marker of the next page (None on the last page)."""
    data = obj(result, "result")
    api = KIND_API[kind]
    items = data.get(api.list_field) or []
    if not isinstance(items, list):
        raise WireError(f"the field 'result.{api.list_field}' should be an array, not {type(items).__name__}")
    parsed = [obj(item, f"result.{api.list_field}[{i}]") for i, item in enumerate(items)]
    truncated = data.get("isTruncated") is True
    next_marker = opt_str(data, "nextMarker") if truncated else ""
    return parsed, next_marker or None


def task_info(kind: TaskKind, ref: TaskRef, result: Any, report: Any = None) -> TaskInfo:
    """A describe result (and, for a finished evaluation, its report) as a ``TaskInfo``."""
    data = obj(result, "result")
    status = status_of(kind, data)
    done = opt_int(data, "progress")
    total = opt_int(data, "totalCount") or None  # 0 means "not known yet": a dataset has at least one row
    message = opt_str(data, "failedReason")
    outcome: dict[str, Any] = {}
    if kind is TaskKind.BATCH_INFERENCE:
        if status is TaskStatus.SUCCEEDED:
            outcome = {
                "result_dataset_id": req_str(data, "outputDatasetId"),
                "rows": total if total is not None else done,
            }
            if data.get("outputBosUri"):
                outcome["output_bos_uri"] = opt_str(data, "outputBosUri")
    elif kind is TaskKind.EVALUATION:
        if status is TaskStatus.SUCCEEDED and report is not None:
            outcome = {"models": eval_report(report)}
    elif kind is TaskKind.COMPRESSION:
        if status is TaskStatus.SUCCEEDED:
            outcome = {
                "version_id": req_str(data, "modelId"),
                "model_id": opt_str(data, "modelSetId") or None,
                "size_bytes": opt_int(data, "sizeBytes"),
                "scheme": opt_str(data, "scheme") or None,
                "seconds": data.get("seconds"),
            }
    else:
        outcome = service_outcome(data)
    return TaskInfo(ref, status, rows_done=done, rows_total=total, message=message, result=outcome)


def eval_report(result: Any) -> dict[str, Any]:
    """``{version_id: {metrics: {name: float}, samples: int}}`` from DescribeEvalTaskReport."""
    data = obj(result, "result")
    reports = data.get("reports")
    if not isinstance(reports, list):
        raise WireError("the field 'result.reports' should be an array")
    models: dict[str, Any] = {}
    for index, item in enumerate(reports):
        where = f"result.reports[{index}]"
        entry = obj(item, where)
        metrics = obj(entry.get("metrics"), f"{where}.metrics")
        values: dict[str, float] = {}
        for name, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise WireError(f"the field '{where}.metrics.{name}' should be a number")
            values[str(name)] = float(value)
        models[req_str(entry, "modelVersionId", where)] = {
            "metrics": values,
            "samples": opt_int(entry, "sampleCount", where),
        }
    return models


def chat_reply(body: Mapping[str, Any], request_id: str | None) -> ChatReply:
    text = body.get("result")
    if not isinstance(text, str):
        raise WireError("the field 'result' of the chat response should be a string")
    usage = obj(body.get("usage") or {}, "usage")
    return ChatReply(
        text=text,
        prompt_tokens=opt_int(usage, "prompt_tokens", "usage") or 0,
        completion_tokens=opt_int(usage, "completion_tokens", "usage") or 0,
        request_id=request_id or "",
    )


# -- services [S1]-[S6] of the reference ---------------------------------------------------------------

SERVICE_RELEASE_ROUTE = "serviceresources"  # ReleaseComputeUnit {serviceId, instanceId} -> true [S5]
_CHARGE_TYPES = {"computing_unit": "ComputingUnit", "tokens": "Tokens"}


def service_description(intent: str) -> str:
    """What qfrun writes into a service's ``description`` and later matches exactly to find it again.

    A service's ``name`` is the user's (2-20 characters, shown in the console), so the full intent key, which
    would not fit, goes here.
    """
    return f"qfrun task {intent}"


def service_create_body(request: TaskRequest, model_set_id: str) -> dict[str, Any]:
    """CreateService exactly as [S1]: buy compute by resource type, paid by the month or postpaid."""
    p = request.params
    billing_spec = p["billing"]
    if billing_spec["payment"] == "prepaid":
        billing: dict[str, Any] = {
            "paymentTiming": "Prepaid",
            "reservation": {"reservationTimeUnit": "Month", "reservationLength": billing_spec["months"]},
        }
    else:
        billing = {"paymentTiming": "Postpaid", "chargeType": _CHARGE_TYPES[billing_spec["charge"]]}
    body: dict[str, Any] = {
        "modelSetId": model_set_id,
        "modelId": p["model_version_id"],
        "name": p["name"],
        "description": service_description(request.name),
        "urlSuffix": p["url_suffix"],
    }
    # resourceConfig is required when buying compute units; a service postpaid by tokens may leave it out.
    if p.get("resource_type"):
        resources: dict[str, Any] = {"type": p["resource_type"]}
        if p.get("region"):
            resources["region"] = p["region"]
        if p.get("qps") is not None:
            resources["qps"] = p["qps"]
        resources["replicasCount"] = p.get("replicas", 1)
        body["resourceConfig"] = resources
    body["billing"] = billing
    return body


def service_instance_id(result: Any) -> str:
    """CreateService's ``result.instanceId`` (the compute to release later); '' when it is not there."""
    return opt_str(obj(result, "result"), "instanceId")


def service_outcome(data: Mapping[str, Any]) -> dict[str, Any]:
    """A DescribeService result [S2] as the deploy stage's values.

    Qianfan documents replicas and type under ``resourceConfig`` and no ``urlSuffix``/``expireTime`` at the
    top level; both are read when present (the local platform adds them), the suffix otherwise from ``url``.
    """
    resources = obj(data.get("resourceConfig") or {}, "result.resourceConfig")
    url = opt_str(data, "url")
    return {
        "service_id": req_str(data, "serviceId"),
        "url_suffix": opt_str(data, "urlSuffix") or url.rstrip("/").rsplit("/", 1)[-1],
        "url": url,
        "replicas": opt_int(resources, "replicasCount", "result.resourceConfig")
        or opt_int(data, "replicasCount"),
        "resource_type": opt_str(resources, "type", "result.resourceConfig") or None,
        "expires_at": opt_str(data, "expireTime") or None,
        "instance_id": opt_str(data, "instanceId") or None,
    }


def service_items(result: Any) -> tuple[list[Mapping[str, Any]], str | None]:
    """One DescribeServices page [S3]: its services and the next marker (None on the last page).

    Paging is ``result.pageInfo`` {marker, maxKeys, isTruncated, nextMarker} [M3][E6][B6]; a flat page (the
    fields beside the list) is read too. The list's name is not captured in Qianfan's pages: ``serviceList``
    is what the SDK reads (python/qianfan/dataset/stress_test/load_runner.py at 6cacf60); a page that names
    it otherwise is read from its only array field.
    """
    data = obj(result, "result")
    items = data.get("serviceList")
    if items is None:
        arrays = [value for value in data.values() if isinstance(value, list)]
        items = arrays[0] if len(arrays) == 1 else []
    if not isinstance(items, list):
        raise WireError(f"the field 'result.serviceList' should be an array, not {type(items).__name__}")
    parsed = [obj(item, f"result.serviceList[{i}]") for i, item in enumerate(items)]
    paging = obj(data.get("pageInfo") or data, "result.pageInfo")
    truncated = paging.get("isTruncated") is True
    next_marker = opt_str(paging, "nextMarker", "result.pageInfo") if truncated else ""
    return parsed, next_marker or None


def release_body(ref: TaskRef) -> dict[str, str]:
    """ReleaseComputeUnit on /v2/serviceresources [S5]: the service and the compute instance it runs on."""
    return {"serviceId": ref.task_id, "instanceId": ref.instance_id}


def released(result: Any) -> None:
    """ReleaseComputeUnit answers ``result: true`` [S5][S6]; anything else means it was not released."""
    if result is not True:
        raise WireError(f"the field 'result' of ReleaseComputeUnit should be true, not {result!r}")
