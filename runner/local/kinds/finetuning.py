"""Fine-tuning on the local platform (/v2/finetuning [F2][F3][F4]): the console actions, the training job a
task becomes, its resume after a kill, and the model version its result registers (with its lineage).

Training is real (runner.local.engine.finetune: transformers' Trainer, peft for LoRA) and checkpoints into
the task's folder; when the job process or the platform is killed, the task resumes from the newest complete
checkpoint. A finished task keeps its (merged) model in its folder; CreateCustomModel with ``sourceType:
Train`` [M5] publishes it as a model version (runner.local.api_publish), as on Qianfan. A task runs inside a
job (CreateFineTuningJob [F1]), kept as a row of its own kind that no worker runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.local.api_common import NO_RESULT, Body, Context, found, invalid, page
from runner.local.api_datasets import dataset_or_404
from runner.local.api_models import version_or_404
from runner.local.engine.checkpoints import checkpoint_steps
from runner.local.engine.job import progress_writer, require
from runner.local.engine.latest_loss import read_latest
from runner.local.home import Home
from runner.local.jobspec import (
    Prepared,
    built_model,
    dataset_path,
    job_spec,
    version_of,
)
from runner.local.kinds.common import create_task, failure, listing, stop, task_of
from runner.local.kinds.registry import LocalKind, register, wire_status
from runner.local.rows import DuplicateName, TaskRow, new_id
from runner.local.store import Store
from runner.platform.wire import finetuning as wire_finetuning

# The local engine's limits: what a CPU trains in minutes. Qianfan's depend on the base model [F5].
LIMITS: dict[str, tuple[type, float, float]] = {
    "epoch": (int, 1, 50),
    "learningRate": (float, 1e-7, 1e-1),
    "batchSize": (int, 1, 512),
    "maxSeqLen": (int, 8, 4096),
    "loraRank": (int, 1, 256),
    "loraAlpha": (int, 1, 1024),
    "loraDropout": (float, 0.0, 0.5),
    "warmupRatio": (float, 0.0, 0.5),
    "weightDecay": (float, 0.0, 1.0),
    "loggingSteps": (int, 1, 10000),
    "saveStep": (int, 1, 100000),
    "seed": (int, 0, 2**31 - 1),
    "maxSteps": (int, 1, 100000),  # local: stop after this many steps (a CI run trains seconds)
}
SCHEDULERS = ("linear", "cosine", "constant")
JOB_KIND = "finetuning_job"  # the store's kind for jobs: rows no worker runs, Done at once
TRAIN_MODES = ("SFT",)  # [F6] names PostPretrain, DPO and KTO too; the local engine trains SFT only


def _hyper(body: Body) -> dict[str, Any]:
    config = body.obj("hyperParameterConfig", required=True)
    hyper = dict(config.data)
    for name, value in hyper.items():
        if name == "schedulerName":
            if value not in SCHEDULERS:
                raise invalid(f"{config.where}: schedulerName must be one of {', '.join(SCHEDULERS)}.")
            continue
        limit = LIMITS.get(name)
        if limit is None:
            known = ", ".join([*LIMITS, "schedulerName"])
            raise invalid(f"{config.where}: {name} is not a hyper-parameter here; use {known}.")
        kind, low, high = limit
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (kind is int and not isinstance(value, int)) or not low <= value <= high:
            what = "an integer" if kind is int else "a number"
            raise invalid(f"{config.where}: {name} must be {what} in [{low:g}, {high:g}], not {value!r}.")
    return hyper


def _describe(task: TaskRow) -> dict[str, Any]:
    params, result = task.params, task.result
    done, total = task.progress_done or 0, task.progress_total or 0
    succeeded = task.status == "succeeded"
    return {
        "taskId": task.id,
        "jobId": params.get("job_id", ""),
        "name": task.name,
        "model": params.get("model_version_id", ""),
        "trainMode": "SFT",
        "parameterScale": params.get("method", ""),
        "hyperParameterConfig": params.get("hyper_parameters", {}),
        "runStatus": wire_status(task),
        "runProgress": f"{int(100 * done / total) if total else 0}%",
        "failedReason": failure(task),
        "metrics": _metrics(result) if succeeded else {},
        "checkpointList": result.get("checkpoints", []) if succeeded else [],
        "createTime": task.created_at,
        "finishTime": task.updated_at if task.status in ("succeeded", "failed", "stopped") else "",
        "progress": done,  # local additions from here on: steps, for qfrun's progress and ETA
        "totalCount": total,
        "lossCurve": result.get("loss_curve", []) if succeeded else [],
        "tokensPerSecond": result.get("tokens_per_second") if succeeded else None,
        "evalCurve": result.get("eval_curve", []) if succeeded else [],
    }


def _metrics(result: Mapping[str, Any]) -> dict[str, Any]:
    metrics = {"train_loss": result.get("train_loss")}
    if result.get("eval_loss") is not None:
        metrics["eval_loss"] = result["eval_loss"]
    return metrics


def _describe_job(job: TaskRow) -> dict[str, Any]:
    return {
        "jobId": job.id,
        "name": job.name,
        "description": job.params.get("description", ""),
        "model": job.params.get("model", ""),
        "trainMode": job.params.get("trainMode", "SFT"),
        "createDate": job.created_at,
    }


def create_job(ctx: Context, body: Body) -> dict[str, Any]:
    """CreateFineTuningJob [F1]: ``{name, model, trainMode, description?}`` -> ``{jobId}``. Locally ``model``
    is the base model version's id (the local platform has no preset model names); a second create with a
    known name returns that job (local)."""
    name = body.text("name")
    existing = ctx.store.task_by_name(JOB_KIND, name)
    if existing is None:
        version = version_or_404(ctx, body.text("model"))
        params = {
            "model": version.id,
            "trainMode": body.choice("trainMode", TRAIN_MODES),
            "description": body.opt_text("description") or "",
        }
        try:
            existing = ctx.store.create_task(task_id=new_id("job"), kind=JOB_KIND, name=name, params=params)
        except DuplicateName:
            existing = ctx.store.task_by_name(JOB_KIND, name)
            assert existing is not None
        ctx.store.update_task(existing.id, status="succeeded")  # a job is a folder for tasks: nothing runs
    return {"jobId": existing.id}


def list_jobs(ctx: Context, body: Body) -> dict[str, Any]:
    """DescribeFineTuningJobs [F4]: one page of ``jobList`` [F7]."""
    jobs = ctx.store.tasks(JOB_KIND)
    return page(body, jobs, lambda job: job.id, _describe_job, wire_finetuning.JOB_LIST_FIELD)


def _job(ctx: Context, job_id: str) -> TaskRow:
    job = ctx.store.task(job_id)
    return found(job if job is not None and job.kind == JOB_KIND else None, "fine-tuning job", job_id)


def create_finetuning(ctx: Context, body: Body) -> dict[str, Any]:
    """CreateFineTuningTask [F2] in the job ``jobId``, whose model it trains; without a job (a local
    extension kept for older clients) the body's ``model`` names the base version. The local platform takes
    the task's ``name`` too, and a second create with a known name returns that task."""

    def build() -> dict[str, Any]:
        job_id = body.opt_text("jobId")
        base = _job(ctx, job_id).params["model"] if job_id else body.text("model")
        version = version_or_404(ctx, base)
        method = body.choice("parameterScale", wire_finetuning.METHODS)
        hyper = _hyper(body)
        data = body.obj("datasetConfig", required=True)
        versions = data.data.get("versions")
        if not isinstance(versions, list) or len(versions) != 1 or not isinstance(versions[0], dict):
            raise invalid(f"{data.where}: versions must hold one {{versionId}}.")
        dataset_id = str(versions[0].get("versionId") or "")
        dataset_or_404(ctx, dataset_id)
        params: dict[str, Any] = {
            "job_id": job_id or "",
            "model_version_id": version.id,
            "method": method,
            "hyper_parameters": hyper,
            "dataset_id": dataset_id,
        }
        split = data.data.get("splitRatio")
        if split is not None:
            if not isinstance(split, int) or isinstance(split, bool) or not 0 <= split <= 100:
                raise invalid(f"{data.where}: splitRatio must be an integer in [0, 100], not {split!r}.")
            params["split_ratio"] = split
        evals = data.data.get("evalVersions")
        if evals is not None:
            if not isinstance(evals, list) or len(evals) != 1 or not isinstance(evals[0], dict):
                raise invalid(f"{data.where}: evalVersions must hold one {{versionId}}.")
            params["validation_dataset_id"] = str(evals[0].get("versionId") or "")
            dataset_or_404(ctx, params["validation_dataset_id"])
        return params

    name = body.opt_text("name") or f"{body.opt_text('jobId') or 'task'}-{new_id('run')}"
    task = create_task(ctx, KIND, name, build)
    return {"jobId": task.params.get("job_id", ""), "taskId": task.id}


def describe_finetuning(ctx: Context, body: Body) -> dict[str, Any]:
    """DescribeFineTuningTask [F3], plus (local) ``runMetrics``: the latest losses the job logged, for
    qfrun's progress while the task runs. Qianfan's answer has no such field: its ``metrics`` come once the
    task is Done [F8], and ``runProgress`` is a percentage only [F3]."""
    task = task_of(ctx, KIND, body.text("taskId"))
    answer = _describe(task)
    latest = read_latest(ctx.home.task_dir(task.id))  # one small file: lists leave it out
    if "loss" in latest or "eval_loss" in latest:
        answer["runMetrics"] = _run_metrics(latest)
    return answer


def _run_metrics(latest: Mapping[str, float | int]) -> dict[str, float | int]:
    """The job's latest losses in the answer's spelling: ``{step, loss, evalStep?, evalLoss?}``."""
    names = {"step": "step", "loss": "loss", "eval_step": "evalStep", "eval_loss": "evalLoss"}
    return {names[key]: value for key, value in latest.items()}


def list_finetuning(ctx: Context, body: Body) -> Any:
    job = body.opt_text("jobId")
    return listing(ctx, KIND, body, lambda task: job is None or task.params.get("job_id") == job, _describe)


def stop_finetuning(ctx: Context, body: Body) -> Any:
    stop(ctx, KIND, body)
    return NO_RESULT


def prepare(home: Home, store: Store, task: TaskRow, workdir: Path) -> Prepared:
    params = task.params
    version = version_of(store, params["model_version_id"], task)
    job = {
        "model_dir": version.path,
        "train_path": str(dataset_path(store, params["dataset_id"], task)),
        "output_dir": str(workdir / "model"),
        "workdir": str(workdir),
        "method": params["method"],
        "hyper": params.get("hyper_parameters", {}),
    }
    if params.get("validation_dataset_id"):
        job["eval_path"] = str(dataset_path(store, params["validation_dataset_id"], task))
    elif params.get("split_ratio"):
        job["split_ratio"] = params["split_ratio"]
    return Prepared(job_spec(KIND.store_kind, KIND.engine, workdir, job))


def resume(workdir: Path) -> int:
    """After a platform restart: the step of the newest complete checkpoint, which the job starts from."""
    steps = checkpoint_steps(workdir)
    return steps[-1] if steps else 0


def finish(
    home: Home, store: Store, task: TaskRow, prepared: Prepared, outcome: Mapping[str, Any]
) -> dict[str, Any]:
    """The task's result: the model stays in its folder until CreateCustomModel publishes it [M5]."""
    params = task.params
    base = version_of(store, params["model_version_id"], task)
    built_model(home, task, "fine-tuning")  # refuses a job that wrote no model
    dataset = store.dataset(str(params["dataset_id"]))
    steps = int(outcome.get("steps") or 0)
    return {
        "steps": steps,
        "train_loss": outcome.get("train_loss"),
        "eval_loss": outcome.get("eval_loss"),
        "seconds": outcome.get("seconds"),
        "tokens_per_second": outcome.get("tokens_per_second"),
        "resumed_from_step": outcome.get("resumed_from_step", 0),
        "checkpoints": [{"step": steps}],
        "loss_curve": outcome.get("loss_curve", []),
        "eval_curve": outcome.get("eval_curve", []),
        "lineage": {
            "base_version_id": base.id,
            "task_id": task.id,
            "dataset_id": params["dataset_id"],
            "dataset_sha256": dataset.sha256 if dataset is not None else None,
        },
    }


def run_job(params: dict[str, Any], progress: Path | None) -> dict[str, Any]:
    from runner.local.engine.finetune import finetune

    workdir = Path(require(params, "workdir", "fine-tuning"))
    result = finetune(
        model_dir=Path(require(params, "model_dir", "fine-tuning")),
        train_path=Path(require(params, "train_path", "fine-tuning")),
        output_dir=Path(require(params, "output_dir", "fine-tuning")),
        workdir=workdir,
        method=str(require(params, "method", "fine-tuning")),
        hyper=dict(params.get("hyper") or {}),
        eval_path=Path(params["eval_path"]) if params.get("eval_path") else None,
        split_ratio=int(params.get("split_ratio") or 0),
        report=progress_writer(progress),
    )
    (workdir / "train_result.json").write_text(json.dumps(result), encoding="utf-8")
    return result


KIND = register(
    LocalKind(
        api=wire_finetuning.FINETUNING_API,
        id_prefix="task",  # as Qianfan's fine-tuning task ids (task-0tgmn4a7h4i6 [F3])
        noun="fine-tuning task",
        actions={
            "CreateFineTuningTask": create_finetuning,
            "DescribeFineTuningTask": describe_finetuning,
            "DescribeFineTuningTasks": list_finetuning,
            "StopFineTuningTask": stop_finetuning,
            "CreateFineTuningJob": create_job,
            "DescribeFineTuningJobs": list_jobs,
        },
        prepare=prepare,
        engine=f"{__name__}:run_job",
        finish=finish,
        resume=resume,
        warm=("runner.local.engine.finetune",),
    )
)
