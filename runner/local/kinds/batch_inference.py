"""Batch inference on the local platform (/v2/batchinference [B1][B2][B4][B6][B7]): the console actions, the
job a task becomes, and what its result registers.

The input is the documented BOS folder of ``{id, query}`` lines, or (local-only) a dataset version; the
results go to the BOS output folder and become a dataset version an evaluation can score. A task keeps the
rows it wrote across restarts: ``merge_partial_output`` folds the rows of an interrupted job into the task's
output, and the next job starts after them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.local import batch_io
from runner.local.api_common import Body, Context, invalid
from runner.local.api_datasets import dataset_or_404
from runner.local.api_models import version_or_404
from runner.local.bos_store import BosError, ObjectStore
from runner.local.engine.job import progress_writer, require
from runner.local.home import Home
from runner.local.jobspec import (
    JobSetupError,
    Prepared,
    dataset_path,
    job_spec,
    read_rows,
    store_file_as_dataset,
    version_of,
)
from runner.local.kinds.common import create_task, inference_params, listing, stop, task_of
from runner.local.kinds.registry import LocalKind, register, wire_status
from runner.local.rows import TaskRow
from runner.local.store import Store
from runner.platform import wire

DEFAULT_BATCH_SIZE = 64
_NAME_LENGTH = (2, 20)  # batch inference task names [B2]


def _describe_batch(task: TaskRow) -> dict[str, Any]:
    params = task.params
    result: dict[str, Any] = {
        "taskId": task.id,
        "name": task.name,
        "description": params.get("description", ""),
        "modelId": params.get("model_version_id", ""),
        "inferenceParams": params.get("inference_params") or {},
        "runStatus": wire_status(task),
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
            "inference_params": inference_params(body, "inferenceParams"),
            "batch_size": body.opt_integer("batchSize", low=1, high=1024),
            "description": body.opt_text("description") or "",
        }

    return {"taskId": create_task(ctx, KIND, name, build).id}


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
    return _describe_batch(task_of(ctx, KIND, body.text("taskId")))


def list_batch(ctx: Context, body: Body) -> Any:
    statuses = body.texts("runStatus")
    return listing(
        ctx, KIND, body, lambda task: not statuses or wire_status(task) in statuses, _describe_batch
    )


def stop_batch(ctx: Context, body: Body) -> bool:
    stop(ctx, KIND, body)
    return True  # `result: true` [B7]


def merge_partial_output(workdir: Path) -> int:
    """Append the complete rows of an interrupted job (``part.jsonl``) to ``output.jsonl``; count them."""
    output, part = workdir / "output.jsonl", workdir / "part.jsonl"
    if part.exists():
        complete: list[str] = []
        for line in part.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # the row being written when the job stopped
            try:
                json.loads(line)
            except ValueError:
                break
            complete.append(line)
        with output.open("a", encoding="utf-8") as handle:
            handle.writelines(complete)
        part.unlink()
    return len(read_rows(output)) if output.exists() else 0


def prepare(home: Home, store: Store, task: TaskRow, workdir: Path) -> Prepared:
    params = task.params
    version = version_of(store, params["model_version_id"], task)
    files: list[batch_io.InputFile] = []
    if params.get("input_bos_uri"):  # the documented input: a BOS folder of {id, query} lines [B2]
        try:
            files = batch_io.read_input(ObjectStore.for_home(home), str(params["input_bos_uri"]))
        except batch_io.BatchInputError as exc:
            raise JobSetupError(f"Task {task.id} cannot read its input: {exc}") from None
        references = (
            [json.loads(row) for row in read_rows(dataset_path(store, params["dataset_id"], task))]
            if params.get("dataset_id")
            else []
        )
        rows = [json.dumps(row, ensure_ascii=False) for row in batch_io.engine_rows(files, references)]
    else:  # local-only: a dataset version
        rows = read_rows(dataset_path(store, params["dataset_id"], task))
    done = merge_partial_output(workdir)
    extra: dict[str, Any] = {"total": len(rows), "files": files}
    if done >= len(rows):
        return Prepared(None, done, extra)
    source = workdir / "input.jsonl"
    source.write_text("".join(row + "\n" for row in rows[done:]), encoding="utf-8")
    job = {
        "model_dir": version.path,
        "dataset_path": str(source),
        "output_path": str(workdir / "part.jsonl"),
        "inference_params": dict(params.get("inference_params") or {}),
        "batch_size": int(params.get("batch_size") or DEFAULT_BATCH_SIZE),
    }
    return Prepared(job_spec(KIND.store_kind, KIND.engine, workdir, job), done, extra)


def finish(
    home: Home, store: Store, task: TaskRow, prepared: Prepared, job_result: Mapping[str, Any]
) -> dict[str, Any]:
    """The rows the job wrote (all of them, across restarts) to the BOS output folder and a dataset version;
    the job's own result is not needed."""
    workdir = home.task_dir(task.id)
    done = merge_partial_output(workdir)
    if done != prepared.extra["total"]:
        raise JobSetupError(
            f"The batch inference job of task {task.id} wrote {done} rows "
            f"for {prepared.extra['total']} input rows."
        )
    version_id = str(task.params["model_version_id"])
    results = [json.loads(line) for line in read_rows(workdir / "output.jsonl")]
    outcome: dict[str, Any] = {"rows": done}
    if task.params.get("output_bos_uri"):
        folder = batch_io.write_output(
            ObjectStore.for_home(home), str(task.params["output_bos_uri"]), prepared.extra["files"], results
        )
        outcome["output_dir"] = folder.folder.rstrip("/").rsplit("/", 1)[-1]
    converted = workdir / "result.jsonl"
    with converted.open("w", encoding="utf-8") as out:
        for row in results:
            record = {"prompt": row.get("prompt", "")}
            if row.get("response") is not None:
                record["response"] = row["response"]
            record["prediction"] = row.get("output", "")
            record["model_version_id"] = version_id
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    dataset = store_file_as_dataset(home, store, converted, name=f"{task.name}-result", source=task.id)
    return {**outcome, "result_dataset_id": dataset.id}


def run_job(params: dict[str, Any], progress: Path | None) -> dict[str, Any]:
    from runner.local.engine.inference import run_batch

    output = Path(require(params, "output_path", "batch_inference"))
    rows = run_batch(
        Path(require(params, "model_dir", "batch_inference")),
        Path(require(params, "dataset_path", "batch_inference")),
        output,
        params.get("inference_params") or {},
        int(params.get("batch_size") or 32),
        progress_writer(progress),
    )
    return {"rows": rows, "output_path": str(output)}


KIND = register(
    LocalKind(
        api=wire.batch.BATCH_INFERENCE,
        id_prefix="infer",  # as Qianfan's ids [B4]
        noun="batch inference task",
        actions={
            "CreateBatchInferenceTask": create_batch,
            "DescribeBatchInferenceTask": describe_batch,
            "DescribeBatchInferenceTasks": list_batch,
            "StopBatchInferenceTask": stop_batch,
        },
        prepare=prepare,
        engine=f"{__name__}:run_job",
        finish=finish,
        resume=merge_partial_output,
        warm=("runner.local.engine.inference",),
    )
)
