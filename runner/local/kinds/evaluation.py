"""Evaluation on the local platform (/v2/eval [E1][E2][E3][E4][E5]): the console actions, the job a task
becomes (infer where needed, then every evaluator over each model's rows), and the report.

Evaluators are the documented rule score modes and an LLM judge, plus the local platform's own: three more
rule metrics, a judge by model version, custom scorers sent as source, OpenCompass-style benchmarks run over
each model (runner.local.engine.opencompass), and people (``manual``: the task opens for scores,
runner.local.api_manual).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.atomic import replace_file, write_json
from runner.benchmarks import BenchmarkError, parse_benchmark
from runner.local.api_common import Body, Context, invalid
from runner.local.api_datasets import dataset_or_404
from runner.local.api_eval_results import create_export, describe_export
from runner.local.api_manual import MANUAL_ACTIONS, manual_params, stop_refusal
from runner.local.api_models import version_or_404
from runner.local.engine.job import progress_writer, require
from runner.local.home import Home
from runner.local.jobspec import JobSetupError, Prepared, dataset_path, job_spec, read_rows, version_of
from runner.local.kinds.common import create_task, failure, inference_params, listing, stop, task_of
from runner.local.kinds.registry import LocalKind, register, wire_status
from runner.local.rows import LIVE_SERVICE_STATUSES, SERVING, TaskRow
from runner.local.store import Store
from runner.platform import wire
from runner.vocabulary import LOCAL_RULE_METRICS, QIANFAN_RULE_METRICS

_SCORE_MODES = (*QIANFAN_RULE_METRICS, *LOCAL_RULE_METRICS)
# The documented modes [E1], and manual scoring next to rule and judge as the v1 report names it [E9].
_EVAL_MODES = ("rule", "model", "manual", "rule,model", "rule,manual", "model,manual", "rule,model,manual")
_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _describe_eval(task: TaskRow) -> dict[str, Any]:
    return {
        "taskId": task.id,
        "taskName": task.name,
        "description": task.params.get("description", ""),
        "evalType": "manual" if task.params.get("manual") else "auto",
        "state": wire_status(task),
        "failedReason": failure(task),  # local
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
            given = inference_params(entry, "params")
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
    benchmarks = _benchmarks(config)
    if "rule" not in mode.split(",") and (modes or custom or benchmarks):
        raise invalid(
            f"{config.where}: evalMode {mode!r} runs no rule, so it takes no scoreModes, functions or "
            "benchmarks."
        )
    if "rule" in mode.split(","):
        if not modes and not custom and not benchmarks:
            raise invalid(f"{config.where}: evalMode {mode!r} needs autoRuleEvalConfig.scoreModes.")
        if benchmarks:
            evaluators.append({"kind": "opencompass", "benchmarks": benchmarks})
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


def _benchmarks(config: Body) -> list[dict[str, str]]:
    """``openCompassEvalConfig.benchmarks`` (local): each ``{source, text}``, the text a benchmark in the
    format of runner.benchmarks, checked now so a broken one is refused before a job starts."""
    where = f"{config.where}.openCompassEvalConfig.benchmarks"
    raw = config.obj("openCompassEvalConfig").data.get("benchmarks") or []
    if not isinstance(raw, list):
        raise invalid(f"{where} must be an array.")
    benchmarks: list[dict[str, str]] = []
    metrics: set[str] = set()
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("source", "text")):
            raise invalid(f"{where}[{index}] must be an object with the strings source and text.")
        try:
            metric = parse_benchmark(entry["text"], entry["source"]).metric_name
        except BenchmarkError as error:
            raise invalid(f"{where}[{index}]: {error}") from None
        if metric in metrics:
            raise invalid(f"{where}[{index}]: a second benchmark reports {metric}; give it another abbr.")
        metrics.add(metric)
        benchmarks.append({"source": entry["source"], "text": entry["text"]})
    return benchmarks


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

    return create_task(ctx, KIND, body.text("taskName"), build).id  # the id is the result [E2]


def describe_eval(ctx: Context, body: Body) -> dict[str, Any]:
    return _describe_eval(task_of(ctx, KIND, body.text("taskId")))


def eval_report(ctx: Context, body: Body) -> list[dict[str, Any]]:
    task = task_of(ctx, KIND, body.text("taskId"))
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

    return listing(ctx, KIND, body, keep, _describe_eval)


def stop_eval(ctx: Context, body: Body) -> dict[str, Any]:
    refusal = stop_refusal(task_of(ctx, KIND, body.text("taskId")))
    if refusal is not None:
        raise refusal
    stop(ctx, KIND, body)
    return {}  # `result: {}` [E5]


def prepare(home: Home, store: Store, task: TaskRow, workdir: Path) -> Prepared:
    params = task.params
    results = dict(params.get("result_dataset_ids") or {})
    models = []
    # Benchmarks run over the model itself, also where its answers to the dataset were made earlier.
    benchmarks = any(e.get("kind") == "opencompass" for e in params.get("evaluators") or [])
    for version_id in params.get("model_version_ids") or list(results):
        entry: dict[str, Any] = {"version_id": version_id}
        if version_id in results:
            entry["results_path"] = str(_engine_rows(store, results[version_id], task, workdir, version_id))
        if version_id not in results or benchmarks:
            entry["model_dir"] = version_of(store, version_id, task).path
        models.append(entry)
    dataset_id = params.get("dataset_id")
    job = {
        "models": models,
        "dataset_path": str(_templated(store, dataset_id, task, workdir)) if dataset_id else None,
        "evaluators": [_evaluator(store, evaluator, task) for evaluator in params.get("evaluators") or []],
        "inference_params": dict(params.get("inference_params") or {}),
        "output_dir": str(workdir / "out"),
    }
    return Prepared(job_spec(KIND.store_kind, KIND.engine, workdir, job))


def _templated(store: Store, dataset_id: Any, task: TaskRow, workdir: Path) -> Path:
    """The evaluation's dataset with each prompt put into the task's ``promptTemplate`` at ``{input}``."""
    source = dataset_path(store, dataset_id, task)
    template = str(task.params.get("prompt_template") or "{input}")
    if template == "{input}":
        return source
    target = workdir / "prompts.jsonl"
    with target.open("w", encoding="utf-8") as out:
        for line in read_rows(source):
            row = json.loads(line)
            row["prompt"] = template.replace("{input}", str(row.get("prompt", "")))
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return target


def _engine_rows(store: Store, dataset_id: Any, task: TaskRow, workdir: Path, version_id: str) -> Path:
    """A result dataset's rows in the engine's shape (``output`` holds the prediction)."""
    target = workdir / f"results-{version_id}.jsonl"
    with target.open("w", encoding="utf-8") as out:
        for line in read_rows(dataset_path(store, dataset_id, task)):
            row = json.loads(line)
            row["output"] = row.pop("prediction", row.get("output", ""))
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return target


def _evaluator(store: Store, evaluator: Mapping[str, Any], task: TaskRow) -> dict[str, Any]:
    """Resolve a judge's version id or endpoint into what the engine reads (a folder or a URL)."""
    result = dict(evaluator)
    if result.get("kind") != "llm_judge":
        return result
    if result.get("judge_version_id"):
        result["judge_model_dir"] = version_of(store, result.pop("judge_version_id"), task).path
    elif result.get("judge_endpoint"):
        suffix = str(result.pop("judge_endpoint"))
        service = store.live_service_by_suffix(suffix)
        if service is None or service.status != SERVING or not service.replicas:
            live = (
                "deploying" if service is not None and service.status in LIVE_SERVICE_STATUSES else "deployed"
            )
            raise JobSetupError(f"Task {task.id} names judge endpoint {suffix!r}, which is not {live}.")
        result["judge_url"] = str(service.replicas[0]["url"]) + "/v1/chat/completions"
    else:
        raise JobSetupError(
            f"An llm_judge evaluator of task {task.id} names neither a judge version nor endpoint."
        )
    return result


def run_job(params: dict[str, Any], progress: Path | None) -> dict[str, Any]:
    from runner.local.engine.evaluators import evaluate
    from runner.local.engine.inference import read_rows, run_batch
    from runner.local.engine.opencompass import benchmark_results, without_benchmarks

    models = require(params, "models", "evaluation")
    evaluators = require(params, "evaluators", "evaluation")
    output_dir = Path(require(params, "output_dir", "evaluation"))
    dataset = params.get("dataset_path")
    per_model = len(read_rows(Path(dataset))) if dataset else 0
    total = per_model * len(models)
    results: dict[str, Any] = {}
    for position, entry in enumerate(models):
        version = str(require(entry, "version_id", "evaluation model"))
        results_path = entry.get("results_path")
        if results_path:
            path = Path(results_path)
        else:
            if not dataset:
                raise ValueError(
                    f"The evaluation of {version} needs 'dataset_path' or precomputed 'results_path'."
                )
            path = output_dir / f"{version}.jsonl"
            run_batch(
                Path(require(entry, "model_dir", "evaluation model")),
                Path(dataset),
                path,
                params.get("inference_params") or {},
                int(params.get("batch_size") or 64),
                progress_writer(progress, position * per_model, total),
            )
        rows = read_rows(path)
        metrics, records = evaluate(rows, without_benchmarks(evaluators))
        scores, items = benchmark_results(entry, evaluators)
        results[version] = {
            "metrics": {**metrics, **scores},
            "samples": len(rows),
            "results_path": str(path),
            "records_path": str(write_records(output_dir / f"records-{version}.jsonl", records + items)),
        }
    if progress is not None:
        write_json(progress, {"done": total, "total": total})
    return {"models": results}


def write_records(path: Path, records: list[dict[str, Any]]) -> Path:
    """The per-sample records of one model: the task's artefact its result export is written from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8"))
    return path


KIND = register(
    LocalKind(
        api=wire.evaluation.EVALUATION,
        id_prefix="ame",  # as Qianfan's ids [E2]
        noun="evaluation task",
        actions={
            "CreateEvalTask": create_eval,
            "DescribeEvalTask": describe_eval,
            "DescribeEvalTaskReport": eval_report,
            "DescribeEvalTasks": list_eval,
            "StopEvalTask": stop_eval,
            wire.EXPORT_CREATE_ACTION: create_export,
            wire.EXPORT_DESCRIBE_ACTION: describe_export,
            **MANUAL_ACTIONS,
        },
        prepare=prepare,
        engine=f"{__name__}:run_job",
        warm=(
            "runner.local.engine.evaluators",
            "runner.local.engine.inference",
            "runner.local.engine.opencompass",
        ),
    )
)
