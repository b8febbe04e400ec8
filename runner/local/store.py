"""The local platform's SQLite store: models, versions, datasets, tasks and services.

Why SQLite: the server, its task threads and a restarted server after a crash must all agree on what exists
and where each task stands; WAL mode lets readers (polling clients) run while a worker writes progress.
Each thread gets its own connection, every write is one short ``BEGIN IMMEDIATE`` transaction, and rows come
back as frozen dataclasses with their JSON columns decoded.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runner import content_hash
from runner.files import PathRefused
from runner.local.rows import (
    DEPLOYING,
    LIVE_SERVICE_STATUSES,
    PENDING,
    ConsoleDatasetRow,
    DatasetRow,
    DuplicateName,
    ModelRow,
    ServiceRow,
    StoreError,
    TaskRow,
    VersionRow,
    new_id,
    now_iso,
)

# 2: service names are not unique (Qianfan documents no such rule; issue 10). 3: a service's model version
# may be deleted once nothing live uses it (DeleteModel), so a stopped service names it without a foreign key.
# 4: model versions' content hashes are in runner.content_hash's format 2 (the store's schema version is where
# the format of those digests is recorded).
SCHEMA_VERSION = 4
CONTENT_HASH_FORMATS = {1: 1, 2: 1, 3: 1, 4: 2}  # store schema -> content hash format of its model versions

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_versions (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    source TEXT NOT NULL,
    details TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (model_id, version),
    UNIQUE (model_id, content_hash)
);
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    rows INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (name, sha256)
);
-- Datasets made with CreateDataset [D1] and filled with CreateImportTask [D5]: one version each; an import's
-- rows become the ``datasets`` row of the same id once it finishes. New tables need no schema version bump.
CREATE TABLE IF NOT EXISTS console_datasets (
    dataset_id TEXT PRIMARY KEY,
    version_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    data_format TEXT NOT NULL,
    storage_type TEXT NOT NULL,
    import_status TEXT NOT NULL,
    import_task_id TEXT UNIQUE,
    import_files TEXT NOT NULL,
    import_rows INTEGER,
    import_message TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    params TEXT NOT NULL,
    progress_done INTEGER,
    progress_total INTEGER,
    result TEXT NOT NULL,
    message TEXT NOT NULL,
    worker_pid INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (kind, name)
);
CREATE TABLE IF NOT EXISTS services (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    endpoint_suffix TEXT NOT NULL,
    model_version_id TEXT NOT NULL,
    status TEXT NOT NULL,
    params TEXT NOT NULL,
    replicas TEXT NOT NULL,
    message TEXT NOT NULL,
    expires_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status);
CREATE INDEX IF NOT EXISTS services_suffix ON services (endpoint_suffix);
"""

_UPDATABLE = {
    "tasks": frozenset(
        {"status", "params", "progress_done", "progress_total", "result", "message", "worker_pid"}
    ),
    "services": frozenset({"status", "params", "replicas", "message", "expires_at", "model_version_id"}),
}
_JSON_COLUMNS = frozenset({"details", "params", "result", "replicas", "import_files"})


def _rebuild_services(db: sqlite3.Connection) -> None:
    """Schema 1 or 2 -> 3: rebuild ``services`` without UNIQUE on ``name`` and without the foreign key on its
    model version (SQLite cannot drop a constraint)."""
    columns = _SCHEMA.split("CREATE TABLE IF NOT EXISTS services (", 1)[1].split(");", 1)[0]
    db.execute(f"CREATE TABLE services_v2 ({columns})")
    db.execute("INSERT INTO services_v2 SELECT * FROM services")
    db.execute("DROP TABLE services")
    db.execute("ALTER TABLE services_v2 RENAME TO services")
    db.execute("CREATE INDEX IF NOT EXISTS services_suffix ON services (endpoint_suffix)")


def _rehash_versions(db: sqlite3.Connection) -> None:
    """Content hash format 1 -> 2: hash each model version's stored copy again, so an import of the same
    folder still finds its version. A copy that cannot be hashed (gone, unreadable), or one that now hashes
    like a sibling version, keeps its old digest: no new import matches it, so it is never reused wrongly."""
    for version_id, path in db.execute("SELECT id, path FROM model_versions").fetchall():
        try:
            tree = content_hash.of_folder(Path(path))
        except (OSError, PathRefused):
            continue
        # OR IGNORE: a digest a sibling version already holds leaves this row as it was (UNIQUE per model).
        db.execute(
            "UPDATE OR IGNORE model_versions SET content_hash = ? WHERE id = ?", (tree.digest, version_id)
        )


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    return {key: json.loads(row[key]) if key in _JSON_COLUMNS else row[key] for key in row.keys()}


class Store:
    """Thread-safe access to ``platform.sqlite3``: one connection per thread, short transactions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._migrate()

    # -- connections -------------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _migrate(self) -> None:
        # executescript commits on its own, so the idempotent DDL runs before the versioned transaction.
        self._conn().executescript(_SCHEMA)
        with self._write() as db:
            row = db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif row["version"] < SCHEMA_VERSION:
                if row["version"] < 3:
                    _rebuild_services(db)
                if CONTENT_HASH_FORMATS.get(row["version"], content_hash.FIRST_FORMAT) != content_hash.FORMAT:
                    _rehash_versions(db)
                db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
            elif row["version"] > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer qfrun (store schema {row['version']}; this one "
                    f"reads up to {SCHEMA_VERSION}); upgrade qfrun or point QFRUN_HOME elsewhere."
                )

    def close(self) -> None:
        """Close every thread's connection (call once, when the server stops)."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def _one(self, sql: str, args: Sequence[Any]) -> dict[str, Any] | None:
        row = self._conn().execute(sql, args).fetchone()
        return None if row is None else _decode(row)

    def _many(self, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        return [_decode(row) for row in self._conn().execute(sql, args).fetchall()]

    # -- models --------------------------------------------------------------------------------------------
    def model(self, model_id: str) -> ModelRow | None:
        row = self._one("SELECT * FROM models WHERE id = ?", (model_id,))
        return None if row is None else ModelRow(**row)

    def model_by_name(self, name: str) -> ModelRow | None:
        row = self._one("SELECT * FROM models WHERE name = ?", (name,))
        return None if row is None else ModelRow(**row)

    def ensure_model(self, name: str) -> ModelRow:
        """The model set named ``name``, created if absent."""
        with self._write() as db:
            row = db.execute("SELECT * FROM models WHERE name = ?", (name,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO models (id, name, created_at) VALUES (?, ?, ?)",
                    (new_id("am"), name, now_iso()),
                )
                row = db.execute("SELECT * FROM models WHERE name = ?", (name,)).fetchone()
        return ModelRow(**_decode(row))

    def version(self, version_id: str) -> VersionRow | None:
        row = self._one("SELECT * FROM model_versions WHERE id = ?", (version_id,))
        return None if row is None else VersionRow(**row)

    def versions(self, model_id: str) -> list[VersionRow]:
        rows = self._many("SELECT * FROM model_versions WHERE model_id = ? ORDER BY version", (model_id,))
        return [VersionRow(**row) for row in rows]

    def version_by_hash(self, model_id: str, content_hash: str) -> VersionRow | None:
        row = self._one(
            "SELECT * FROM model_versions WHERE model_id = ? AND content_hash = ?", (model_id, content_hash)
        )
        return None if row is None else VersionRow(**row)

    def add_version(
        self,
        *,
        version_id: str,
        model_id: str,
        path: str,
        content_hash: str,
        size_bytes: int,
        source: str,
        details: Mapping[str, Any],
    ) -> VersionRow:
        """Register a version (next number in its model set); the same content returns the existing one."""
        with self._write() as db:
            row = db.execute(
                "SELECT * FROM model_versions WHERE model_id = ? AND content_hash = ?",
                (model_id, content_hash),
            ).fetchone()
            if row is None:
                number = db.execute(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model_id = ?", (model_id,)
                ).fetchone()[0]
                db.execute(
                    "INSERT INTO model_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        version_id,
                        model_id,
                        number,
                        path,
                        content_hash,
                        size_bytes,
                        source,
                        json.dumps(dict(details)),
                        now_iso(),
                    ),
                )
                row = db.execute("SELECT * FROM model_versions WHERE id = ?", (version_id,)).fetchone()
        return VersionRow(**_decode(row))

    def models(self) -> list[ModelRow]:
        return [ModelRow(**row) for row in self._many("SELECT * FROM models ORDER BY rowid", ())]

    def delete_version(self, version_id: str, live: Sequence[str], active: Sequence[str]) -> str | None:
        """Delete a model version unless a service in a ``live`` status serves it or a task in an ``active``
        status reads it; returns what uses it then (and deletes nothing), else None."""
        with self._write() as db:
            marks = ", ".join("?" * len(live))
            service = db.execute(
                f"SELECT id FROM services WHERE model_version_id = ? AND status IN ({marks})",
                (version_id, *live),
            ).fetchone()
            if service is not None:
                return f"service {service['id']}"
            marks = ", ".join("?" * len(active))
            task = db.execute(
                f"SELECT id FROM tasks WHERE status IN ({marks}) AND instr(params, ?) > 0",
                (*active, json.dumps(version_id)),
            ).fetchone()
            if task is not None:
                return f"task {task['id']}"
            db.execute("DELETE FROM model_versions WHERE id = ?", (version_id,))
        return None

    # -- datasets ------------------------------------------------------------------------------------------
    def dataset(self, dataset_id: str) -> DatasetRow | None:
        row = self._one("SELECT * FROM datasets WHERE id = ?", (dataset_id,))
        return None if row is None else DatasetRow(**row)

    def datasets(self) -> list[DatasetRow]:
        return [DatasetRow(**row) for row in self._many("SELECT * FROM datasets ORDER BY rowid", ())]

    def add_dataset(
        self, *, name: str, path: str, sha256: str, rows: int, size_bytes: int, source: str
    ) -> DatasetRow:
        """Register a stored JSONL file as a version of dataset ``name``; (name, sha256) is reused."""
        with self._write() as db:
            row = db.execute(
                "SELECT * FROM datasets WHERE name = ? AND sha256 = ?", (name, sha256)
            ).fetchone()
            if row is None:
                same_name = db.execute("SELECT dataset_id FROM datasets WHERE name = ?", (name,)).fetchone()
                dataset_id = same_name[0] if same_name is not None else new_id("dg")
                version_id = new_id("ds")
                db.execute(
                    "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (version_id, dataset_id, name, path, sha256, rows, size_bytes, source, now_iso()),
                )
                row = db.execute("SELECT * FROM datasets WHERE id = ?", (version_id,)).fetchone()
        return DatasetRow(**_decode(row))

    # -- console datasets (CreateDataset, CreateImportTask) -------------------------------------------------
    def create_console_dataset(self, *, name: str, data_format: str, storage_type: str) -> ConsoleDatasetRow:
        """A new dataset ``dg-`` with its first version ``ds-``; DuplicateName when the name is used."""
        try:
            with self._write() as db:
                dataset_id, version_id = new_id("dg"), new_id("ds")
                db.execute(
                    "INSERT INTO console_datasets "
                    "VALUES (?, ?, ?, ?, ?, 'Created', NULL, '[]', NULL, '', ?, NULL)",
                    (dataset_id, version_id, name, data_format, storage_type, now_iso()),
                )
        except sqlite3.IntegrityError:
            raise DuplicateName(name) from None
        return self._console_dataset("dataset_id", dataset_id)

    def console_dataset(
        self, *, dataset_id: str = "", version_id: str = "", task_id: str = ""
    ) -> ConsoleDatasetRow | None:
        """The console dataset with that id, version id or import task id (exactly one is given)."""
        column, value = next(
            (c, v)
            for c, v in (("dataset_id", dataset_id), ("version_id", version_id), ("import_task_id", task_id))
            if v
        )
        row = self._one(f"SELECT * FROM console_datasets WHERE {column} = ?", (value,))
        return None if row is None else ConsoleDatasetRow(**row)

    def _console_dataset(self, column: str, value: str) -> ConsoleDatasetRow:
        row = self._one(f"SELECT * FROM console_datasets WHERE {column} = ?", (value,))
        assert row is not None  # written in the transaction just committed
        return ConsoleDatasetRow(**row)

    def console_datasets(self) -> list[ConsoleDatasetRow]:
        return [
            ConsoleDatasetRow(**row)
            for row in self._many("SELECT * FROM console_datasets ORDER BY rowid", ())
        ]

    def start_import(self, version_id: str, task_id: str, files: Sequence[str]) -> bool:
        """Claim the version for one import (Created -> Importing); False when an import ran or runs."""
        with self._write() as db:
            claimed = db.execute(
                "UPDATE console_datasets SET import_status = 'Importing', import_task_id = ?, "
                "import_files = ? WHERE version_id = ? AND import_status = 'Created'",
                (task_id, json.dumps(list(files)), version_id),
            )
            return claimed.rowcount == 1

    def finish_import(self, version_id: str, *, failed: str = "", stored: DatasetRow | None = None) -> None:
        """End the version's import: ``failed`` says why it failed; else ``stored`` (the rows as a dataset
        version of the same id, which evaluations read) is registered in the same transaction."""
        with self._write() as db:
            if stored is not None:
                db.execute(
                    "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        stored.id,
                        stored.dataset_id,
                        stored.name,
                        stored.path,
                        stored.sha256,
                        stored.rows,
                        stored.size_bytes,
                        stored.source,
                        stored.created_at,
                    ),
                )
            db.execute(
                "UPDATE console_datasets SET import_status = ?, import_rows = ?, import_message = ?, "
                "finished_at = ? WHERE version_id = ?",
                (
                    "ImportFailed" if failed else "ImportFinished",
                    stored.rows if stored else None,
                    failed,
                    now_iso(),
                    version_id,
                ),
            )

    # -- tasks -------------------------------------------------------------------------------------------
    def create_task(self, *, task_id: str, kind: str, name: str, params: Mapping[str, Any]) -> TaskRow:
        """Insert a pending task; raises DuplicateName when the kind already has a task of that name."""
        stamp = now_iso()
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, NULL, NULL, '{}', '', NULL, ?, ?)",
                    (task_id, kind, name, PENDING, json.dumps(dict(params)), stamp, stamp),
                )
        except sqlite3.IntegrityError as exc:
            raise DuplicateName(f"A {kind} task named {name!r} already exists.") from exc
        task = self.task(task_id)
        assert task is not None
        return task

    def task(self, task_id: str) -> TaskRow | None:
        row = self._one("SELECT * FROM tasks WHERE id = ?", (task_id,))
        return None if row is None else TaskRow(**row)

    def task_by_name(self, kind: str, name: str) -> TaskRow | None:
        row = self._one("SELECT * FROM tasks WHERE kind = ? AND name = ?", (kind, name))
        return None if row is None else TaskRow(**row)

    def tasks(self, kind: str | None = None, statuses: Sequence[str] = ()) -> list[TaskRow]:
        sql, args = "SELECT * FROM tasks WHERE 1 = 1", []
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        if statuses:
            sql += f" AND status IN ({', '.join('?' * len(statuses))})"
            args.extend(statuses)
        return [TaskRow(**row) for row in self._many(sql + " ORDER BY rowid", args)]

    def update_task(self, task_id: str, *, only_if: Sequence[str] = (), **fields: Any) -> bool:
        """Set columns of a task; with ``only_if``, only while its status is one of those."""
        return self._update("tasks", task_id, only_if, fields)

    # -- services ------------------------------------------------------------------------------------------
    def create_service(
        self,
        *,
        service_id: str,
        name: str,
        endpoint_suffix: str,
        model_version_id: str,
        params: Mapping[str, Any],
    ) -> ServiceRow:
        stamp = now_iso()
        with self._write() as db:
            db.execute(
                "INSERT INTO services VALUES (?, ?, ?, ?, ?, ?, '[]', '', NULL, ?, ?)",
                (
                    service_id,
                    name,
                    endpoint_suffix,
                    model_version_id,
                    DEPLOYING,
                    json.dumps(dict(params)),
                    stamp,
                    stamp,
                ),
            )
        service = self.service(service_id)
        assert service is not None
        return service

    def service(self, service_id: str) -> ServiceRow | None:
        row = self._one("SELECT * FROM services WHERE id = ?", (service_id,))
        return None if row is None else ServiceRow(**row)

    def live_service_by_suffix(self, suffix: str) -> ServiceRow | None:
        marks = ", ".join("?" * len(LIVE_SERVICE_STATUSES))
        row = self._one(
            f"SELECT * FROM services WHERE endpoint_suffix = ? AND status IN ({marks})",
            (suffix, *LIVE_SERVICE_STATUSES),
        )
        return None if row is None else ServiceRow(**row)

    def services(self, statuses: Sequence[str] = ()) -> list[ServiceRow]:
        sql, args = "SELECT * FROM services", list(statuses)
        if statuses:
            sql += f" WHERE status IN ({', '.join('?' * len(statuses))})"
        return [ServiceRow(**row) for row in self._many(sql + " ORDER BY rowid", args)]

    def update_service(self, service_id: str, *, only_if: Sequence[str] = (), **fields: Any) -> bool:
        return self._update("services", service_id, only_if, fields)

    # -- shared --------------------------------------------------------------------------------------------
    def _update(self, table: str, row_id: str, only_if: Sequence[str], fields: Mapping[str, Any]) -> bool:
        unknown = set(fields) - _UPDATABLE[table]
        if unknown:
            raise ValueError(f"{table} has no updatable column(s) {sorted(unknown)}.")
        values = {key: json.dumps(value) if key in _JSON_COLUMNS else value for key, value in fields.items()}
        values["updated_at"] = now_iso()
        sets = ", ".join(f"{key} = ?" for key in values)
        sql, args = f"UPDATE {table} SET {sets} WHERE id = ?", [*values.values(), row_id]
        if only_if:
            sql += f" AND status IN ({', '.join('?' * len(only_if))})"
            args.extend(only_if)
        with self._write() as db:
            return db.execute(sql, args).rowcount > 0
