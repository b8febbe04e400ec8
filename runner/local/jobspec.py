"""What every task kind's job shares: the job spec, the ids a task names resolved to files on this machine,
JSONL rows, and registering a file as a dataset version.

A kind's ``prepare`` (runner.local.kinds) turns a stored task into a ``Prepared`` job spec; its ``finish``
turns the job's result into the task's result. Either raises ``JobSetupError`` with the task's failure reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import content_hash
from runner.files import MAX_MODEL_FILE_BYTES
from runner.local.home import Home
from runner.local.rows import TaskRow, VersionRow, new_id
from runner.local.store import Store


class JobSetupError(Exception):
    """A task cannot be run or recorded as asked; the message is the task's failure reason."""


@dataclass(frozen=True)
class Prepared:
    """A job spec (None when nothing is left to compute) and the rows already done before it."""

    spec: dict[str, Any] | None
    offset: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def job_spec(kind: str, entry: str, workdir: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """The spec runner.local.engine.job runs: the kind's engine ``entry`` over ``params``."""
    return {
        "kind": kind,
        "entry": entry,
        "params": dict(params),
        "workdir": str(workdir),
        "progress_file": str(workdir / "progress.json"),
    }


def version_of(store: Store, version_id: Any, task: TaskRow) -> VersionRow:
    """The model version a task names, with its files present."""
    version = store.version(str(version_id))
    if version is None:
        raise JobSetupError(f"Task {task.id} names model version {version_id!r}, which does not exist.")
    if not Path(version.path).is_dir():
        raise JobSetupError(f"The files of model version {version.id} are missing from {version.path}.")
    return version


def dataset_path(store: Store, dataset_id: Any, task: TaskRow) -> Path:
    """The file of the dataset version a task names."""
    dataset = store.dataset(str(dataset_id))
    if dataset is None:
        raise JobSetupError(f"Task {task.id} names dataset version {dataset_id!r}, which does not exist.")
    return Path(dataset.path)


def built_model(home: Home, task: TaskRow, job: str) -> Path:
    """The model folder a ``job`` (compression, fine-tuning) wrote into its task's folder."""
    built = home.task_dir(task.id) / "model"
    if not (built / "config.json").is_file():
        raise JobSetupError(f"The {job} job of task {task.id} wrote no model to {built}.")
    return built


def register_built_model(
    home: Home,
    store: Store,
    built: Path,
    *,
    model_id: str,
    source: str,
    details: Mapping[str, Any],
    keep: bool = False,
) -> VersionRow:
    """The model version of ``built`` (see ``built_model``), registered once per content: the same files
    under the same model are the version already there. ``built`` is moved into place and dropped when not
    needed, unless ``keep`` (a fine-tuning task keeps its model, to be published into other models too):
    then a copy is registered."""
    tree = content_hash.of_folder(built)
    digest, size = tree.digest, tree.size
    existing = store.version_by_hash(model_id, digest)
    if existing is not None:
        if not keep:
            shutil.rmtree(built, ignore_errors=True)
        return existing
    version_id = new_id("amv")
    target = home.models_dir / version_id
    if keep:
        staging = home.models_dir / f".publish-{version_id}"  # copied whole before it takes the name
        shutil.copytree(built, staging)
        staging.replace(target)
    else:
        built.replace(target)
    version = store.add_version(
        version_id=version_id,
        model_id=model_id,
        path=str(target),
        content_hash=digest,
        size_bytes=size,
        source=source,
        details=dict(details),
    )
    if version.id != version_id:  # another request registered the same content first
        shutil.rmtree(target, ignore_errors=True)
    return version


def read_rows(path: Path) -> list[str]:
    """The non-blank lines of a JSONL file."""
    with path.open(encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()]


def store_file_as_dataset(home: Home, store: Store, path: Path, *, name: str, source: str) -> Any:
    """Copy a JSONL file into ``datasets/<sha256>.jsonl`` (once per content) and register it."""
    sha = content_hash.of_file(path, MAX_MODEL_FILE_BYTES)
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
