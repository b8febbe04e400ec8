"""v1 ``/wenxinworkshop/dataset/{info,export,exportRecord}`` and the export archive they point to.

``Dataset.load(qianfan_dataset_id=...)`` reads ``dataset/info`` (reference §3 [D7]: the *version* id goes in
as ``datasetId``); downloading a dataset exports it, polls ``versionInfo.exportStatus`` and fetches the newest
``exportRecord``'s ``downloadUrl``, a zip of JSONL files. A local dataset version is one immutable file, so
its export is ready the moment it is asked for: ``dataset/export`` only checks the id, ``exportStatus`` is
always "finished" (2) and the one export record is the file itself, dated with the version's creation.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from runner.local.api_common import Body
from runner.local.api_datasets import dataset_or_404
from runner.local.compat.envelope import V1Context
from runner.local.rows import DatasetRow

# The SDK's enums (qianfan/resources/console/consts.py): a text dataset of non-sorted conversations on the
# platform's own storage is what a prompt/response JSONL file is.
TEXT_ONLY, CONVERSATION, NON_SORTED_CONVERSATION, PLATFORM_STORAGE = 4, 20, 2000, "sysBos"
EXPORT_FINISHED, IMPORT_FINISHED, RELEASE_FINISHED = 2, 2, 2
EXPORT_PATH = "/_compat/exports/datasets/"


def v1_time(stamp: str) -> str:
    """``2026-11-25T16:37:10Z`` as v1 writes times, ``2026-11-25 16:37:10`` (no zone, as the SDK compares)."""
    return stamp.replace("T", " ").rstrip("Z")


def version_number(v1: V1Context, dataset: DatasetRow) -> int:
    same = [row.id for row in v1.ctx.store.datasets() if row.dataset_id == dataset.dataset_id]
    return same.index(dataset.id) + 1


def info(v1: V1Context, dataset: DatasetRow) -> dict[str, Any]:
    stamp = v1_time(dataset.created_at)
    storage_path = f"/{dataset.dataset_id}/{dataset.id}/"
    return {
        "groupPK": dataset.dataset_id,
        "name": dataset.name,
        "dataType": TEXT_ONLY,
        "versionInfo": {
            "groupPK": dataset.dataset_id,
            "datasetPK": dataset.id,
            "versionId": version_number(v1, dataset),
            "dataType": TEXT_ONLY,
            "projectType": CONVERSATION,
            "templateType": NON_SORTED_CONVERSATION,
            "storageType": PLATFORM_STORAGE,
            "storage": {
                "storageId": "local",
                "storageName": "local",
                "storagePath": storage_path,
                "rawStoragePath": storage_path,
                "region": "local",
            },
            "entityCount": dataset.rows,
            "importStatus": IMPORT_FINISHED,
            "releaseStatus": RELEASE_FINISHED,
            "exportStatus": EXPORT_FINISHED,
            "exportRecordCount": 1,
            "createTime": stamp,
            "modifyTime": stamp,
        },
    }


def dataset_info(v1: V1Context, body: Body) -> dict[str, Any]:
    return info(v1, dataset_or_404(v1.ctx, body.text("datasetId")))


def export(v1: V1Context, body: Body) -> bool:
    dataset_or_404(v1.ctx, body.text("datasetId"))
    return True


def export_records(v1: V1Context, body: Body) -> list[dict[str, Any]]:
    dataset = dataset_or_404(v1.ctx, body.text("datasetId"))
    stamp = v1_time(dataset.created_at)
    return [
        {
            "id": 1,
            "datasetId": dataset.id,
            "exportFormat": 0,
            "exportType": 1,
            "exportTo": 0,
            "entityCount": dataset.rows,
            "startTime": stamp,
            "finishTime": stamp,
            "downloadUrl": v1.link(f"{EXPORT_PATH}{dataset.id}.zip"),
        }
    ]


def archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


def export_archive(v1: V1Context, version_id: str) -> bytes:
    """The zip a dataset export record's ``downloadUrl`` serves: the version's JSONL file."""
    dataset = dataset_or_404(v1.ctx, version_id)
    return archive({f"{dataset.id}.jsonl": Path(dataset.path).read_bytes()})


ROUTES = {"dataset/info": dataset_info, "dataset/export": export, "dataset/exportRecord": export_records}
