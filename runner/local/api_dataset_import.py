"""``/v2/dataset`` actions of Qianfan's dataset management, answered from the local platform's own BOS:
CreateDataset [D1], DescribeDatasets [D9], DescribeDatasetVersions [D4], CreateImportTask [D5] and
DescribeImportTask [D6], with the bodies the official pages document.

An import runs inside CreateImportTask (a file of at most 64 MiB is read in well under a second), so
DescribeImportTask already answers ImportFinished or ImportFailed. Its rows, in the ``PromptResponse``
(or ``Prompt``) layout [D8], become a dataset version the local engine reads (``datasets/<sha256>.jsonl``,
one ``{"prompt", "response"?}`` object a line) under the version id CreateDataset answered. Local rules where
the pages are silent: a dataset name is used once (409), a version is imported into once (409), a sample has
one turn, and a bad line fails the whole import with a reason that names the file and line (``errorMessage``,
a local field beside the documented ``errDownloadUrl``).
"""

from __future__ import annotations

import json
from typing import Any

from runner import content_hash
from runner.local.api_common import CONFLICT, ApiError, Body, Context, found, invalid, page
from runner.local.bos_store import BosError, parse_bos_uri
from runner.local.rows import ConsoleDatasetRow, DatasetRow, DuplicateName, new_id, now_iso
from runner.platform import dataset_import as wire_ds

MAX_IMPORT_BYTES = 64 * 1024 * 1024
# CreateDataset's documented formats [D1]; the local engine reads prompts and reference answers only.
DATA_FORMATS = (
    "PromptResponse",
    "Role",
    "SFT_FIM",
    "Text",
    "DPO_PromptChosenRejected",
    "KTO_PromptChosenRejected",
    "PromptSortedresponses",
    "Prompt",
    "PromptImage",
    "PromptImageResponse",
)
LOCAL_FORMATS = ("PromptResponse", "Prompt")
STORAGE_TYPES = ("BOS", "sysStorage")


class BadLine(Exception):
    """A line of an imported file that is no sample of the dataset's format."""


def version_result(row: ConsoleDatasetRow) -> dict[str, Any]:
    """A version as CreateDatasetVersion describes one [D2] (CreateDataset answers its first [D1])."""
    return {
        "datasetId": row.dataset_id,
        "versionId": row.version_id,
        "versionNumber": 1,
        "datasetName": row.name,
        "dataFormat": row.data_format,
        "storageType": row.storage_type,
        "importStatus": row.import_status,
        "createTime": row.created_at,
        **({"sampleCount": row.import_rows} if row.import_rows is not None else {}),
    }


def create_dataset(ctx: Context, body: Body) -> dict[str, Any]:
    name = body.text("datasetName")
    data_format = str(body.choice("dataFormat", DATA_FORMATS))
    storage_type = str(body.choice("storageType", STORAGE_TYPES))
    if storage_type == "BOS" and not (body.opt_text("storagePath") or "").endswith("/"):
        raise invalid("CreateDataset: storageType BOS needs a storagePath folder ending in '/'.")
    if data_format not in LOCAL_FORMATS:
        raise invalid(
            f"CreateDataset: the local platform keeps {' and '.join(LOCAL_FORMATS)} datasets only, not "
            f"{data_format}."
        )
    try:
        row = ctx.store.create_console_dataset(name=name, data_format=data_format, storage_type=storage_type)
    except DuplicateName:
        raise ApiError(409, CONFLICT, f"CreateDataset: a dataset named {name!r} exists already.") from None
    return version_result(row)


def describe_datasets(ctx: Context, body: Body) -> dict[str, Any]:
    """One page of the datasets made with CreateDataset; ``filter.datasetName`` matches part of a name (the
    page calls it fuzzy [D9]) and ``filter.dataFormatList`` formats."""
    wanted = body.obj("filter")
    part = wanted.opt_text("datasetName") or ""
    formats = wanted.texts("dataFormatList")
    rows = [
        row
        for row in ctx.store.console_datasets()
        if part.lower() in row.name.lower() and (not formats or row.data_format in formats)
    ]

    def render(row: ConsoleDatasetRow) -> dict[str, Any]:
        return {
            "datasetId": row.dataset_id,
            "datasetName": row.name,
            "dataFormat": row.data_format,
            "storageType": row.storage_type,
            "versionCount": 1,
            "createTime": row.created_at,
        }

    return page(body, rows, lambda row: row.dataset_id, render, wire_ds.DATASETS_FIELD)


def describe_dataset_versions(ctx: Context, body: Body) -> dict[str, Any]:
    """The dataset's versions (one), filtered by ``filter.importStatusList`` [D4]."""
    row = found(
        ctx.store.console_dataset(dataset_id=body.text("datasetId")), "dataset", body.text("datasetId")
    )
    statuses = body.obj("filter").texts("importStatusList")
    rows = [row] if not statuses or row.import_status in statuses else []
    return page(body, rows, lambda item: item.version_id, version_result, wire_ds.VERSIONS_FIELD)


def create_import_task(ctx: Context, body: Body) -> str:
    """CreateImportTask [D5]: the task id, a string; the import has ended when it answers."""
    version_id = body.text("versionId")
    row = found(ctx.store.console_dataset(version_id=version_id), "dataset version", version_id)
    files = body.texts("files", required=True)
    if not files:
        raise invalid("CreateImportTask: files names no BOS folder or file.")
    if any(item.endswith("/") for item in files) and len(files) != 1:
        raise invalid("CreateImportTask: a BOS folder is imported alone (files has exactly one element).")
    try:
        locations = [parse_bos_uri(item) for item in files]
    except BosError as exc:
        raise invalid(f"CreateImportTask: {exc.message}") from None
    task_id = new_id("task")
    if not ctx.store.start_import(version_id, task_id, files):
        raise ApiError(
            409,
            CONFLICT,
            f"CreateImportTask: the version {version_id} was imported into already ({row.import_status}).",
        )
    try:
        lines = [
            line for uri in locations for line in _read_samples(ctx, uri.bucket, uri.key, row.data_format)
        ]
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        sha256 = content_hash.of_bytes(data)
        target = ctx.home.datasets_dir / f"{sha256}.jsonl"
        if not target.exists():
            staging = target.with_name(f".{target.name}.{new_id('tmp')}")
            staging.write_bytes(data)
            staging.replace(target)
    except (BadLine, OSError) as bad:  # a version never stays Importing: the import failed, and says why
        ctx.store.finish_import(version_id, failed=str(bad))
        return task_id
    stored = DatasetRow(
        id=version_id,
        dataset_id=row.dataset_id,
        name=row.name,
        path=str(target),
        sha256=sha256,
        rows=len(lines),
        size_bytes=len(data),
        source="bos-import",
        created_at=now_iso(),
    )
    ctx.store.finish_import(version_id, stored=stored)
    return task_id


def _read_samples(ctx: Context, bucket: str, key: str, data_format: str) -> list[str]:
    """The local rows of every ``.jsonl`` object at ``key`` (a file, or a folder's files in key order)."""
    try:
        if key and not key.endswith("/"):
            infos = [ctx.objects.head(bucket, key)]
        else:
            infos = [info for info in ctx.objects.iter_objects(bucket, key) if info.key.endswith(".jsonl")]
    except BosError as exc:
        raise BadLine(f"bos:/{bucket}/{key} cannot be read: {exc.message}") from None
    if not infos:
        raise BadLine(f"bos:/{bucket}/{key} holds no .jsonl file")
    if sum(info.size for info in infos) > MAX_IMPORT_BYTES:
        raise BadLine(f"bos:/{bucket}/{key} holds more than {MAX_IMPORT_BYTES} bytes, the local limit")
    rows: list[str] = []
    for info in infos:
        where = f"bos:/{bucket}/{info.key}"
        if not info.key.endswith(".jsonl"):
            raise BadLine(f"{where} is not a .jsonl file, the one kind the local platform imports")
        _, handle = ctx.objects.open(bucket, info.key)
        with handle:
            text = handle.read().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                rows.append(
                    json.dumps(_sample(line, data_format, f"{where} line {number}"), ensure_ascii=False)
                )
    if not rows:
        raise BadLine(f"bos:/{bucket}/{key} has no samples")
    return rows


def _sample(line: str, data_format: str, where: str) -> dict[str, Any]:
    """One sample as the local engine's row: ``[{"prompt", "response": [["answer"]]}]`` for PromptResponse
    (a plain string answer, as the console's newer page shows, is read too) or ``{"prompt"}`` for Prompt."""
    try:
        value = json.loads(line)
    except ValueError:
        raise BadLine(f"{where} is not JSON") from None
    turns = value if isinstance(value, list) else [value]
    if len(turns) != 1 or not isinstance(turns[0], dict):
        raise BadLine(
            f"{where}: a sample is a list of one turn object (the local platform has no multi-turn)"
        )
    turn = turns[0]
    if not isinstance(turn.get("prompt"), str) or not turn["prompt"]:
        raise BadLine(f"{where}: the turn has no string 'prompt'")
    row: dict[str, Any] = {"prompt": turn["prompt"]}
    answer = turn.get("response")
    if data_format == "PromptResponse" and answer is not None:
        if (
            isinstance(answer, list)
            and len(answer) == 1
            and isinstance(answer[0], list)
            and len(answer[0]) == 1
        ):
            answer = answer[0][0]
        if not isinstance(answer, str):
            raise BadLine(f"{where}: 'response' is neither [[\"answer\"]] nor a string")
        row["response"] = answer
    return row


def describe_import_task(ctx: Context, body: Body) -> dict[str, Any]:
    """DescribeImportTask [D6]."""
    task_id = body.text("taskId")
    row = found(ctx.store.console_dataset(task_id=task_id), "import task", task_id)
    done = row.import_status == wire_ds.IMPORT_FINISHED
    return {
        "taskId": task_id,
        "versionId": row.version_id,
        "importStatus": row.import_status,
        "progress": "100%" if done else "0",
        "sampleCount": row.import_rows or 0,
        "creator": "local",
        "startTime": row.created_at,
        "finishTime": row.finished_at or "",
        "errDownloadUrl": "",
        **({"errorMessage": row.import_message} if row.import_message else {}),
    }


ACTIONS = {
    wire_ds.CREATE_DATASET: create_dataset,
    wire_ds.LIST_DATASETS: describe_datasets,
    wire_ds.LIST_VERSIONS: describe_dataset_versions,
    wire_ds.CREATE_IMPORT: create_import_task,
    wire_ds.DESCRIBE_IMPORT: describe_import_task,
}
