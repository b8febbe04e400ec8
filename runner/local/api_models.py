"""``/v2/model`` model actions: DescribeModel, DescribeCustomModelSets, DeleteModel, CreateCustomModelSet and
CreateCustomModel (an import of a Hugging Face folder from the platform's BOS, as Qianfan's [M4][M5]), and the
local-only ImportLocalModel.

An import copies the folder into the data directory (so later edits to the source cannot change a registered
version) and hashes its files: the same content under the same name is the same version, which is what lets
``qfrun run`` import a model on every run without piling up versions.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from runner import content_hash
from runner.files import PathRefused
from runner.local.api_common import CONFLICT, ApiError, Body, Context, found, invalid, page
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
    described = {"description": version.details["description"]} if version.details.get("description") else {}
    return {
        **described,  # [M2]: only present when set
        "modelId": version.id,
        "modelSetId": version.model_id,
        "modelName": name,  # a version takes its model's name locally
        "status": wire.MODEL_STATUS_READY,
        "sourceInfo": source,
        "modelApplicationType": "chat",
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
        tree = content_hash.of_folder(folder)
    except PathRefused as refused:  # a file that cannot be read, or one too large to hash
        raise invalid(f"ImportLocalModel: {refused}") from None
    except OSError as exc:
        raise invalid(f"ImportLocalModel: the folder {raw} cannot be read: {exc.strerror or exc}.") from exc
    digest, size = tree.digest, tree.size
    existing_model = ctx.store.model_by_name(name)
    if existing_model is not None:
        existing = ctx.store.version_by_hash(existing_model.id, digest)
        if existing is not None:
            return describe_version(ctx, existing)
    version_id = new_id("amv")
    target = ctx.home.models_dir / version_id
    staging = ctx.home.models_dir / f".import-{version_id}"
    try:
        shutil.copytree(folder, staging, ignore=shutil.ignore_patterns(*content_hash.IGNORED_NAMES))
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise invalid(f"ImportLocalModel: the folder {raw} cannot be copied: {exc}.") from exc
    staging.replace(target)
    model = ctx.store.ensure_model(name)
    version = _register(ctx, model.id, target, (digest, size), {"imported_from": str(folder)})
    return describe_version(ctx, version)


def create_model_set(ctx: Context, body: Body) -> str:
    """CreateCustomModelSet [M4]: the new model's id, a string. A name already used answers with that
    model's id (the official page documents no rule for a repeated name)."""
    name = body.text("modelSetName")
    body.choice("modelType", wire.MODEL_TYPES)
    return ctx.store.ensure_model(name).id


def create_custom_model(ctx: Context, body: Body) -> dict[str, Any]:
    """CreateCustomModel [M5] with ``sourceType: Import``: the Hugging Face folder at ``importMeta.bucket``
    and ``objectPath`` in the platform's BOS becomes a version of the model ``modelSetId``; the same content
    in the same model is the same version. Publishing a training result (``Train``) is
    runner.local.api_publish's, which answers CreateCustomModel in the model route and hands imports here."""
    model = found(ctx.store.model(body.text("modelSetId")), "model", body.text("modelSetId"))
    if body.choice("sourceType", ("Train", "Import")) != "Import":
        raise invalid(
            "CreateCustomModel: the local platform's fine-tuning registers its model itself; import."
        )
    meta = body.obj("importMeta", required=True)
    bucket, prefix = meta.text("bucket"), meta.text("objectPath").lstrip("/")
    meta.choice("modelFormat", (wire.IMPORT_MODEL_FORMAT,))
    description = body.opt_text("description") or ""
    if len(description) > wire.MAX_MODEL_DESCRIPTION:
        raise invalid(
            f"CreateCustomModel: the description has more than {wire.MAX_MODEL_DESCRIPTION} characters."
        )
    folder = prefix if prefix.endswith("/") else prefix + "/"
    with tempfile.TemporaryDirectory(dir=ctx.home.models_dir, prefix=".bos-import-") as work:
        staging = Path(work) / "model"
        count = _copy_objects(ctx, bucket, folder, staging)
        where = f"bos:/{bucket}/{folder}"
        if not count:
            raise invalid(f"CreateCustomModel: there is no object under {where}.")
        if not (staging / "config.json").is_file() or not any(staging.glob("*.safetensors")):
            raise invalid(
                f"CreateCustomModel: {where} holds no Hugging Face model (config.json, .safetensors)."
            )
        tree = content_hash.of_folder(staging)
        digest, size = tree.digest, tree.size
        existing = ctx.store.version_by_hash(model.id, digest)
        if existing is not None:
            return describe_version(ctx, existing)
        version_id = new_id("amv")
        target = ctx.home.models_dir / version_id
        staging.replace(target)
    details = {"imported_from": where, **({"description": description} if description else {})}
    return describe_version(ctx, _register(ctx, model.id, target, (digest, size), details))


def _register(
    ctx: Context, model_id: str, files: Path, content: tuple[str, int], details: dict[str, Any]
) -> VersionRow:
    """The imported folder ``files`` (named by its version id) as a version of ``model_id``; when another
    request registered the same content first, that version, and ``files`` are removed."""
    digest, size = content
    version = ctx.store.add_version(
        version_id=files.name,
        model_id=model_id,
        path=str(files),
        content_hash=digest,
        size_bytes=size,
        source="import",
        details=details,
    )
    if version.id != files.name:
        shutil.rmtree(files, ignore_errors=True)
    return version


def _copy_objects(ctx: Context, bucket: str, folder: str, into: Path) -> int:
    """Copy every object under ``folder`` into ``into`` (keys become relative paths); how many were."""
    count = 0
    for info in ctx.objects.iter_objects(bucket, folder):
        relative = info.key[len(folder) :]
        parts = relative.split("/")
        if not relative or relative.endswith("/") or any(part in ("", ".", "..") for part in parts):
            continue  # folder markers, and keys that would leave the folder
        path = into.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        _, handle = ctx.objects.open(bucket, info.key)
        with handle, path.open("wb") as out:
            shutil.copyfileobj(handle, out)
        count += 1
    return count


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
    wire.CREATE_MODEL_SET: create_model_set,
    wire.CREATE_MODEL_VERSION: create_custom_model,
}
