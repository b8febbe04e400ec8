"""A pipeline's local dataset file as Qianfan's dataset management imports one: its rows rewritten in the
``PromptResponse`` layout [D8], put in BOS under a key named by the file's sha256, then a console dataset made
with CreateDataset [D1] and filled by CreateImportTask from that BOS file [D5]; evaluation [E1] and
fine-tuning [F2] read the dataset's version id (``ds-``).

Qianfan documents no idempotency token for these creates (reference §7.4), so the dataset's name carries the
content hash: DescribeDatasets, filtered by that name (a fuzzy match [D9]) and matched exactly, finds the
dataset an earlier run (or a create whose answer was lost) made, and the version's import status, read
through DescribeDatasetVersions' documented ``importStatusList`` filter [D4], says whether to import,
wait or give up. A changed file has another hash, so another name, so another dataset: never a second
import into a version that already holds rows.

This module is the pure part (layout, names, list parsing); ``runner.platform.actions.datasets``
makes the calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.errors import PlatformError
from runner.platform import wire
from runner.platform.dataset_rows import dataset_rows
from runner.platform.wire.fields import WireError, obj, opt_int, opt_str, req_str

ROUTE = "dataset"
DATASETS_PREFIX = "qfrun/datasets"  # BOS folders of imported dataset files, one per content sha256
DATA_FILE = "prompt-response.jsonl"
DATA_FORMAT = "PromptResponse"  # one prompt and its answer per turn: what evaluation and SFT read [D1][D8]
# The platform's own storage [D1]: BOS storage would need a second folder the dataset lives in, and qfrun
# already keeps the source file in BOS.
STORAGE_TYPE = "sysStorage"
NAME_PREFIX = "qfrun_"
NAME_ID_CHARS = 24  # of the pipeline's dataset id; with the hash's 16 the name stays under 48 characters
NAME_HASH_CHARS = 16  # 64 bits of the sha256: a collision would need 2**32 different files

CREATE_DATASET = "CreateDataset"
LIST_DATASETS = "DescribeDatasets"
LIST_VERSIONS = "DescribeDatasetVersions"
CREATE_IMPORT = "CreateImportTask"
DESCRIBE_IMPORT = "DescribeImportTask"
DATASETS_FIELD = "datasetList"  # the lists' field names are not captured [D4][D9]: the local platform's
VERSIONS_FIELD = "versionList"  # names; a page that names its list otherwise is read from its only array

# Import status words [D4][D6]; Created is a version nothing was imported into yet [D4].
CREATED = "Created"
IMPORTING = "Importing"
IMPORT_FINISHED = "ImportFinished"
IMPORT_FAILED = "ImportFailed"
IMPORT_STATUSES = (CREATED, IMPORTING, IMPORT_FINISHED, IMPORT_FAILED)


@dataclass(frozen=True)
class PreparedFile:
    """The dataset file's rows in Qianfan's layout, and where in BOS they go."""

    data: bytes
    rows: int
    sha256: str  # of the pipeline's file, not of ``data``: what the plan and the state name

    @property
    def key(self) -> str:
        return f"{DATASETS_PREFIX}/{self.sha256}/{DATA_FILE}"


@dataclass(frozen=True)
class ImportTask:
    """What DescribeImportTask says of an import [D6]."""

    status: str
    samples: int | None
    error_url: str
    message: str  # the local platform's reason; Qianfan documents only the error file's link


def prompt_response_line(row: Mapping[str, Any]) -> str:
    """One row as a single-turn ``PromptResponse`` sample: a JSON array of turns, each ``{"prompt",
    "response": [["answer"]]}``, with the optional ``system`` on the first turn [D8]. The response's nested
    list is the layout the official SDK writes and checks (``qianfan/dataset/table.py``, ``schema.py``)."""
    turn: dict[str, Any] = {}
    if isinstance(row.get("system"), str) and row["system"]:
        turn["system"] = row["system"]
    turn["prompt"] = row["prompt"]
    if isinstance(row.get("response"), str):
        turn["response"] = [[row["response"]]]
    return json.dumps([turn], ensure_ascii=False)


def prepare(content: str, sha256: str, where: str) -> PreparedFile:
    """The rows of a pipeline dataset file (``{"prompt", "response"?, "system"?}`` per line) in Qianfan's
    layout; a line that is no such row is an error naming ``where`` and the line."""
    lines = [prompt_response_line(row) for row in dataset_rows(content, where)]
    if not lines:
        raise PlatformError(f"{where}: the dataset file has no rows")
    return PreparedFile("".join(line + "\n" for line in lines).encode("utf-8"), len(lines), sha256)


def dataset_name(dataset_id: str, sha256: str) -> str:
    """The console dataset's name: the pipeline's dataset id (letters, digits, ``_`` and ``-`` kept) and
    the start of the file's sha256, so the same content under the same id always finds the same dataset."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", dataset_id)[:NAME_ID_CHARS]
    return f"{NAME_PREFIX}{readable}_{sha256[:NAME_HASH_CHARS]}"


def find_body(name: str, marker: str | None, max_keys: int) -> dict[str, Any]:
    """A DescribeDatasets page filtered by name [D9] (fuzzy: the caller matches exactly)."""
    return {"maxKeys": max_keys, "filter": {"datasetName": name}, **({"marker": marker} if marker else {})}


def versions_body(dataset_id: str, status: str, marker: str | None, max_keys: int) -> dict[str, Any]:
    """A DescribeDatasetVersions page of the dataset's versions whose import is in ``status`` [D4]."""
    body: dict[str, Any] = {"datasetId": dataset_id, "maxKeys": max_keys}
    if status != CREATED:  # Created is what is left when no other filter names the version
        body["filter"] = {"importStatusList": [status]}
    return body | ({"marker": marker} if marker else {})


def create_body(name: str) -> dict[str, str]:
    return {"datasetName": name, "dataFormat": DATA_FORMAT, "storageType": STORAGE_TYPE}


def import_body(version_id: str, bos_file: str) -> dict[str, Any]:
    """CreateImportTask from one BOS file (``bos:/bucket/key``) [D5]."""
    return {"versionId": version_id, "files": [bos_file]}


def list_page(result: Any, field: str, max_keys: int) -> tuple[list[Mapping[str, Any]], str | None]:
    """A list page's items, read from ``field`` or, when the page names its list otherwise, from its only
    array field; paging as every v2 list pages (``result.pageInfo``)."""
    data = obj(result, "result")
    if field not in data:
        arrays = [key for key, value in data.items() if isinstance(value, list)]
        if len(arrays) == 1:
            field = arrays[0]
    return wire.page_items(result, field, max_keys)


def named(item: Mapping[str, Any]) -> tuple[str, str]:
    """A DescribeDatasets item's ``datasetId`` and ``datasetName`` (CreateDataset's field names [D1][D3])."""
    where = f"result.{DATASETS_FIELD}[]"
    return req_str(item, "datasetId", where), req_str(item, "datasetName", where)


def version_id_of(item: Mapping[str, Any]) -> str:
    return req_str(item, "versionId", f"result.{VERSIONS_FIELD}[]")


def created(result: Any) -> tuple[str, str]:
    """CreateDataset's result: the new dataset's id and its first version's id (made with it [D1])."""
    data = obj(result, "result")
    return req_str(data, "datasetId", "result"), req_str(data, "versionId", "result")


def import_task_id(result: Any) -> str:
    """CreateImportTask's result is the task id itself, a string [D5]."""
    if not isinstance(result, str) or not result:
        raise WireError("the field 'result' should be the import task's id, a string")
    return result


def import_task(result: Any) -> ImportTask:
    data = obj(result, "result")
    status = req_str(data, "importStatus", "result")
    if status not in IMPORT_STATUSES:
        raise WireError(f"the field 'result.importStatus' has the unknown value {status!r}")
    return ImportTask(
        status=status,
        samples=opt_int(data, "sampleCount"),
        error_url=opt_str(data, "errDownloadUrl", "result"),
        message=opt_str(data, "errorMessage", "result"),
    )
