"""``/v2/dataset`` actions: ImportLocalDataset and ExportDatasetVersion (local-only), DescribeDatasetVersion,
and dataset management's CreateDataset, CreateImportTask and lists (runner.local.api_dataset_import).

A dataset file is stored once per content (``datasets/<sha256>.jsonl``); each (name, sha256) pair is one
dataset version, so uploading the same file again returns the same version id. Rows are checked at upload so
a task never fails late on a malformed line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner import content_hash
from runner.local import api_dataset_import
from runner.local.api_common import Body, Context, found, invalid
from runner.local.jobspec import read_rows
from runner.local.rows import DatasetRow, new_id

MAX_CONTENT_BYTES = 64 * 1024 * 1024


def describe(dataset: DatasetRow) -> dict[str, Any]:
    """The DescribeDatasetVersion result [D3]: a version ``ds-`` of a dataset ``dg-``.

    Fields after ``dataFormat`` are not captured in the official page; ``importStatus`` uses the documented
    import words [D6] and ``sampleCount`` the import task's name for the row count [D6].
    """
    return {
        "datasetId": dataset.dataset_id,
        "versionId": dataset.id,
        "versionNumber": 1,
        "datasetName": dataset.name,
        "dataFormat": "PromptResponse",
        "importStatus": "ImportFinished",
        "sampleCount": dataset.rows,
        "createTime": dataset.created_at,
        "sha256": dataset.sha256,  # local additions
        "sizeBytes": dataset.size_bytes,
    }


def dataset_or_404(ctx: Context, version_id: str) -> DatasetRow:
    return found(ctx.store.dataset(version_id), "dataset version", version_id)


def check_rows(text: str) -> int:
    """Count the rows of JSONL text; each must be an object with a string ``prompt``."""
    rows = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise invalid(f"ImportLocalDataset: line {number} is not valid JSON ({exc}).") from exc
        if not isinstance(row, dict):
            raise invalid(f"ImportLocalDataset: line {number} must be a JSON object.")
        if not isinstance(row.get("prompt"), str):
            raise invalid(f"ImportLocalDataset: line {number} needs a string field 'prompt'.")
        if "response" in row and not isinstance(row["response"], str):
            raise invalid(f"ImportLocalDataset: line {number} has a 'response' that is not a string.")
        rows += 1
    if rows == 0:
        raise invalid("ImportLocalDataset: the content has no rows.")
    return rows


def import_local_dataset(ctx: Context, body: Body) -> dict[str, Any]:
    name, sha256, content = body.text("name"), body.text("sha256").lower(), body.text("content")
    data = content.encode("utf-8")
    if len(data) > MAX_CONTENT_BYTES:
        raise invalid(
            f"ImportLocalDataset: the content has {len(data)} bytes; the limit is {MAX_CONTENT_BYTES}."
        )
    actual = content_hash.of_bytes(data)
    if actual != sha256:
        raise invalid(f"ImportLocalDataset: the content's sha256 is {actual}, not the {sha256} sent with it.")
    rows = check_rows(content)
    target = ctx.home.datasets_dir / f"{sha256}.jsonl"
    if not target.exists():
        staging = target.with_name(f".{target.name}.{new_id('tmp')}")
        staging.write_bytes(data)
        staging.replace(target)
    dataset = ctx.store.add_dataset(
        name=name, path=str(target), sha256=sha256, rows=rows, size_bytes=len(data), source="upload"
    )
    return describe(dataset)


def describe_dataset_version(ctx: Context, body: Body) -> dict[str, Any]:
    version_id = body.text("versionId")
    made = ctx.store.console_dataset(version_id=version_id)
    if made is not None and made.import_status != "ImportFinished":
        return api_dataset_import.version_result(made)  # made by CreateDataset, its import not finished
    return describe(dataset_or_404(ctx, version_id))


def export_dataset_version(ctx: Context, body: Body) -> dict[str, Any]:
    dataset = dataset_or_404(ctx, body.text("versionId"))
    limit = body.opt_integer("limit", low=0)
    rows = read_rows(Path(dataset.path))
    if limit is not None:
        rows = rows[:limit]
    return {
        "versionId": dataset.id,
        "entityCount": len(rows),
        "content": "".join(row + "\n" for row in rows),
    }


ACTIONS = {
    **api_dataset_import.ACTIONS,
    "ImportLocalDataset": import_local_dataset,
    "DescribeDatasetVersion": describe_dataset_version,
    "ExportDatasetVersion": export_dataset_version,
}
