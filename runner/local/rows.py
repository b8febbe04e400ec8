"""What the local platform's store holds: the row types it returns, status words, ids and its errors.

Kept apart from runner.local.store (which owns the SQLite file) so that the API modules, the workers and the
services read the shape of a row here without the database code.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Task statuses inside the store (the API maps them to each resource's Qianfan words).
PENDING = "pending"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
STOPPED = "stopped"
AWAITING_SCORES = (
    "awaiting_scores"  # an evaluation with manual scoring, inferred and open for people to score
)
ACTIVE_TASK_STATUSES = (PENDING, RUNNING)

# Service statuses, already Qianfan's runStatus words [S2]: a failed deployment and a failed replica are
# both ``Failed``; a released service and one whose prepaid term ended are both ``Stopped`` (the reason
# says which).
DEPLOYING = "Deploying"
SERVING = "Serving"
SERVICE_FAILED = "Failed"
SERVICE_STOPPED = "Stopped"
LIVE_SERVICE_STATUSES = (DEPLOYING, SERVING)


class StoreError(Exception):
    """The store cannot be used (a newer schema, a broken file)."""


class DuplicateName(StoreError):
    """A task or service with that name already exists."""


def now_iso() -> str:
    """UTC now as ``2026-11-25T16:37:10Z``, the timestamp shape of Qianfan's responses."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id(prefix: str) -> str:
    """A Qianfan-like id: ``<prefix>-`` and 12 lowercase hex characters."""
    return f"{prefix}-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class ModelRow:
    id: str
    name: str
    created_at: str


@dataclass(frozen=True)
class VersionRow:
    id: str
    model_id: str
    version: int
    path: str
    content_hash: str
    size_bytes: int
    source: str
    details: dict[str, Any]
    created_at: str


@dataclass(frozen=True)
class DatasetRow:
    """A dataset version (``ds-``) of the dataset (``dg-``) named ``name``: one stored JSONL file."""

    id: str
    dataset_id: str
    name: str
    path: str
    sha256: str
    rows: int
    size_bytes: int
    source: str
    created_at: str


@dataclass(frozen=True)
class ConsoleDatasetRow:
    """A dataset made with CreateDataset [D1] (``dg-``), its one version (``ds-``) and that version's
    import."""

    dataset_id: str
    version_id: str
    name: str
    data_format: str
    storage_type: str
    import_status: str  # Created, Importing, ImportFinished, ImportFailed [D4][D6]
    import_task_id: str | None
    import_files: list[str]
    import_rows: int | None
    import_message: str
    created_at: str
    finished_at: str | None


@dataclass(frozen=True)
class TaskRow:
    id: str
    kind: str
    name: str
    status: str
    params: dict[str, Any]
    progress_done: int | None
    progress_total: int | None
    result: dict[str, Any]
    message: str
    worker_pid: int | None
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class ServiceRow:
    id: str
    name: str
    endpoint_suffix: str
    model_version_id: str
    status: str
    params: dict[str, Any]
    replicas: list[dict[str, Any]]
    message: str
    expires_at: str | None
    created_at: str
    updated_at: str
