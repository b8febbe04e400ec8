"""Task actions: batch inference (/v2/batchinference), evaluation (/v2/eval), compression (/v2/model).

The requests and answers are Qianfan's documented shapes (``runner.platform.wire`` holds the names; source
keys like [B2] resolve in docs/platform-api.md). Every create is idempotent by name (a second create with a
known name returns the existing task: a local guarantee, Qianfan documents none), checks every id it names
before accepting (an unknown id is a 404, a bad value a 400), stores the task as pending and hands it to the
task runner.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from runner.local import batch_io
from runner.local.api_common import NO_RESULT, Body, Context, found, invalid, page
from runner.local.api_datasets import dataset_or_404
from runner.local.api_manual import MANUAL_ACTIONS, manual_params, stop_refusal
from runner.local.api_models import version_or_404
from runner.local.bos_store import BosError
from runner.local.jobspec import BATCH_INFERENCE, COMPRESSION, EVALUATION
from runner.local.rows import DuplicateName, TaskRow, new_id
from runner.platform import wire
from runner.platform.protocol import TaskKind, TaskStatus

_KIND = {
    BATCH_INFERENCE: TaskKind.BATCH_INFERENCE,
    EVALUATION: TaskKind.EVALUATION,
    COMPRESSION: TaskKind.COMPRESSION,
}
_PREFIX = {BATCH_INFERENCE: "infer", EVALUATION: "ame", COMPRESSION: "amva"}  # as Qianfan's ids [B4][E2][C2]
_NOUN = {
    BATCH_INFERENCE: "batch inference task",
    EVALUATION: "evaluation task",
    COMPRESSION: "compression task",
}
# Qianfan's chat parameters [S7][E1] plus the local engine's own (max_output_tokens, do_sample, seed).
_INFERENCE_TYPES: dict[str, tuple[type, ...]] = {
    "temperature": (int, float),
    "top_p": (int, float),
    "top_k": (int,),
    "max_output_tokens": (int,),
    "do_sample": (bool,),
    "seed": (int,),
    "penalty_score": (int, float),
}
_SCORE_MODES = (*wire.RULE_SCORE_MODES, "bleu", "rouge_l", "exact_match")  # the last three: local
# The documented modes [E1], and manual scoring next to rule and judge as the v1 report names it [E9].
_EVAL_MODES = ("rule", "model", "manual", "rule,model", "rule,manual", "model,manual", "rule,model,manual")
_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_NAME_LENGTH = (2, 20)  # batch inference task names [B2]


def wire_status(kind: str, status: str) -> str:
    """The documented status word of a task kind for a store status (``pending`` -> ``Queuing`` ...)."""
    return wire.KIND_API[_KIND[kind]].status_word(TaskStatus(status))


def _create(ctx: Context, kind: str, name: str, build: Callable[[], dict[str, Any]]) -> TaskRow:
    existing = ctx.store.task_by_name(kind, name)
    if existing is not None:
        return existing
    params = build()
    try:
        task = ctx.store.create_task(task_id=new_id(_PREFIX[kind]), kind=kind, name=name, params=params)
    except DuplicateName:
        again = ctx.store.task_by_name(kind, name)
        assert again is not None
        return again
    ctx.runner.submit(task.id)
    return task


def _task(ctx: Context, kind: str, task_id: str) -> TaskRow:
    task = ctx.store.task(task_id)
    return found(task if task is not None and task.kind == kind else None, _NOUN[kind], task_id)


def _inference_params(body: Body, key: str) -> dict[str, Any]:
    params = body.obj(key).data
    for name, value in params.items():
        kinds = _INFERENCE_TYPES.get(name)
        if kinds is None:  # refused here, with the names it takes, rather than by the job minutes later
            known = ", ".join(sorted(_INFERENCE_TYPES))
            raise invalid(f"{body.where}: {key}.{name} is not an inference parameter; use {known}.")
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            raise invalid(f"{body.where}: {key}.{name} must be a {'boolean' if bool in kinds else 'number'}.")
    return dict(params)


def _listing(
    ctx: Context, kind: str, body: Body, keep: Callable[[TaskRow], bool], render: Callable[[TaskRow], Any]
) -> Any:
    api = wire.KIND_API[_KIND[kind]]
    tasks = [task for task in ctx.store.tasks(kind) if keep(task)]
    return page(body, tasks, lambda task: task.id, render, api.list_field)


def _stop(ctx: Context, kind: str, body: Body) -> None:
    api = wire.KIND_API[_KIND[kind]]
    ctx.runner.cancel(_task(ctx, kind, body.text(api.request_id_field)).id)


def _failure(task: TaskRow) -> str:
    return task.message if task.status in ("failed", "stopped") else ""


# -- batch inference [B1][B2][B4][B6][B7] ------------------------------------------------------------------
def _describe_batch(task: TaskRow) -> dict[str, Any]:
    params = task.params
    result: dict[str, Any] = {
        "taskId": task.id,
        "name": task.name,
        "description": params.get("description", ""),
        "modelId": params.get("model_version_id", ""),
        "inferenceParams": params.get("inference_params") or {},
        "runStatus": wire_status(BATCH_INFERENCE, task.status),
        "progress": task.progress_done or 0,
        "totalCount": task.progress_total or 0,  # (name not captured [B5]): local
        "inputBosUri": params.get("input_bos_uri") or "",
        "outputBosUri": params.get("output_bos_uri") or "",
        "inputDatasetId": params.get("dataset_id") or "",  # local
        "outputDatasetId": task.result.get("result_dataset_id", ""),  # local
        "createTime": task.created_at,
    }
    if task.result.get("output_dir"):
        result["outputDir"] = task.result["output_dir"]  # (the SDK fixture's name [B5])
    if task.status == "failed":
        result["errorCode"] = 500
        result["errorReason"] = task.message
    elif task.status == "stopped":
        result["errorReason"] = task.message
    if task.status in ("succeeded", "failed", "stopped"):
        result["finishTime"] = task.updated_at
    return result


def create_batch(ctx: Context, body: Body) -> dict[str, Any]:
    name = body.text("name")
    low, high = _NAME_LENGTH
    if not low <= len(name) <= high:
        raise invalid(f"{body.where}: name must have {low} to {high} characters, not {len(name)}.")

    def build() -> dict[str, Any]:
        if body.opt_text("endpoint") is not None:
            raise invalid(
                f"{body.where}: the local platform runs model versions; name one with modelId, not endpoint."
            )
        version = version_or_404(ctx, body.text("modelId"))
        input_uri, output_uri = body.opt_text("inputBosUri"), body.opt_text("outputBosUri")
        dataset_id = body.opt_text(
            "inputDatasetId"
        )  # local: a dataset version, or the references of BOS input
        if input_uri is None and dataset_id is None:
            raise invalid(
                f"{body.where} needs inputBosUri and outputBosUri: the BOS folders to read and write."
            )
        if (input_uri is None) != (output_uri is None):
            raise invalid(f"{body.where} needs both inputBosUri and outputBosUri, or neither.")
        if input_uri is not None and output_uri is not None:
            _check_batch_folders(ctx, body, input_uri, output_uri)
        return {
            "model_version_id": version.id,
            "dataset_id": dataset_or_404(ctx, dataset_id).id if dataset_id is not None else None,
            "input_bos_uri": input_uri,
            "output_bos_uri": output_uri,
            "inference_params": _inference_params(body, "inferenceParams"),
            "batch_size": body.opt_integer("batchSize", low=1, high=1024),
            "description": body.opt_text("description") or "",
        }

    return {"taskId": _create(ctx, BATCH_INFERENCE, name, build).id}


def _check_batch_folders(ctx: Context, body: Body, input_uri: str, output_uri: str) -> None:
    """Refuse at create what the job would fail on later: unreadable input, a missing output bucket."""
    objects = ctx.objects
    try:
        batch_io.read_input(objects, input_uri)
        output = batch_io.uri(output_uri, "outputBosUri")
    except batch_io.BatchInputError as exc:
        raise invalid(f"{body.where}: {exc}") from None
    try:
        objects.bucket(output.bucket)
    except BosError as exc:
        raise invalid(f"{body.where}: outputBosUri {output_uri}: {exc.message}") from None


def describe_batch(ctx: Context, body: Body) -> dict[str, Any]:
    return _describe_batch(_task(ctx, BATCH_INFERENCE, body.text("taskId")))


def list_batch(ctx: Context, body: Body) -> Any:
    statuses = body.texts("runStatus")
    return _listing(
        ctx,
        BATCH_INFERENCE,
        body,
        lambda task: not statuses or wire_status(BATCH_INFERENCE, task.status) in statuses,
        _describe_batch,
    )


def stop_batch(ctx: Context, body: Body) -> bool:
    _stop(ctx, BATCH_INFERENCE, body)
    return True  # `result: true` [B7]


# -- evaluation [E1][E2][E3][E4][E5] -----------------------------------------------------------------------
def _describe_eval(task: TaskRow) -> dict[str, Any]:
    return {
        "taskId": task.id,
        "taskName": task.name,
        "description": task.params.get("description", ""),
        "evalType": "manual" if task.params.get("manual") else "auto",
        "state": wire_status(EVALUATION, task.status),
        "failedReason": _failure(task),  # local
        "progress": task.progress_done or 0,  # local
        "totalCount": task.progress_total or 0,  # local
        "createTime": task.created_at,
    }


def _eval_objects(ctx: Context, body: Body) -> dict[str, Any]:
    """The models (and the dataset version) or the inference result sets that ``evalObjectConfig`` names."""
    object_type = body.choice("evalObjectType", ("model", "inferDataset"))
    config = body.obj("evalObjectConfig", required=True)
    if object_type == "model":
        model_config = config.obj("evalModelConfig", required=True)
        dataset = dataset_or_404(ctx, model_config.text("versionId"))
        model_config.choice("storageType", ("sysStorage", "BOS"), required=False)
        entries = model_config.array("evalModelConfigList", required=True)
        versions: list[str] = []
        templates: set[str] = set()
        params: dict[str, Any] = {}
        for index, raw in enumerate(entries):
            entry = Body(
                raw if isinstance(raw, dict) else {}, f"{model_config.where}.evalModelConfigList[{index}]"
            )
            if not isinstance(raw, dict):
                raise invalid(f"{entry.where} must be an object.")
            versions.append(version_or_404(ctx, entry.text("modelId")).id)
            template = entry.text("promptTemplate")
            if "{input}" not in template:
                raise invalid(f"{entry.where}: promptTemplate must contain {{input}}.")
            templates.add(template)
            given = _inference_params(entry, "params")
            if versions[1:] and given != params:
                raise invalid(f"{entry.where}: the local platform takes the same params for all models.")
            params = given
        if not 1 <= len(versions) <= 5:
            raise invalid(
                f"{model_config.where}: evalModelConfigList must name 1 to 5 models, not {len(versions)}."
            )
        if len(templates) > 1:
            raise invalid(
                f"{model_config.where}: the local platform takes one promptTemplate for all models."
            )
        return {
            "model_version_ids": versions,
            "dataset_id": dataset.id,
            "result_dataset_ids": {},
            "inference_params": params,
            "prompt_template": templates.pop(),
        }
    infer_config = config.obj("evalInferDatasetConfig", required=True)
    results: dict[str, str] = {}
    for index, raw in enumerate(infer_config.array("evalInferDatasetConfigList", required=True)):
        entry = Body(
            raw if isinstance(raw, dict) else {}, f"{infer_config.where}.evalInferDatasetConfigList[{index}]"
        )
        if not isinstance(raw, dict):
            raise invalid(f"{entry.where} must be an object.")
        dataset = dataset_or_404(ctx, entry.text("inferDatasetId"))
        named = entry.opt_text("modelId")  # local: Qianfan reads the version from the result set itself
        producer = ctx.store.task(dataset.source) if named is None else None
        version_id = named or (producer.params.get("model_version_id") if producer is not None else None)
        if not isinstance(version_id, str):
            raise invalid(f"{entry.where}: {dataset.id} is not the result set of a batch inference task.")
        results[version_or_404(ctx, version_id).id] = dataset.id
    if not 1 <= len(results) <= 5:
        raise invalid(f"{infer_config.where}: evalInferDatasetConfigList must name 1 to 5 result sets.")
    return {
        "model_version_ids": list(results),
        "dataset_id": None,
        "result_dataset_ids": results,
        "inference_params": {},
        "prompt_template": "{input}",
    }


def _evaluators(ctx: Context, body: Body) -> list[dict[str, Any]]:
    """``evalConfig`` [E1] as the engine's evaluator list."""
    config = body.obj("evalConfig", required=True)
    mode = config.choice("evalMode", _EVAL_MODES)
    assert mode is not None
    evaluators: list[dict[str, Any]] = []
    rule = config.obj("autoRuleEvalConfig")
    modes = rule.texts("scoreModes")
    for name in modes:
        if name not in _SCORE_MODES:
            raise invalid(f"{rule.where}: scoreModes has {name!r}; the modes are {', '.join(_SCORE_MODES)}.")
    custom_config = config.obj("customEvalConfig")
    custom = custom_config.texts("functions")
    sources = custom_config.obj("sources")
    for function in custom:
        if not _FUNCTION.match(function):
            raise invalid(
                f"{config.where}.customEvalConfig: the function {function!r} is not 'module:function'."
            )
        if not isinstance(sources.data.get(function), str) or not sources.data[function].strip():
            # Importing a module by name would run whatever the worker's Python path holds under it.
            raise invalid(
                f"{config.where}.customEvalConfig.sources has no source for {function!r}; the local "
                "platform runs a custom evaluator only from the module source sent with the task."
            )
    if "rule" not in mode.split(",") and (modes or custom):
        raise invalid(
            f"{config.where}: evalMode {mode!r} runs no rule, so it takes no scoreModes or functions."
        )
    if "rule" in mode.split(","):
        if not modes and not custom:
            raise invalid(f"{config.where}: evalMode {mode!r} needs autoRuleEvalConfig.scoreModes.")
        if modes:
            evaluators.append({"kind": "rule", **{name: True for name in modes}})
        evaluators.extend(
            {"kind": "custom", "function": function, "source": sources.data[function]} for function in custom
        )
    if "model" in mode.split(","):
        judge = config.obj("autoModelEvalConfig", required=True)
        entry: dict[str, Any] = {"kind": "llm_judge"}
        if judge.opt_text("apiName") is not None:
            entry["judge_endpoint"] = judge.text("apiName")
        elif judge.opt_text("modelId") is not None:
            entry["judge_version_id"] = version_or_404(ctx, judge.text("modelId")).id
        else:
            raise invalid(f"{judge.where} needs apiName (a deployed service) or modelId (a model version).")
        if judge.opt_text("prompt") is not None:
            entry["prompt"] = judge.text("prompt")
        if judge.data.get("maxScore") is not None:
            entry["max_score"] = judge.integer("maxScore", low=1, high=100)
        evaluators.append(entry)
    return evaluators


def _manual(body: Body) -> dict[str, Any] | None:
    config = body.obj("evalConfig", required=True)
    manual = manual_params(config)
    wanted = "manual" in config.text("evalMode").split(",")
    if wanted and manual is None:
        raise invalid(f"{config.where}: evalMode manual needs manualEvalConfig.evaluationDimension.")
    if manual is not None and not wanted:
        raise invalid(f"{config.where}: manualEvalConfig is given, but evalMode does not include manual.")
    return manual


def create_eval(ctx: Context, body: Body) -> str:
    def build() -> dict[str, Any]:
        return {
            **_eval_objects(ctx, body),
            "evaluators": _evaluators(ctx, body),
            "manual": _manual(body),
            "eval_mode": body.obj("evalConfig", required=True).text("evalMode"),
            "description": body.opt_text("description") or "",
        }

    return _create(ctx, EVALUATION, body.text("taskName"), build).id  # the id is the result [E2]


def describe_eval(ctx: Context, body: Body) -> dict[str, Any]:
    return _describe_eval(_task(ctx, EVALUATION, body.text("taskId")))


def eval_report(ctx: Context, body: Body) -> list[dict[str, Any]]:
    task = _task(ctx, EVALUATION, body.text("taskId"))
    results = task.params.get("result_dataset_ids") or {}
    return [
        wire.report_entry(
            task.id,
            task.name,
            version_id,
            entry.get("metrics", {}),
            object_type="inferDataset" if results else "model",
            eval_mode=str(task.params.get("eval_mode", "rule")),
            infer_dataset_id=str(results.get(version_id, "")),
            samples=entry.get("samples"),
        )
        for version_id, entry in (task.result.get("models") or {}).items()
    ]


def list_eval(ctx: Context, body: Body) -> Any:
    body.choice("evalType", ("manual", "auto"))  # required [E3]
    key = body.opt_text("keyFilter") or ""
    manual = body.text("evalType") == "manual"

    def keep(task: TaskRow) -> bool:  # fuzzy on name and id, exact on a model version id [E3]
        versions = task.params.get("model_version_ids") or []
        is_manual = bool(task.params.get("manual"))
        return is_manual == manual and (key in task.name or key in task.id or key in versions)

    return _listing(ctx, EVALUATION, body, keep, _describe_eval)


def stop_eval(ctx: Context, body: Body) -> dict[str, Any]:
    refusal = stop_refusal(_task(ctx, EVALUATION, body.text("taskId")))
    if refusal is not None:
        raise refusal
    _stop(ctx, EVALUATION, body)
    return {}  # `result: {}` [E5]


# -- compression [C1][C2][C3][C4] ------------------------------------------------------------------------
def _describe_comp(task: TaskRow) -> dict[str, Any]:
    result = task.result
    params = task.params
    config = {"strategy": params.get("strategy", "")}
    if params.get("weight"):
        config["weight"] = params["weight"]
    return {
        "id": task.id,
        "name": task.name,
        "description": params.get("description", ""),
        "status": wire_status(COMPRESSION, task.status),
        "failedReason": _failure(task),
        "sourceModelId": params.get("model_version_id", ""),
        "modelId": result.get("version_id", "") if task.status == "succeeded" else "",
        "config": config,
        "createTime": task.created_at,
        "finishTime": task.updated_at if task.status in ("succeeded", "failed", "stopped") else "",
        "modelSetId": result.get("model_id", ""),  # local additions from here on
        "sizeBytes": result.get("size_bytes"),
        "scheme": result.get("scheme"),
        "seconds": result.get("seconds"),
        "note": result.get("note", ""),
    }


def create_comp(ctx: Context, body: Body) -> str:
    def build() -> dict[str, Any]:
        version = version_or_404(ctx, body.text("sourceModelId"))
        model_set = body.text("modelSetId")
        if model_set != version.model_id:
            raise invalid(
                f"{body.where}: model version {version.id} belongs to {version.model_id}, not {model_set}."
            )
        config = body.obj("config", required=True)
        strategy = config.choice("strategy", ("Quantization", "Sparsity"))
        weight = config.choice("weight", ("INT8-PTQ", "W8A16C16", "W4A16C16"), required=False)
        if strategy == "Quantization" and weight is None:
            raise invalid(f"{config.where}: Quantization needs weight (INT8-PTQ, W8A16C16 or W4A16C16).")
        if strategy == "Sparsity" and weight is not None:
            raise invalid(f"{config.where}: Sparsity takes no weight, but {weight!r} was given.")
        dataset_id = config.opt_text("datasetId")  # local: calibration data
        if dataset_id is not None:
            dataset_or_404(ctx, dataset_id)
        return {
            "model_version_id": version.id,
            "strategy": strategy,
            "weight": weight,
            "dataset_id": dataset_id,
            "description": body.opt_text("description") or "",
        }

    return _create(ctx, COMPRESSION, body.text("name"), build).id  # the id is the result [C2]


def describe_comp(ctx: Context, body: Body) -> dict[str, Any]:
    return _describe_comp(_task(ctx, COMPRESSION, body.text("modelCompTaskId")))


def list_comp(ctx: Context, body: Body) -> Any:
    source = body.opt_text("sourceModelId")
    return _listing(
        ctx,
        COMPRESSION,
        body,
        lambda task: source is None or task.params.get("model_version_id") == source,
        _describe_comp,
    )


def cancel_comp(ctx: Context, body: Body) -> Any:
    _stop(ctx, COMPRESSION, body)
    return NO_RESULT  # only `requestId` [C4]


BATCH_ACTIONS = {
    "CreateBatchInferenceTask": create_batch,
    "DescribeBatchInferenceTask": describe_batch,
    "DescribeBatchInferenceTasks": list_batch,
    "StopBatchInferenceTask": stop_batch,
}
EVAL_ACTIONS = {
    "CreateEvalTask": create_eval,
    "DescribeEvalTask": describe_eval,
    "DescribeEvalTaskReport": eval_report,
    "DescribeEvalTasks": list_eval,
    "StopEvalTask": stop_eval,
    **MANUAL_ACTIONS,
}
COMPRESSION_ACTIONS = {
    "CreateModelCompTask": create_comp,
    "DescribeModelCompTask": describe_comp,
    "DescribeModelCompTasks": list_comp,
    "CancelModelCompTask": cancel_comp,
}
