"""Task creates, describes and the evaluation report: batch inference, evaluation and compression.

Sources: [B1]-[B7], [E1]-[E5], [C1]-[C4].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.platform.protocol import (
    ManualSample,
    ManualScore,
    TaskInfo,
    TaskKind,
    TaskRef,
    TaskRequest,
    TaskStatus,
)
from runner.platform.wire.fields import WireError, obj, opt_int, opt_str, req_str
from runner.platform.wire.kinds import KIND_API, status_of
from runner.platform.wire.services import service_create_body, service_outcome

# qfrun's metric names -> the names in DescribeEvalTaskReport's ``effectMetric`` [E4] (key names not
# captured in v2; these are the SDK fixture's keys). Names not listed travel as they are.
METRIC_WIRE_NAMES: Mapping[str, str] = {
    "bleu": "bleu4",
    "judge_score": "avgJudgeScore",
    "manual_avg_score": "manualAvgScore",
    "good_case_proportion": "goodCaseProportion",
    "satisfaction": "满意度",  # the default manual dimension, by its name on the platform [E1]
}
_METRIC_NAMES = {wire: name for name, wire in METRIC_WIRE_NAMES.items()}
RULE_SCORE_MODES = ("similarity", "accuracy")  # the documented rule score modes [E11]
SATISFACTION = "satisfaction"  # qfrun's name of the default dimension 满意度, which cannot be removed [E1]
SATISFACTION_WIRE = "满意度"
MAX_EXTRA_DIMENSIONS = 4  # besides 满意度 [E1]


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
    scorers (``customEvalConfig.functions``, each with its module's source under ``sources``: the platform
    runs the code qfrun read from the pipeline's repository, never a module found by name).
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
            custom = config.setdefault("customEvalConfig", {"functions": [], "sources": {}})
            custom["functions"].append(evaluator["function"])
            custom["sources"][evaluator["function"]] = evaluator.get("source", "")
            if "rule" not in modes:
                modes.append("rule")
        elif kind == "manual":
            config["manualEvalConfig"] = manual_config(evaluator, local=local)
            modes.append("manual")
    order = {"rule": 0, "model": 1, "manual": 2}
    return {"evalMode": ",".join(sorted(modes, key=order.__getitem__)), **config}


def manual_config(evaluator: Mapping[str, Any], *, local: bool) -> dict[str, Any]:
    """The manual dimensions [E1]: ``满意度`` first (the default, which cannot be removed), then up to four
    more, each ``{dimension, description}``. The config's own name is not captured on the official page;
    ``manualEvalConfig`` follows ``autoModelEvalConfig``, and ``evaluationDimension`` is the v1 name of the
    same list (the SDK's ``evalStandardConf.evaluationDimension``). The local platform also takes the score
    range people score within (``scoreRange``)."""
    dimensions: list[dict[str, Any]] = [{"dimension": SATISFACTION_WIRE}]
    for dimension in evaluator.get("dimensions") or []:
        entry = {"dimension": str(dimension["name"])}
        if dimension.get("description"):
            entry["description"] = str(dimension["description"])
        dimensions.append(entry)
    config: dict[str, Any] = {"evaluationDimension": dimensions}
    if local:
        scale = evaluator.get("scale") or {}
        config["scoreRange"] = {"min": int(scale.get("min", 1)), "max": int(scale.get("max", 5))}
    return config


def dimension_name(wire_name: str) -> str:
    """qfrun's name of a dimension the platform names (``满意度`` -> ``satisfaction``)."""
    return SATISFACTION if wire_name == SATISFACTION_WIRE else wire_name


def manual_samples(result: Any) -> list[ManualSample]:
    """The local ``DescribeEvalManualSamples`` answer:
    ``{samples: [{modelId, index, input, expected, output}]}``."""
    items = obj(result, "result").get("samples")
    if not isinstance(items, list):
        raise WireError("the field 'result.samples' should be an array")
    samples = []
    for position, item in enumerate(items):
        where = f"result.samples[{position}]"
        entry = obj(item, where)
        index = entry.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 1:
            raise WireError(f"the field '{where}.index' should be a whole number from 1")
        samples.append(
            ManualSample(
                version_id=req_str(entry, "modelId", where),
                index=index,
                input=opt_str(entry, "input", where),
                expected=opt_str(entry, "expected", where),
                output=opt_str(entry, "output", where),
            )
        )
    return samples


def manual_scores_body(task_id: str, scores: Sequence[ManualScore]) -> dict[str, Any]:
    """The local ``SubmitEvalManualScores`` request: one entry per answer, every dimension scored."""
    return {
        "taskId": task_id,
        "scores": [
            {
                "modelId": score.version_id,
                "index": score.index,
                "scores": {
                    (SATISFACTION_WIRE if name == SATISFACTION else name): value
                    for name, value in score.scores.items()
                },
            }
            for score in scores
        ],
    }


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
