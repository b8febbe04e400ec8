"""What each kind of task asks of the engine, and what the platform records when the engine is done.

``prepare`` turns a stored task (ids of versions and datasets) into the engine job's spec (paths on this
machine); ``finish`` turns the job's result into the task's result, registering what the task produced: the
result dataset of a batch inference, the new model version of a compression (with its lineage). A batch
inference keeps the rows it wrote across restarts: ``merge_partial_output`` folds the rows of an interrupted
job into the task's output, and the next job starts after them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.local import batch_io
from runner.local.bos_store import ObjectStore
from runner.local.home import Home, file_digest, tree_digest
from runner.local.rows import LIVE_SERVICE_STATUSES, SERVING, TaskRow, VersionRow, new_id
from runner.local.store import Store

BATCH_INFERENCE = "batch_inference"
EVALUATION = "evaluation"
COMPRESSION = "compression"
DEFAULT_BATCH_SIZE = 64


class JobSetupError(Exception):
    """A task cannot be run or recorded as asked; the message is the task's failure reason."""


@dataclass(frozen=True)
class Prepared:
    """A job spec (None when nothing is left to compute) and the rows already done before it."""

    spec: dict[str, Any] | None
    offset: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def prepare(home: Home, store: Store, task: TaskRow, workdir: Path) -> Prepared:
    if task.kind == BATCH_INFERENCE:
        return _prepare_batch(home, store, task, workdir)
    if task.kind == EVALUATION:
        return _prepare_eval(store, task, workdir)
    if task.kind == COMPRESSION:
        return _prepare_compression(store, task, workdir)
    raise JobSetupError(f"Task {task.id} has kind {task.kind!r}, which the local platform does not run.")


def finish(
    home: Home, store: Store, task: TaskRow, prepared: Prepared, outcome: Mapping[str, Any]
) -> dict[str, Any]:
    if task.kind == BATCH_INFERENCE:
        return _finish_batch(home, store, task, prepared)
    if task.kind == COMPRESSION:
        return _finish_compression(home, store, task, prepared, outcome)
    return dict(outcome)


def _spec(kind: str, workdir: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "kind": kind,
        "params": dict(params),
        "workdir": str(workdir),
        "progress_file": str(workdir / "progress.json"),
    }


def _version(store: Store, version_id: Any, task: TaskRow) -> VersionRow:
    version = store.version(str(version_id))
    if version is None:
        raise JobSetupError(f"Task {task.id} names model version {version_id!r}, which does not exist.")
    if not Path(version.path).is_dir():
        raise JobSetupError(f"The files of model version {version.id} are missing from {version.path}.")
    return version


def _dataset_path(store: Store, dataset_id: Any, task: TaskRow) -> Path:
    dataset = store.dataset(str(dataset_id))
    if dataset is None:
        raise JobSetupError(f"Task {task.id} names dataset version {dataset_id!r}, which does not exist.")
    return Path(dataset.path)


def read_rows(path: Path) -> list[str]:
    """The non-blank lines of a JSONL file."""
    with path.open(encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()]


# -- batch inference -----------------------------------------------------------------------------------------
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


def _prepare_batch(home: Home, store: Store, task: TaskRow, workdir: Path) -> Prepared:
    params = task.params
    version = _version(store, params["model_version_id"], task)
    files: list[batch_io.InputFile] = []
    if params.get("input_bos_uri"):  # the documented input: a BOS folder of {id, query} lines [B2]
        try:
            files = batch_io.read_input(ObjectStore.for_home(home), str(params["input_bos_uri"]))
        except batch_io.BatchInputError as exc:
            raise JobSetupError(f"Task {task.id} cannot read its input: {exc}") from None
        references = (
            [json.loads(row) for row in read_rows(_dataset_path(store, params["dataset_id"], task))]
            if params.get("dataset_id")
            else []
        )
        rows = [json.dumps(row, ensure_ascii=False) for row in batch_io.engine_rows(files, references)]
    else:  # local-only: a dataset version
        rows = read_rows(_dataset_path(store, params["dataset_id"], task))
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
    return Prepared(_spec(BATCH_INFERENCE, workdir, job), done, extra)


def _finish_batch(home: Home, store: Store, task: TaskRow, prepared: Prepared) -> dict[str, Any]:
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


def store_file_as_dataset(home: Home, store: Store, path: Path, *, name: str, source: str) -> Any:
    """Copy a JSONL file into ``datasets/<sha256>.jsonl`` (once per content) and register it."""
    sha = file_digest(path)
    target = home.datasets_dir / f"{sha}.jsonl"
    if not target.exists():
        tmp = target.with_suffix(f".{new_id('tmp')}")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
    return store.add_dataset(
        name=name,
        path=str(target),
        sha256=sha,
        rows=len(read_rows(target)),
        size_bytes=target.stat().st_size,
        source=source,
    )


# -- evaluation ----------------------------------------------------------------------------------------------
def _prepare_eval(store: Store, task: TaskRow, workdir: Path) -> Prepared:
    params = task.params
    results = dict(params.get("result_dataset_ids") or {})
    models = []
    for version_id in params.get("model_version_ids") or list(results):
        entry: dict[str, Any] = {"version_id": version_id}
        if version_id in results:
            entry["results_path"] = str(_engine_rows(store, results[version_id], task, workdir, version_id))
        else:
            entry["model_dir"] = _version(store, version_id, task).path
        models.append(entry)
    dataset_id = params.get("dataset_id")
    job = {
        "models": models,
        "dataset_path": str(_templated(store, dataset_id, task, workdir)) if dataset_id else None,
        "evaluators": [_evaluator(store, evaluator, task) for evaluator in params.get("evaluators") or []],
        "inference_params": dict(params.get("inference_params") or {}),
        "output_dir": str(workdir / "out"),
    }
    return Prepared(_spec(EVALUATION, workdir, job))


def _templated(store: Store, dataset_id: Any, task: TaskRow, workdir: Path) -> Path:
    """The evaluation's dataset with each prompt put into the task's ``promptTemplate`` at ``{input}``."""
    source = _dataset_path(store, dataset_id, task)
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
        for line in read_rows(_dataset_path(store, dataset_id, task)):
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
        result["judge_model_dir"] = _version(store, result.pop("judge_version_id"), task).path
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


# -- compression ---------------------------------------------------------------------------------------------
def _prepare_compression(store: Store, task: TaskRow, workdir: Path) -> Prepared:
    params = task.params
    version = _version(store, params["model_version_id"], task)
    output = workdir / "model"
    if output.exists():
        shutil.rmtree(output)
    calib = params.get("dataset_id")
    job = {
        "model_dir": version.path,
        "output_dir": str(output),
        "strategy": params["strategy"],
        "weight": params.get("weight"),
        "calib_path": str(_dataset_path(store, calib, task)) if calib else None,
    }
    return Prepared(_spec(COMPRESSION, workdir, job))


def _finish_compression(
    home: Home, store: Store, task: TaskRow, prepared: Prepared, outcome: Mapping[str, Any]
) -> dict[str, Any]:
    params = task.params
    source = _version(store, params["model_version_id"], task)
    built = home.task_dir(task.id) / "model"
    if not (built / "config.json").is_file():
        raise JobSetupError(f"The compression job of task {task.id} wrote no model to {built}.")
    digest, size = tree_digest(built)
    model = store.ensure_model(str(params["name"])) if params.get("name") else store.model(source.model_id)
    assert model is not None
    existing = store.version_by_hash(model.id, digest)
    if existing is None:
        version_id = new_id("amv")
        target = home.models_dir / version_id
        built.replace(target)
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
        version = store.add_version(
            version_id=version_id,
            model_id=model.id,
            path=str(target),
            content_hash=digest,
            size_bytes=size,
            source=f"compression:{task.id}",
            details=details,
        )
    else:
        shutil.rmtree(built, ignore_errors=True)
        version = existing
    return {
        "version_id": version.id,
        "model_id": version.model_id,
        "size_bytes": version.size_bytes,
        "scheme": outcome.get("scheme"),
        "seconds": outcome.get("seconds"),
        "note": outcome.get("note", ""),
    }
