"""``/v2/model`` model actions: DescribeModel, DescribeCustomModelSets, DeleteModel, and the local-only
ImportLocalModel.

An import copies the folder into the data directory (so later edits to the source cannot change a registered
version) and hashes its files: the same content under the same name is the same version, which is what lets
``qfrun run`` import a model on every run without piling up versions.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from runner.local.api_common import CONFLICT, ApiError, Body, Context, found, invalid, page
from runner.local.home import tree_digest
from runner.local.rows import ACTIVE_TASK_STATUSES, LIVE_SERVICE_STATUSES, ModelRow, VersionRow, new_id
from runner.platform import wire


def describe_version(ctx: Context, version: VersionRow) -> dict[str, Any]:
    """The DescribeModel result of a version [M2] (also what ImportLocalModel returns).

    ``sizeBytes`` and ``details`` are local additions; ``sourceInfo``'s sub-field names are not captured in
    the official page, so ``sourceType`` (and the task id it came from) are the names chosen here.
    """
    model = ctx.store.model(version.model_id)
    name = model.name if model is not None else ""
    # [M2]: a compressed version's source is Acceleration, a trained one's Train, with the task it came from.
    origin, _, task_id = version.source.partition(":")
    source_type = {"compression": "Acceleration", "train": "Train"}.get(origin)
    source: dict[str, Any] = {"sourceType": source_type or "Import"}
    if source_type:
        source["taskId"] = task_id
    return {
        "modelId": version.id,
        "modelSetId": version.model_id,
        "modelName": name,  # a version takes its model's name locally
        "status": wire.MODEL_STATUS_READY,
        "sourceInfo": source,
        "modelApplicationType": "chat",
        "description": str(version.details.get("description") or ""),
        "isSupportModelComp": True,
        "createTime": version.created_at,
        "modifyTime": version.created_at,
        "version": str(version.version),  # local additions from here on
        "sizeBytes": version.size_bytes,
        "details": version.details,
    }


def _unsafe_entry(folder: Path) -> str | None:
    """What in ``folder`` an import must not read: a link leading out of it, or anything that is not a
    plain file or folder (a FIFO would block the copy, a device would stream forever)."""
    inside = folder.resolve()
    for path in folder.rglob("*"):
        if path.is_symlink():
            target = path.resolve()
            if target != inside and inside not in target.parents:
                return f"has a link out of it: {path.relative_to(folder)} -> {target}"
        elif not (path.is_file() or path.is_dir()):
            return f"has {path.relative_to(folder)}, which is neither a file nor a folder"
    return None


def version_or_404(ctx: Context, version_id: str) -> VersionRow:
    return found(ctx.store.version(version_id), "model version", version_id)


def describe_model(ctx: Context, body: Body) -> dict[str, Any]:
    return describe_version(ctx, version_or_404(ctx, body.text("modelId")))


def import_local_model(ctx: Context, body: Body) -> dict[str, Any]:
    name, raw = body.text("name"), body.text("path")
    folder = Path(raw).expanduser()
    if not folder.is_absolute():
        raise invalid(f"ImportLocalModel needs an absolute path; {raw!r} is relative.")
    if not folder.is_dir():
        raise invalid(f"ImportLocalModel: the folder {raw} does not exist or is not a folder.")
    if not (folder / "config.json").is_file():
        raise invalid(f"ImportLocalModel: the folder {raw} has no config.json, so it is not a model folder.")
    if not any(folder.glob("*.safetensors")):
        raise invalid(f"ImportLocalModel: the folder {raw} has no .safetensors weights.")
    root = ctx.home.root.resolve()
    if root == folder.resolve() or folder.resolve() in root.parents:
        raise invalid(
            f"ImportLocalModel: the folder {raw} holds the platform's own data; import a model folder."
        )
    problem = _unsafe_entry(folder)
    if problem is not None:
        raise invalid(f"ImportLocalModel: the folder {raw} {problem}; only its own files are imported.")
    try:
        digest, size = tree_digest(folder)
    except OSError as exc:
        raise invalid(f"ImportLocalModel: the folder {raw} cannot be read: {exc.strerror or exc}.") from exc
    existing_model = ctx.store.model_by_name(name)
    if existing_model is not None:
        existing = ctx.store.version_by_hash(existing_model.id, digest)
        if existing is not None:
            return describe_version(ctx, existing)
    version_id = new_id("amv")
    target = ctx.home.models_dir / version_id
    staging = ctx.home.models_dir / f".import-{version_id}"
    try:
        shutil.copytree(folder, staging, ignore=shutil.ignore_patterns(".git", "__pycache__", ".cache"))
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise invalid(f"ImportLocalModel: the folder {raw} cannot be copied: {exc}.") from exc
    staging.replace(target)
    model = ctx.store.ensure_model(name)
    version = ctx.store.add_version(
        version_id=version_id,
        model_id=model.id,
        path=str(target),
        content_hash=digest,
        size_bytes=size,
        source="import",
        details={"imported_from": str(folder)},
    )
    if version.id != version_id:  # another request imported the same content first
        shutil.rmtree(target, ignore_errors=True)
    return describe_version(ctx, version)


def list_model_sets(ctx: Context, body: Body) -> dict[str, Any]:
    """DescribeCustomModelSets [M3]: one page of the models, each with its versions' ids and numbers."""

    def render(model: ModelRow) -> dict[str, Any]:
        versions = ctx.store.versions(model.id)
        return {
            "modelSetId": model.id,
            "modelSetName": model.name,
            "modelType": "Text2Text",
            "labels": [],
            "createTime": model.created_at,
            "modifyTime": versions[-1].created_at if versions else model.created_at,
            "modelCount": len(versions),
            "modelIds": [version.id for version in versions],
            "modelNames": [str(version.version) for version in versions],
        }

    models = ctx.store.models()
    return page(body, models, lambda model: model.id, render, wire.MODEL_SETS_FIELD)


def delete_model(ctx: Context, body: Body) -> bool:
    """DeleteModel {modelId} [M9]: the version and its files go, unless a live service serves it or a queued
    or running task reads it (a local rule: Qianfan's page documents none); the model set stays."""
    version = version_or_404(ctx, body.text("modelId"))
    user = ctx.store.delete_version(version.id, LIVE_SERVICE_STATUSES, ACTIVE_TASK_STATUSES)
    if user is not None:
        raise ApiError(
            409, CONFLICT, f"Model version {version.id} is in use by {user}; release or stop that first."
        )
    files = Path(version.path).resolve()
    if ctx.home.root.resolve() in files.parents:  # only ever the platform's own copy
        shutil.rmtree(files, ignore_errors=True)
    return True


ACTIONS = {
    "DescribeModel": describe_model,
    wire.MODEL_SETS_LIST: list_model_sets,
    wire.DELETE_MODEL_VERSION: delete_model,
    "ImportLocalModel": import_local_model,
}
