"""v1 ``/wenxinworkshop/modelrepo/eval/*``: the SDK's platform evaluation, and its batch inference too.

The SDK reaches both through v1 ``eval/create`` (reference §4.7 [E8]-[E11]): ``EvaluationManager`` with
``QianfanRuleEvaluator`` sends ``evalMode: "rule"`` with ``scoreModes``; ``Model.batch_inference`` over a
platform dataset sends ``evalMode: "manual"`` and reads the inference result set from
``evalStandardConf.resultDatasetIdStr`` once the task waits for manual scoring (``DoingWithManualBegin``).
Each becomes one evaluation task in the same store and runner as v2 CreateEvalTask; the v1 request is kept
in the task's params under ``compat_v1`` so detail and report can answer in v1 words. Tasks made through v2
answer on these routes too, as on Qianfan, where both APIs show the same tasks.

Choices where the docs are silent: a manual task goes straight to ``DoingWithManualBegin`` once inference is
done (there is no labelling UI); the result-export id is the task id under the export prefix (an export is
ready as soon as the task is done); export rows carry model, prompt, answer and expected answer, not per-row
scores (the engine scores a whole result set).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.local.api_common import Body, found, invalid
from runner.local.api_datasets import dataset_or_404
from runner.local.api_models import version_or_404
from runner.local.compat.datasets import archive, v1_time
from runner.local.compat.envelope import V1Context
from runner.local.jobspec import read_rows, store_file_as_dataset
from runner.local.rows import FAILED, PENDING, RUNNING, STOPPED, SUCCEEDED, DuplicateName, TaskRow, new_id
from runner.platform.protocol import TaskKind
from runner.vocabulary import QIANFAN_RULE_METRICS

_STATES = {PENDING: "Pending", RUNNING: "Doing", SUCCEEDED: "Done", FAILED: "Fail", STOPPED: "Stopped"}
_SCORE_MODES = QIANFAN_RULE_METRICS  # v1 takes the documented modes only
EXPORT_PREFIX, TASK_PREFIX = "amemt-", "ame-"  # Qianfan's export ids look like amemt-hkkf5y9e64j8 [E7]
EXPORT_PATH = "/_compat/exports/evals/"

EVALUATION = TaskKind.EVALUATION  # the v1 routes store tasks of the same kind as /v2/eval


def _modes(conf: Body) -> list[str]:
    modes = [mode for mode in (conf.opt_text("evalMode") or "").split(",") if mode]
    unknown = sorted(set(modes) - {"rule", "manual", "model"})
    if not modes or unknown:
        raise invalid(f"{conf.where}: evalMode must be a comma list of rule, model and manual.")
    if "model" in modes:
        # a judge is named by a Qianfan app id (appId), which has no meaning here; v2 names a service
        raise invalid(
            f"{conf.where}: evalMode 'model' (an LLM judge chosen by appId) is not served through v1 here; "
            "use v2 CreateEvalTask with autoModelEvalConfig."
        )
    return modes


def _evaluators(conf: Body, modes: list[str]) -> list[dict[str, Any]]:
    if "rule" not in modes:
        return []
    score_modes = conf.texts("scoreModes", required=True)
    unknown = sorted(set(score_modes) - set(_SCORE_MODES))
    if not score_modes or unknown:
        raise invalid(f"{conf.where}: scoreModes must name similarity and/or accuracy.")
    return [{"kind": "rule", **{mode: True for mode in score_modes}}]


def create(v1: V1Context, body: Body) -> dict[str, Any]:
    ctx = v1.ctx
    name = body.text("name")
    units = []
    for index, entry in enumerate(body.array("versionEvalInfo", required=True)):
        unit = Body(entry if isinstance(entry, dict) else {}, f"{body.where} versionEvalInfo[{index}]")
        version = version_or_404(ctx, unit.text("modelVersionId"))
        set_id = unit.opt_text("modelId")
        if set_id is not None and set_id != version.model_id:
            raise invalid(f"{unit.where}: version {version.id} belongs to {version.model_id}, not {set_id}.")
        units.append(version.id)
    if not units:
        raise invalid(f"{body.where}: versionEvalInfo must name at least one model version.")
    dataset = dataset_or_404(ctx, body.text("datasetId"))
    conf = body.obj("evalStandardConf", required=True)
    modes = _modes(conf)
    params = {
        "model_version_ids": units,
        "dataset_id": dataset.id,
        "result_dataset_ids": {},
        "evaluators": _evaluators(conf, modes),
        "inference_params": {},
        "eval_mode": ",".join(modes),  # what v2 DescribeEvalTaskReport shows for the same task
        "description": body.opt_text("description") or "",
        "compat_v1": {"modes": modes, "evalStandardConf": dict(conf.data)},
    }
    try:
        task = ctx.store.create_task(task_id=new_id("ame"), kind=EVALUATION.value, name=name, params=params)
    except DuplicateName:
        raise invalid(f"{body.where}: an evaluation named {name!r} already exists.") from None
    ctx.runner.submit(task.id)
    return {"evalId": _number(task.id), "evalIdStr": task.id}


def _number(task_id: str) -> int:
    """v1's deprecated integer id, kept because the SDK's responses carry one; the string id is the key."""
    suffix = task_id.rsplit("-", 1)[-1]
    return int(suffix, 16) if all(c in "0123456789abcdef" for c in suffix) else 0


def _task(v1: V1Context, task_id: str) -> TaskRow:
    """An evaluation task, whichever API created it: v1 and v2 show the same tasks."""
    task = v1.ctx.store.task(task_id)
    return found(
        task if task is not None and task.kind == EVALUATION.value else None, "evaluation task", task_id
    )


def _modes_of(task: TaskRow) -> list[str]:
    compat = task.params.get("compat_v1")
    if compat is not None:
        return list(compat["modes"])
    return [mode for mode in str(task.params.get("eval_mode") or "rule").split(",") if mode]


def _standard_conf(task: TaskRow) -> dict[str, Any]:
    """The v1 request's evalStandardConf, or for a task made through v2 the eval mode it ran with."""
    compat = task.params.get("compat_v1")
    if compat is not None:
        return dict(compat["evalStandardConf"])
    return {"evalMode": ",".join(_modes_of(task))}


def _versions(task: TaskRow) -> list[str]:
    """The model versions a task evaluates (a v2 task over result sets names them by its result sets)."""
    return list(task.params.get("model_version_ids") or task.params.get("result_dataset_ids") or [])


def _manual(task: TaskRow) -> bool:
    return "manual" in _modes_of(task)


def _state(task: TaskRow) -> str:
    if task.status == SUCCEEDED and _manual(task):
        return "DoingWithManualBegin"
    return _STATES[task.status]


def _results(task: TaskRow) -> list[tuple[str, dict[str, Any]]]:
    """(version id, engine row) for every row the task's inference wrote, model by model."""
    rows = []
    for version_id, entry in (task.result.get("models") or {}).items():
        for line in read_rows(Path(entry["results_path"])):
            rows.append((version_id, json.loads(line)))
    return rows


def _result_dataset(v1: V1Context, task: TaskRow) -> str:
    """The inference result set of a finished task, registered once per content (SDK row shape).

    Every poll of a finished task asks for it; each writes its own file, and the store keeps one dataset
    version per (name, content), so concurrent polls agree on the id.
    """
    folder = v1.ctx.home.task_dir(task.id)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"sdk-result-{new_id('tmp')}.jsonl"
    try:
        with target.open("w", encoding="utf-8") as out:
            for _, row in _results(task):
                # what the SDK's Dataset._batch_inference_on_model maps: prompt, response (the reference)
                # and completion (the model's answer)
                record = {
                    "prompt": row.get("prompt", ""),
                    "response": row.get("response", ""),
                    "completion": row.get("output", ""),
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        dataset = store_file_as_dataset(
            v1.ctx.home, v1.ctx.store, target, name=f"{task.name}-result", source=task.id
        )
    finally:
        target.unlink(missing_ok=True)
    return str(dataset.id)


def detail(v1: V1Context, body: Body) -> dict[str, Any]:
    task = _task(v1, body.text("id"))
    conf = _standard_conf(task)
    if task.status == SUCCEEDED and _manual(task):
        conf["resultDatasetIdStr"] = _result_dataset(v1, task)
    dataset_id = str(task.params.get("dataset_id") or "")
    dataset = v1.ctx.store.dataset(dataset_id) if dataset_id else None
    return {
        "evaluationId": _number(task.id),
        "evaluationIdStr": task.id,
        "name": task.name,
        "description": task.params.get("description", ""),
        "state": _state(task),
        "errMsg": task.message if task.status in (FAILED, STOPPED) else "",
        "evalUnits": [_unit(v1, version_id) for version_id in _versions(task)],
        "datasetName": dataset.name if dataset is not None else "",
        "datasetIdStr": dataset_id,
        "evalStandardConf": conf,
        "computeResourceConf": {},
        "createTime": v1_time(task.created_at),
        "modifyTime": v1_time(task.updated_at),
    }


def _unit(v1: V1Context, version_id: str) -> dict[str, Any]:
    version = v1.ctx.store.version(version_id)
    set_id = version.model_id if version is not None else ""
    model = v1.ctx.store.model(set_id)
    return {
        "modelIdStr": set_id,
        "modelVersionIdStr": version_id,
        "modelName": model.name if model is not None else "",
        "modelVersion": str(version.version) if version is not None else "",
    }


def report(v1: V1Context, body: Body) -> list[dict[str, Any]]:
    task = _task(v1, body.text("id"))
    if task.status != SUCCEEDED:
        raise invalid(f"The evaluation {task.id} is {_state(task)}; its report exists once it is Done.")
    models = task.result.get("models") or {}
    reports = []
    for version_id in _versions(task):
        unit = _unit(v1, version_id)
        entry = models.get(version_id) or {}
        reports.append(
            {
                "evaluationIdStr": task.id,
                "evaluationName": task.name,
                "modelIdStr": unit["modelIdStr"],
                "modelVersionIdStr": version_id,
                "modelName": unit["modelName"],
                "modelVersion": unit["modelVersion"],
                "modelForm": "model",
                "evalMode": ",".join(_modes_of(task)),
                "effectMetric": dict(entry.get("metrics") or {}),
                "sampleCount": entry.get("samples", 0),
            }
        )
    return reports


def cancel(v1: V1Context, body: Body) -> dict[str, Any]:
    """Stop a running task; the answer is v1's nested ``{result, errorMessage}`` [E10]."""
    task = _task(v1, body.text("id"))
    if not v1.ctx.runner.cancel(task.id):
        return {"result": False, "errorMessage": f"The evaluation {task.id} is {_state(task)}, not running."}
    return {"result": True, "errorMessage": ""}


def create_export(v1: V1Context, body: Body) -> dict[str, Any]:
    task = _task(v1, body.text("id"))
    return {"exportIDStr": EXPORT_PREFIX + task.id.removeprefix(TASK_PREFIX)}


def export_info(v1: V1Context, body: Body) -> dict[str, Any]:
    export_id = body.text("exportID")
    task = _task(v1, TASK_PREFIX + export_id.removeprefix(EXPORT_PREFIX))
    if task.status != SUCCEEDED:
        return {"exportIDStr": export_id, "state": "Fail" if task.status in (FAILED, STOPPED) else "Pending"}
    return {
        "exportIDStr": export_id,
        "state": "Done",
        "downloadUrl": v1.link(f"{EXPORT_PATH}{task.id}.zip"),
    }


def export_archive(v1: V1Context, task_id: str) -> bytes:
    """The zip an export's ``downloadUrl`` serves: ``data.jsonl``, one line per model and prompt.

    Each line is a one-element list with the console's column names, as the SDK's own fixture of this
    download writes it (model name, model version, prompt, the model's answer, the expected answer).
    """
    task = _task(v1, task_id)
    if task.status != SUCCEEDED:
        raise invalid(f"The evaluation {task.id} is {_state(task)}; its results exist once it is Done.")
    units = {version_id: _unit(v1, version_id) for version_id in _versions(task)}
    lines = []
    for version_id, row in _results(task):
        unit = units.get(version_id) or _unit(v1, version_id)
        entry = {
            "模型名称": unit["modelName"],
            "模型版本": unit["modelVersion"],
            "Prompt问题": row.get("prompt", ""),
            "模型结果": row.get("output", ""),
            "预期回答": row.get("response", ""),
        }
        lines.append(json.dumps([entry], ensure_ascii=False) + "\n")
    return archive({"data.jsonl": "".join(lines).encode("utf-8")})


ROUTES = {
    "modelrepo/eval/create": create,
    "modelrepo/eval/detail": detail,
    "modelrepo/eval/report": report,
    "modelrepo/eval/cancel": cancel,
    "modelrepo/eval/result/export": create_export,
    "modelrepo/eval/result/export/info": export_info,
}
