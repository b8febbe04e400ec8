"""Compression on the local platform (/v2/model [C1][C2][C3][C4]): the console actions, the job a task
becomes, and the model version its result registers (once per content, with its lineage)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.local.api_common import NO_RESULT, Body, Context, invalid
from runner.local.api_datasets import dataset_or_404
from runner.local.api_models import version_or_404
from runner.local.engine.job import progress_writer, require
from runner.local.home import Home
from runner.local.jobspec import (
    Prepared,
    built_model,
    dataset_path,
    job_spec,
    register_built_model,
    version_of,
)
from runner.local.kinds.common import create_task, failure, listing, stop, task_of
from runner.local.kinds.registry import LocalKind, register, wire_status
from runner.local.rows import TaskRow
from runner.local.store import Store
from runner.platform import wire


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
        "status": wire_status(task),
        "failedReason": failure(task),
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

    return create_task(ctx, KIND, body.text("name"), build).id  # the id is the result [C2]


def describe_comp(ctx: Context, body: Body) -> dict[str, Any]:
    return _describe_comp(task_of(ctx, KIND, body.text("modelCompTaskId")))


def list_comp(ctx: Context, body: Body) -> Any:
    source = body.opt_text("sourceModelId")
    return listing(
        ctx,
        KIND,
        body,
        lambda task: source is None or task.params.get("model_version_id") == source,
        _describe_comp,
    )


def cancel_comp(ctx: Context, body: Body) -> Any:
    stop(ctx, KIND, body)
    return NO_RESULT  # only `requestId` [C4]


def prepare(home: Home, store: Store, task: TaskRow, workdir: Path) -> Prepared:
    params = task.params
    version = version_of(store, params["model_version_id"], task)
    output = workdir / "model"
    if output.exists():
        shutil.rmtree(output)
    calib = params.get("dataset_id")
    job = {
        "model_dir": version.path,
        "output_dir": str(output),
        "strategy": params["strategy"],
        "weight": params.get("weight"),
        "calib_path": str(dataset_path(store, calib, task)) if calib else None,
    }
    return Prepared(job_spec(KIND.store_kind, KIND.engine, workdir, job))


def finish(
    home: Home, store: Store, task: TaskRow, prepared: Prepared, outcome: Mapping[str, Any]
) -> dict[str, Any]:
    params = task.params
    source = version_of(store, params["model_version_id"], task)
    built = built_model(home, task, "compression")
    model = store.ensure_model(str(params["name"])) if params.get("name") else store.model(source.model_id)
    assert model is not None
    details = {
        "scheme": outcome.get("scheme"),
        "strategy": params["strategy"],
        "weight": params.get("weight"),
        "recipe": outcome.get("recipe"),
        "seconds": outcome.get("seconds"),
        "note": outcome.get("note", ""),
        "source_size_bytes": outcome.get("source_size_bytes", source.size_bytes),
        "calibration_samples": outcome.get("calibration_samples"),
        "lineage": {"source_version_id": source.id, "task_id": task.id},
    }
    version = register_built_model(
        home, store, built, model_id=model.id, source=f"compression:{task.id}", details=details
    )
    return {
        "version_id": version.id,
        "model_id": version.model_id,
        "size_bytes": version.size_bytes,
        "scheme": outcome.get("scheme"),
        "seconds": outcome.get("seconds"),
        "note": outcome.get("note", ""),
    }


def run_job(params: dict[str, Any], progress: Path | None) -> dict[str, Any]:
    from runner.local.engine.compress import compress
    from runner.local.engine.inference import read_rows

    calib = params.get("calib_path")
    report = progress_writer(progress)
    report(0, 1)
    result = compress(
        Path(require(params, "model_dir", "compression")),
        Path(require(params, "output_dir", "compression")),
        str(require(params, "strategy", "compression")),
        params.get("weight"),
        read_rows(Path(calib)) if calib else None,
    )
    report(1, 1)
    return result


KIND = register(
    LocalKind(
        api=wire.compression.COMPRESSION,
        id_prefix="amva",  # as Qianfan's ids [C2]
        noun="compression task",
        actions={
            "CreateModelCompTask": create_comp,
            "DescribeModelCompTask": describe_comp,
            "DescribeModelCompTasks": list_comp,
            "CancelModelCompTask": cancel_comp,
        },
        prepare=prepare,
        engine=f"{__name__}:run_job",
        finish=finish,
        # llmcompressor's import is most of a compression job's start-up (seconds of CPU)
        warm=(
            "runner.local.engine.compress",
            "runner.local.engine.inference",
            "llmcompressor.entrypoints.oneshot",
            "llmcompressor.modifiers.quantization",
            "llmcompressor.modifiers.pruning.sparsegpt",
            "llmcompressor.modifiers.transform.smoothquant",
        ),
    )
)
