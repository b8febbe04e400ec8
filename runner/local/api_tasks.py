"""Task actions: batch inference (/v2/batchinference), evaluation (/v2/eval), compression (/v2/model).

Every create is idempotent by name (a second create with a known name returns the existing task), checks
every id it names before accepting (an unknown id is a 404, a bad value a 400), stores the task as pending and
hands it to the task runner. Status words are each resource's own Qianfan words (docs/platform-api.md §2).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from runner.local.api_common import Body, Context, found, invalid, page
from runner.local.api_datasets import dataset_or_404
from runner.local.api_models import version_or_404
from runner.local.jobspec import BATCH_INFERENCE, COMPRESSION, EVALUATION
from runner.local.rows import DuplicateName, TaskRow, new_id

_WORDS = {
    BATCH_INFERENCE: ("Pending", "Running", "Done", "Failed", "Stopped"),
    EVALUATION: ("Pending", "Doing", "Done", "Failed", "Stopped"),
    COMPRESSION: ("creating", "running", "succeeded", "failed", "stopped"),
}
_STATUSES = ("pending", "running", "succeeded", "failed", "stopped")
_PREFIX = {BATCH_INFERENCE: "bi", EVALUATION: "et", COMPRESSION: "mct"}
_NOUN = {
    BATCH_INFERENCE: "batch inference task",
    EVALUATION: "evaluation task",
    COMPRESSION: "compression task",
}
_INFERENCE_TYPES: dict[str, tuple[type, ...]] = {
    "temperature": (int, float),
    "top_p": (int, float),
    "top_k": (int,),
    "max_output_tokens": (int,),
    "do_sample": (bool,),
    "seed": (int,),
    "penalty_score": (int, float),
}
_RULE_METRICS = ("accuracy", "similarity", "bleu", "rouge_l", "exact_match")
_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def wire_status(kind: str, status: str) -> str:
    return _WORDS[kind][_STATUSES.index(status)]


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


def _listing(ctx: Context, kind: str, body: Body, name_key: str, render: Callable[[TaskRow], Any]) -> Any:
    name = body.opt_text(name_key)
    statuses = body.texts("runStatus")
    tasks = [
        task
        for task in ctx.store.tasks(kind)
        if (name is None or task.name == name)
        and (not statuses or wire_status(kind, task.status) in statuses)
        and (body.opt_text("sourceModelId") in (None, task.params.get("model_version_id")))
    ]
    return page(body, tasks, lambda task: task.id, render, "taskList")


def _stop(ctx: Context, kind: str, key: str, body: Body) -> dict[str, Any]:
    ctx.runner.cancel(_task(ctx, kind, body.text(key)).id)
    return {}


# -- batch inference -----------------------------------------------------------------------------------------
def _describe_batch(task: TaskRow) -> dict[str, Any]:
    return {
        "taskId": task.id,
        "name": task.name,
        "runStatus": wire_status(BATCH_INFERENCE, task.status),
        "progress": task.progress_done or 0,
        "totalCount": task.progress_total or 0,
        "failedReason": task.message if task.status in ("failed", "stopped") else "",
        "outputDatasetId": task.result.get("result_dataset_id", ""),
        "modelId": task.params.get("model_version_id", ""),
        "inputDatasetId": task.params.get("dataset_id", ""),
        "createTime": task.created_at,
        "updateTime": task.updated_at,
    }


def create_batch(ctx: Context, body: Body) -> dict[str, Any]:
    def build() -> dict[str, Any]:
        version = version_or_404(ctx, body.text("modelId"))
        dataset = dataset_or_404(ctx, body.text("inputDatasetId"))
        return {
            "model_version_id": version.id,
            "dataset_id": dataset.id,
            "inference_params": _inference_params(body, "inferenceParams"),
            "batch_size": body.opt_integer("batchSize", low=1, high=1024),
        }

    return {"taskId": _create(ctx, BATCH_INFERENCE, body.text("name"), build).id}


def describe_batch(ctx: Context, body: Body) -> dict[str, Any]:
    return _describe_batch(_task(ctx, BATCH_INFERENCE, body.text("taskId")))


def list_batch(ctx: Context, body: Body) -> Any:
    return _listing(ctx, BATCH_INFERENCE, body, "name", _describe_batch)


def stop_batch(ctx: Context, body: Body) -> dict[str, Any]:
    return _stop(ctx, BATCH_INFERENCE, "taskId", body)


# -- evaluation ----------------------------------------------------------------------------------------------
def _describe_eval(task: TaskRow) -> dict[str, Any]:
    return {
        "taskId": task.id,
        "taskName": task.name,
        "status": wire_status(EVALUATION, task.status),
        "failedReason": task.message if task.status in ("failed", "stopped") else "",
        "progress": task.progress_done or 0,
        "totalCount": task.progress_total or 0,
        "createTime": task.created_at,
        "updateTime": task.updated_at,
    }


def _evaluators(ctx: Context, body: Body) -> list[dict[str, Any]]:
    evaluators = body.obj("evalConfig", required=True).array("evaluators", required=True)
    if not evaluators:
        raise invalid(f"{body.where}: evalConfig.evaluators must name at least one evaluator.")
    for index, evaluator in enumerate(evaluators):
        where = f"{body.where}: evalConfig.evaluators[{index}]"
        if not isinstance(evaluator, dict):
            raise invalid(f"{where} must be an object.")
        kind = evaluator.get("kind")
        if kind == "rule":
            if not any(evaluator.get(metric) is True for metric in _RULE_METRICS):
                raise invalid(f"{where} turns on none of the metrics {', '.join(_RULE_METRICS)}.")
        elif kind == "llm_judge":
            if isinstance(evaluator.get("judge_version_id"), str):
                version_or_404(ctx, evaluator["judge_version_id"])
            elif not isinstance(evaluator.get("judge_endpoint"), str):
                raise invalid(f"{where} needs 'judge_version_id' or 'judge_endpoint' (a string).")
        elif kind == "custom":
            if not isinstance(evaluator.get("function"), str) or not _FUNCTION.match(evaluator["function"]):
                raise invalid(f"{where} needs 'function' written as 'module:function'.")
        else:
            raise invalid(f"{where} has kind {kind!r}; the kinds are rule, llm_judge and custom.")
    return evaluators


def create_eval(ctx: Context, body: Body) -> dict[str, Any]:
    def build() -> dict[str, Any]:
        object_type = body.choice("evalObjectType", ("ModelVersion", "ResultDataset"))
        config = body.obj("evalObjectConfig", required=True)
        versions = config.texts("modelVersionIds")
        results = config.obj("resultDatasetIds").data
        dataset_id = config.opt_text("datasetId")
        if object_type == "ModelVersion":
            if not versions:
                raise invalid(f"{config.where}: modelVersionIds must name at least one model version.")
            if dataset_id is None:
                raise invalid(f"{config.where} needs datasetId to infer on before scoring.")
        elif not results:
            raise invalid(f"{config.where}: resultDatasetIds must map at least one version to a dataset.")
        for version_id in versions:
            if version_id not in results:
                version_or_404(ctx, version_id)
        for version_id, result_id in results.items():
            if not isinstance(result_id, str):
                raise invalid(f"{config.where}: resultDatasetIds.{version_id} must be a dataset version id.")
            dataset_or_404(ctx, result_id)
        if dataset_id is not None:
            dataset_or_404(ctx, dataset_id)
        return {
            "model_version_ids": versions or list(results),
            "dataset_id": dataset_id,
            "result_dataset_ids": dict(results),
            "evaluators": _evaluators(ctx, body),
            "inference_params": _inference_params(config, "inferenceParams"),
        }

    return {"taskId": _create(ctx, EVALUATION, body.text("taskName"), build).id}


def describe_eval(ctx: Context, body: Body) -> dict[str, Any]:
    return _describe_eval(_task(ctx, EVALUATION, body.text("taskId")))


def eval_report(ctx: Context, body: Body) -> dict[str, Any]:
    task = _task(ctx, EVALUATION, body.text("taskId"))
    reports = [
        {
            "modelVersionId": version_id,
            "metrics": entry.get("metrics", {}),
            "sampleCount": entry.get("samples", 0),
        }
        for version_id, entry in (task.result.get("models") or {}).items()
    ]
    return {"taskId": task.id, "status": wire_status(EVALUATION, task.status), "reports": reports}


def list_eval(ctx: Context, body: Body) -> Any:
    return _listing(ctx, EVALUATION, body, "keyFilter", _describe_eval)


def stop_eval(ctx: Context, body: Body) -> dict[str, Any]:
    return _stop(ctx, EVALUATION, "taskId", body)


# -- compression ---------------------------------------------------------------------------------------------
def _describe_comp(task: TaskRow) -> dict[str, Any]:
    result = task.result
    return {
        "modelCompTaskId": task.id,
        "name": task.name,
        "status": wire_status(COMPRESSION, task.status),
        "failedReason": task.message if task.status in ("failed", "stopped") else "",
        "sourceModelId": task.params.get("model_version_id", ""),
        "strategy": task.params.get("strategy", ""),
        "weight": task.params.get("weight"),
        "modelId": result.get("version_id", ""),
        "modelSetId": result.get("model_id", ""),
        "sizeBytes": result.get("size_bytes"),
        "scheme": result.get("scheme"),
        "seconds": result.get("seconds"),
        "note": result.get("note", ""),
        "createTime": task.created_at,
        "updateTime": task.updated_at,
    }


def create_comp(ctx: Context, body: Body) -> str:
    def build() -> dict[str, Any]:
        version = version_or_404(ctx, body.text("sourceModelId"))
        model_set = body.opt_text("modelSetId")
        if model_set is not None and model_set != version.model_id:
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
        dataset_id = config.opt_text("datasetId")
        if dataset_id is not None:
            dataset_or_404(ctx, dataset_id)
        return {
            "model_version_id": version.id,
            "strategy": strategy,
            "weight": weight,
            "dataset_id": dataset_id,
            "name": body.opt_text("outputModelName"),
        }

    return _create(ctx, COMPRESSION, body.text("name"), build).id


def describe_comp(ctx: Context, body: Body) -> dict[str, Any]:
    return _describe_comp(_task(ctx, COMPRESSION, body.text("modelCompTaskId")))


def list_comp(ctx: Context, body: Body) -> Any:
    return _listing(ctx, COMPRESSION, body, "name", _describe_comp)


def cancel_comp(ctx: Context, body: Body) -> dict[str, Any]:
    return _stop(ctx, COMPRESSION, "modelCompTaskId", body)


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
    "DeleteEvalTask": stop_eval,
}
COMPRESSION_ACTIONS = {
    "CreateModelCompTask": create_comp,
    "DescribeModelCompTask": describe_comp,
    "DescribeModelCompTasks": list_comp,
    "CancelModelCompTask": cancel_comp,
}
