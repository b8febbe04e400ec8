"""Evaluation [E1]-[E11]: CreateEvalTask's body and ``evalConfig``, manual dimensions and scores, the report,
and the kind's entry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.platform.protocol import ManualSample, ManualScore, TaskKind, TaskRequest, TaskStatus
from runner.platform.wire.fields import WireError, obj, opt_int, opt_str, req_str
from runner.platform.wire.kinds import KindApi, register
from runner.platform.wire.statuses import AWAITING_SCORES, FAILED, PENDING, RUNNING, STOPPED, SUCCEEDED
from runner.vocabulary import QIANFAN_RULE_METRICS, RULE_METRICS

EVAL_REPORT_ACTION = "DescribeEvalTaskReport"
EVAL_TYPES = ("auto", "manual")  # DescribeEvalTasks lists one evalType at a time [E3]
# Local-only actions on /v2/eval (Qianfan has people score in its console, not through the API): the
# answers of an open manual evaluation, and the scores for them.
EVAL_MANUAL_SAMPLES_ACTION = "DescribeEvalManualSamples"
EVAL_MANUAL_SCORES_ACTION = "SubmitEvalManualScores"
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
RULE_SCORE_MODES = QIANFAN_RULE_METRICS  # the documented rule score modes [E11]
SATISFACTION = "satisfaction"  # qfrun's name of the default dimension 满意度, which cannot be removed [E1]
SATISFACTION_WIRE = "满意度"
MAX_EXTRA_DIMENSIONS = 4  # besides 满意度 [E1]


def _eval_body(request: TaskRequest, model_set_id: str, local: bool) -> dict[str, Any]:
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
        "description": str(p.get("description") or f"qfrun {request.name}"),
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
    runs the code qfrun read from the pipeline's repository, never a module found by name) and
    OpenCompass-style benchmarks (``openCompassEvalConfig.benchmarks``, each ``{source, text}``: the file's
    text travels, so the platform reads no path a request names).
    """
    modes: list[str] = []
    config: dict[str, Any] = {}
    for evaluator in evaluators:
        kind = evaluator.get("kind")
        if kind == "rule":
            metrics = [name for name in RULE_METRICS if evaluator.get(name)]
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
        elif kind == "opencompass":  # local only: Qianfan has no OpenCompass mode (evaluate_checks)
            config.setdefault("openCompassEvalConfig", {"benchmarks": []})["benchmarks"].extend(
                evaluator.get("benchmarks") or []
            )
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


def metric_name(wire_name: str) -> str:
    """qfrun's name of a metric the platform names (``bleu4`` -> ``bleu``, ``满意度`` -> ``satisfaction``)."""
    return _METRIC_NAMES.get(wire_name, wire_name)


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


def _eval_outcome(data: Mapping[str, Any], status: TaskStatus, report: Any) -> dict[str, Any]:
    """A finished evaluation's metrics per model version, from its report."""
    if status is TaskStatus.SUCCEEDED and report is not None:
        return {"models": eval_report(report)}
    return {}


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
                values[metric_name(str(name))] = float(value)
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


# [E1][E2][E3][E5]: `Successed` is Qianfan's spelling; `Failed` means some or all sub-tasks failed.
EVALUATION = register(
    KindApi(
        kind=TaskKind.EVALUATION,
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
        list_fixed={"evalType": "auto"},  # required [E3]; a lookup also asks for `manual` (EVAL_TYPES)
        status_field="state",
        status_words={
            "Queued": PENDING,
            "Running": RUNNING,
            "RunningWithManualBegin": AWAITING_SCORES,  # manual labelling open: nothing moves until scored
            "RunningWithMetricsCalculating": RUNNING,
            "Stopping": RUNNING,
            "Successed": SUCCEEDED,
            "Failed": FAILED,
            "Stopped": STOPPED,
        },
        create_body=_eval_body,
        outcome=_eval_outcome,
        bare_created_id=True,  # the id is the result [E2]
        report_action=EVAL_REPORT_ACTION,
    )
)
