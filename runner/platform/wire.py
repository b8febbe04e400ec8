"""Qianfan's documented console API as data: actions, field names, status words, paging and result shapes.

This is the one module that knows a JSON field name of the console API, and both sides import it: the
client (``runner.platform.client``) builds requests and parses answers with it, and the local platform
(``runner.local``) renders its answers with the same tables, so the two cannot drift apart. Every fact
comes from ``shared/reference/qianfan-official-api.md``; the source keys in brackets (``[B4]``) resolve
there and in ``docs/platform-api.md``. Where the official pages leave a name uncaptured, the name chosen
is marked "(name not captured)" and the reader accepts the alternatives named next to it.

Parsers raise ``WireError`` naming the field (``result.runStatus``); the client turns it into a
``PlatformProtocolError`` with the request's coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


# -- paging [M3][B6][C3][E3] --------------------------------------------------------------------------
DEFAULT_MAX_KEYS = 10  # "默认值是10"
MAX_KEYS = 100  # "如果指定的值大于100,按100操作": larger values are read as 100


def page_result(
    list_field: str, items: Sequence[Any], *, marker: str, max_keys: int, next_marker: str | None
) -> dict[str, Any]:
    """A list action's ``result``: the items and ``pageInfo`` (``nextMarker`` only when truncated)."""
    info: dict[str, Any] = {"marker": marker, "maxKeys": max_keys, "isTruncated": next_marker is not None}
    if next_marker is not None:
        info["nextMarker"] = next_marker
    return {list_field: list(items), "pageInfo": info}


# -- task kinds -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KindApi:
    """The actions, field names and status words of one task kind."""

    route: str
    create: str
    describe: str
    list: str
    cancel: str
    request_id_field: str  # names the task in describe and cancel requests
    result_id_field: str  # names the task in describe results and list items
    name_field: str  # the task's name, in create requests and list items
    list_field: str  # the array of a list result
    list_filter: str | None  # the request field that narrows a list by name (fuzzy), if any
    list_fixed: Mapping[str, Any]  # fields a list request must carry
    status_field: str
    status_words: Mapping[str, TaskStatus]  # every documented word, spelt as documented

    def status_word(self, status: TaskStatus) -> str:
        """The first documented word for ``status`` (what the local platform answers)."""
        return next(word for word, value in self.status_words.items() if value is status)


_P, _R, _S, _F, _X = (
    TaskStatus.PENDING,
    TaskStatus.RUNNING,
    TaskStatus.SUCCEEDED,
    TaskStatus.FAILED,
    TaskStatus.STOPPED,
)

KIND_API: Mapping[TaskKind, KindApi] = {
    # [B2][B4][B6][B7]: `Expired` is a run that passed its completion window, so it failed.
    TaskKind.BATCH_INFERENCE: KindApi(
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
            "Queuing": _P,
            "Running": _R,
            "Stopping": _R,
            "Done": _S,
            "Failed": _F,
            "Expired": _F,
            "Stopped": _X,
        },
    ),
    # [E1][E2][E3][E5]: `Successed` is Qianfan's spelling; `Failed` means some or all sub-tasks failed.
    TaskKind.EVALUATION: KindApi(
        route="eval",
        create="CreateEvalTask",
        describe="DescribeEvalTask",
        list="DescribeEvalTasks",
        cancel="StopEvalTask",
        request_id_field="taskId",
        result_id_field="taskId",
        name_field="taskName",
        list_field="evalTaskList",  # [E3] (ai.baidu.com/ai-doc/WENXINWORKSHOP/pm17hb7di, result table)
        list_filter="keyFilter",  # fuzzy on name and id [E3]
        list_fixed={"evalType": "auto"},  # required [E3]; qfrun's evaluations are automatic
        status_field="state",
        status_words={
            "Queued": _P,
            "Running": _R,
            "RunningWithManualBegin": _R,
            "RunningWithMetricsCalculating": _R,
            "Stopping": _R,
            "Successed": _S,
            "Failed": _F,
            "Stopped": _X,
        },
    ),
    # [C1][C2][C3][C4]
    TaskKind.COMPRESSION: KindApi(
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
            "creating": _P,
            "running": _R,
            "stopping": _R,
            "succeeded": _S,
            "failed": _F,
            "stopped": _X,
        },
    ),
    # A service is released, not deleted: ``cancel`` goes to SERVICE_RELEASE_ROUTE (see release_body). The
    # list field is not captured in Qianfan's pages; ``serviceList`` is what the SDK reads (service_items).
    TaskKind.SERVICE: KindApi(
        route="service",
        create="CreateService",
        describe="DescribeService",
        list="DescribeServices",
        cancel="ReleaseComputeUnit",
        request_id_field="serviceId",
        result_id_field="serviceId",
        name_field="name",
        list_field="serviceList",
        list_filter="name",
        list_fixed={},
        status_field="runStatus",
        status_words={
            "New": _P,
            "Deploying": _R,
            "Serving": _S,
            "Failed": _F,
            "Stopped": _X,
        },
    ),
}
EVAL_REPORT_ACTION = "DescribeEvalTaskReport"

# qfrun's metric names -> the names in DescribeEvalTaskReport's ``effectMetric`` [E4] (key names not
# captured in v2; these are the SDK fixture's keys). Names not listed travel as they are.
METRIC_WIRE_NAMES: Mapping[str, str] = {"bleu": "bleu4", "judge_score": "avgJudgeScore"}
_METRIC_NAMES = {wire: name for name, wire in METRIC_WIRE_NAMES.items()}
RULE_SCORE_MODES = ("similarity", "accuracy")  # the documented rule score modes [E11]

# -- field access -----------------------------------------------------------------------------------------


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
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise WireError(f"the field '{where}.{key}' should be an integer, not {type(value).__name__}")
    try:
        return int(value)
    except ValueError:
        raise WireError(f"the field '{where}.{key}' should be an integer, not {value!r}") from None


def status_of(kind: TaskKind, data: Mapping[str, Any]) -> TaskStatus:
    """The status a describe result names, from the kind's documented words (matched case-insensitively)."""
    api = KIND_API[kind]
    word = req_str(data, api.status_field)
    for known, status in api.status_words.items():
        if known.lower() == word.lower():
            return status
    words = ", ".join(api.status_words)
    raise WireError(f"the field 'result.{api.status_field}' has the unknown status {word!r} (known: {words})")


# -- models and datasets [M2][D3] ------------------------------------------------------------------
MODEL_STATUS_READY = "Ready"
MODEL_STATUS_WORDS = ("Ready", "Creating", "Fail")  # DescribeModel `status` [M2]


def model_version(result: Any) -> ModelVersion:
    """A DescribeModel result [M2]. ``sizeBytes`` and ``details`` are local-platform additions."""
    data = obj(result, "result")
    details: dict[str, Any] = dict(obj(data.get("details") or {}, "result.details"))
    status = opt_str(data, "status")
    if status and status not in MODEL_STATUS_WORDS:
        raise WireError(
            f"the field 'result.status' has the unknown status {status!r} "
            f"(known: {', '.join(MODEL_STATUS_WORDS)})"
        )
    for key in ("status", "isSupportModelComp", "modelName", "model"):
        if key in data:
            details.setdefault(key, data[key])
    source = obj(data.get("sourceInfo") or {}, "result.sourceInfo")
    source_type = opt_str(source, "sourceType", "result.sourceInfo")  # (name not captured)
    return ModelVersion(
        version_id=req_str(data, "modelId"),
        model_id=req_str(data, "modelSetId"),
        name=opt_str(data, "modelName"),
        version=opt_str(data, "version"),
        size_bytes=opt_int(data, "sizeBytes"),
        source=source_type.lower(),
        details=details,
    )


def dataset(result: Any) -> Dataset:
    """A DescribeDatasetVersion result [D3]; the row count is ``sampleCount`` or the v1 ``entityCount``."""
    data = obj(result, "result")
    rows = opt_int(data, "sampleCount")
    return Dataset(
        dataset_id=req_str(data, "versionId"),
        name=req_str(data, "datasetName"),
        rows=rows if rows is not None else opt_int(data, "entityCount"),
        sha256=opt_str(data, "sha256") or None,
    )


# -- creates ---------------------------------------------------------------------------------------------


def create_body(request: TaskRequest, *, model_set_id: str = "", local: bool = False) -> dict[str, Any]:
    """The body of the create action for ``request``.

    ``model_set_id`` is needed for compression and services; ``local`` adds the local platform's documented
    extensions (fields Qianfan does not take), which are never sent to Qianfan.
    """
    p = request.params
    description = str(p.get("description") or f"qfrun {request.name}")
    if request.kind is TaskKind.BATCH_INFERENCE:
        return _batch_body(request, description, local)
    if request.kind is TaskKind.EVALUATION:
        return _eval_body(request, description, local)
    if request.kind is TaskKind.COMPRESSION:
        config: dict[str, Any] = {"strategy": p["strategy"]}
        if p.get("weight"):
            config["weight"] = p["weight"]
        if local and p.get("dataset_id"):
            config["datasetId"] = p["dataset_id"]  # local: calibration data
        return {
            "name": request.name,
            "description": description,
            "sourceModelId": p["model_version_id"],
            "modelSetId": model_set_id,
            "config": config,
        }
    if request.kind is TaskKind.SERVICE:
        return service_create_body(request, model_set_id)
    raise WireError(f"no create body is defined for the task kind {request.kind.value!r}")


def _batch_body(request: TaskRequest, description: str, local: bool) -> dict[str, Any]:
    """CreateBatchInferenceTask [B1][B2]: exactly one of endpoint/modelId; BOS directories in and out."""
    p = request.params
    body: dict[str, Any] = {
        "name": request.name,
        "description": description,
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


def _eval_body(request: TaskRequest, description: str, local: bool) -> dict[str, Any]:
    """CreateEvalTask [E1]: models on a dataset version, or earlier inference results; rule and judge."""
    p = request.params
    results: Mapping[str, str] = p.get("result_dataset_ids") or {}
    params = dict(p.get("inference_params") or {})
    template = str(p.get("prompt_template") or "{input}")
    object_config: dict[str, Any]
    if results:
        items: list[dict[str, Any]] = []
        for version_id, dataset_id in results.items():
            item: dict[str, Any] = {"inferDatasetId": dataset_id}
            if local:
                item["modelId"] = version_id  # local: which version produced the result set
            items.append(item)
        object_config = {"evalInferDatasetConfig": {"evalInferDatasetConfigList": items}}
    else:
        entries = []
        for version_id in p.get("model_version_ids") or []:
            entry: dict[str, Any] = {"modelId": version_id, "promptTemplate": template}
            if params:
                entry["params"] = params  # hyper-parameter object (name not captured; v1 calls it params)
            entries.append(entry)
        object_config = {
            "evalModelConfig": {
                "versionId": p["dataset_id"],
                "storageType": "sysStorage",
                "evalModelConfigList": entries,
            }
        }
    return {
        "taskName": request.name,
        "description": description,
        "evalObjectType": "inferDataset" if results else "model",
        "evalObjectConfig": object_config,
        "evalConfig": eval_config(p.get("evaluators") or [], local=local),
    }


def eval_config(evaluators: Sequence[Mapping[str, Any]], *, local: bool) -> dict[str, Any]:
    """``evalConfig`` [E1][E11] from qfrun's evaluators.

    Rule metrics become ``autoRuleEvalConfig.scoreModes`` and a judge ``autoModelEvalConfig.apiName``
    (a deployed service's API name). Both config names after ``evalMode`` are "name not captured" on the
    official page except ``autoModelEvalConfig``; ``autoRuleEvalConfig`` follows its pattern and
    ``scoreModes`` is the v1 name of the same list. The local platform also takes the metrics ``bleu``,
    ``rouge_l`` and ``exact_match``, a judge by model version (``autoModelEvalConfig.modelId``) and custom
    scorers (``customEvalConfig.functions``).
    """
    modes: list[str] = []
    config: dict[str, Any] = {}
    for evaluator in evaluators:
        kind = evaluator.get("kind")
        if kind == "rule":
            metrics = [
                name
                for name in ("accuracy", "similarity", "bleu", "rouge_l", "exact_match")
                if evaluator.get(name)
            ]
            rule = config.setdefault("autoRuleEvalConfig", {"scoreModes": []})
            rule["scoreModes"].extend(name for name in metrics if name not in rule["scoreModes"])
            if "rule" not in modes:
                modes.append("rule")
        elif kind == "llm_judge":
            judge: dict[str, Any] = {}
            if evaluator.get("judge_endpoint"):
                judge["apiName"] = evaluator["judge_endpoint"]
            elif evaluator.get("judge_version_id"):
                judge["modelId"] = evaluator["judge_version_id"]
            for key, wire_key in (("prompt", "prompt"), ("max_score", "maxScore")):
                if local and evaluator.get(key) is not None:
                    judge[wire_key] = evaluator[key]
            config["autoModelEvalConfig"] = judge
            if "model" not in modes:
                modes.append("model")
        elif kind == "custom":
            custom = config.setdefault("customEvalConfig", {"functions": []})
            custom["functions"].append(evaluator["function"])
            if "rule" not in modes:
                modes.append("rule")
    order = {"rule": 0, "model": 1, "manual": 2}
    return {"evalMode": ",".join(sorted(modes, key=order.__getitem__)), **config}


def created_id(kind: TaskKind, result: Any) -> str:
    """The new task's id: a bare string for evaluation [E2] and compression [C2], ``result.taskId`` for
    batch inference [B4], ``result.serviceId`` for a service [S2]."""
    field = KIND_API[kind].result_id_field
    if kind in (TaskKind.EVALUATION, TaskKind.COMPRESSION):
        if isinstance(result, str) and result:
            return result
        if isinstance(result, Mapping):  # tolerated: an object naming the id
            return req_str(result, field if field in result else "taskId")
        raise WireError(
            f"the field 'result' should be the new task's id (a string), not {type(result).__name__}"
        )
    return req_str(obj(result, "result"), "taskId" if kind is TaskKind.BATCH_INFERENCE else field)


# -- lists -----------------------------------------------------------------------------------------------


def list_body(kind: TaskKind, name: str, *, marker: str | None, max_keys: int = MAX_KEYS) -> dict[str, Any]:
    api = KIND_API[kind]
    body: dict[str, Any] = {**api.list_fixed, "maxKeys": max_keys}
    if api.list_filter:
        body[api.list_filter] = name
    if marker:
        body["marker"] = marker
    return body


def list_page(
    kind: TaskKind, result: Any, max_keys: int = MAX_KEYS
) -> tuple[list[Mapping[str, Any]], str | None]:
    """The items of one list page and the marker of the next page (None on the last page).

    Paging lives in ``result.pageInfo`` [M3][B6]; ``nextMarker`` counts only when ``isTruncated`` is true.
    A page without ``pageInfo`` is read as the last one only when it is not full: a full page whose
    successor cannot be named would make an exactly-once lookup miss a task.
    """
    data = obj(result, "result")
    api = KIND_API[kind]
    items = data.get(api.list_field)
    if items is None:
        items = []
    if not isinstance(items, list):
        raise WireError(f"the field 'result.{api.list_field}' should be an array, not {type(items).__name__}")
    parsed = [obj(item, f"result.{api.list_field}[{i}]") for i, item in enumerate(items)]
    if "pageInfo" not in data:
        if len(parsed) >= max_keys:
            raise WireError(
                "the field 'result.pageInfo' is missing from a full page, so the next page is unknown"
            )
        return parsed, None
    info = obj(data["pageInfo"], "result.pageInfo")
    truncated = info.get("isTruncated")
    if not isinstance(truncated, bool):
        raise WireError("the field 'result.pageInfo.isTruncated' should be a boolean")
    if not truncated:
        return parsed, None
    return parsed, req_str(info, "nextMarker", "result.pageInfo")


# -- describes -------------------------------------------------------------------------------------------


def task_info(kind: TaskKind, ref: TaskRef, result: Any, report: Any = None) -> TaskInfo:
    """A describe result (and, for a finished evaluation, its report) as a ``TaskInfo``."""
    data = obj(result, "result")
    status = status_of(kind, data)
    done = opt_int(data, "progress")
    total = opt_int(data, "totalCount") or None  # (name not captured [B5]); 0 means "not known yet"
    message = opt_str(data, "failedReason")
    outcome: dict[str, Any] = {}
    if kind is TaskKind.BATCH_INFERENCE:
        message = _batch_message(data, status)
        if status is TaskStatus.SUCCEEDED:
            outcome = {"rows": total if total is not None else done}
            if data.get("outputDatasetId"):  # local: results are also a dataset version
                outcome["result_dataset_id"] = opt_str(data, "outputDatasetId")
            if data.get("outputBosUri"):
                outcome["output_bos_uri"] = opt_str(data, "outputBosUri")
                outcome["output_dir"] = opt_str(data, "outputDir")  # (SDK fixture name [B5])
            for key, wire_key in (("input_tokens", "inputTokenUsage"), ("output_tokens", "outputTokenUsage")):
                if data.get(wire_key) is not None:
                    outcome[key] = opt_int(data, wire_key)
    elif kind is TaskKind.EVALUATION:
        if status is TaskStatus.SUCCEEDED and report is not None:
            outcome = {"models": eval_report(report)}
    elif kind is TaskKind.COMPRESSION:
        if status is TaskStatus.SUCCEEDED:
            outcome = {
                "version_id": req_str(data, "modelId"),
                "model_id": opt_str(data, "modelSetId") or None,  # local addition
                "size_bytes": opt_int(data, "sizeBytes"),  # local addition
                "scheme": opt_str(data, "scheme") or None,  # local addition
                "seconds": data.get("seconds"),  # local addition
            }
    else:
        outcome = service_outcome(data)
    return TaskInfo(ref, status, rows_done=done, rows_total=total, message=message, result=outcome)


def _batch_message(data: Mapping[str, Any], status: TaskStatus) -> str:
    """``errorReason`` (and ``errorCode``) of a failed batch task [B4]; what `Expired` means."""
    reason = opt_str(data, "errorReason") or opt_str(data, "failedReason")
    code = opt_int(data, "errorCode")
    if reason and code is not None:
        reason = f"{reason} (error code {code})"
    if not reason and opt_str(data, "runStatus").lower() == "expired":
        reason = "the task ran past its completion window (Expired)"
    return reason if status is not TaskStatus.SUCCEEDED else ""


def eval_report(result: Any) -> dict[str, Any]:
    """``{version_id: {metrics: {name: float}, samples: int | None}}`` from DescribeEvalTaskReport [E4].

    ``result`` is a list with one entry per sub-task (``modelId`` is the model *version* id). Only numeric
    ``effectMetric`` values are metrics (the report also carries distributions); Qianfan's names are mapped
    back to qfrun's (``bleu4`` -> ``bleu``, ``avgJudgeScore`` -> ``judge_score``).
    """
    if not isinstance(result, list):
        raise WireError(
            f"the field 'result' of the evaluation report should be an array, not {type(result).__name__}"
        )
    models: dict[str, Any] = {}
    for index, item in enumerate(result):
        where = f"result[{index}]"
        entry = obj(item, where)
        metrics = obj(entry.get("effectMetric") or {}, f"{where}.effectMetric")
        values: dict[str, float] = {}
        for name, value in metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                values[_METRIC_NAMES.get(str(name), str(name))] = float(value)
        version_id = req_str(entry, "modelId", where)
        known = models.setdefault(
            version_id, {"metrics": {}, "samples": opt_int(entry, "sampleCount", where)}
        )
        known["metrics"].update(values)
    return models


def report_entry(
    task_id: str,
    task_name: str,
    version_id: str,
    metrics: Mapping[str, float],
    *,
    object_type: str,
    eval_mode: str,
    infer_dataset_id: str = "",
    samples: int | None = None,
) -> dict[str, Any]:
    """One DescribeEvalTaskReport item [E4], as the local platform answers it (``sampleCount`` is local)."""
    entry: dict[str, Any] = {
        "taskId": task_id,
        "taskName": task_name,
        "modelId": version_id,
        "inferDatasetId": infer_dataset_id,
        "evalObjectType": object_type,
        "evalMode": eval_mode,
        "effectMetric": {METRIC_WIRE_NAMES.get(name, name): value for name, value in metrics.items()},
    }
    if samples is not None:
        entry["sampleCount"] = samples
    return entry


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
