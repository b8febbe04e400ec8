"""A pipeline's state kept as one object in BOS, so that every CI job and every checkout reads the same.

The object is a state snapshot (the format of the local ``.state.json``, journal folded in). A writer
takes the lock object (``runner.state.bos_lock``), reads the snapshot and its ETag, and works on a
local copy in a temporary folder with the file backend's journal; after every durable transition — the
intent before a task is created, the task id once it is — it publishes the whole snapshot with
``If-Match: <the ETag it last wrote>``. So the object always holds a complete state (BOS replaces an
object whole), a task recorded on one machine is known to the next even if the first one dies, and a
writer that lost its lock can never overwrite its successor's state: its put fails and the run stops.
A snapshot that could not be published is kept beside the pipeline so that ``qfrun state push`` can
recover it.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from runner.atomic import replace_file
from runner.errors import PlatformError, StateError
from runner.platform.bos import BosClient
from runner.state import history
from runner.state.backend import checked_snapshot
from runner.state.bos_lock import DEFAULT_TTL_S, PRECONDITION_FAILED, BosLock, LockNote
from runner.state.file import StateFile


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class BosBackend:
    """The state at ``bos:/bucket/key``, locked by ``key + ".lock"``."""

    def __init__(
        self,
        connect: Callable[[], BosClient],
        bucket: str,
        key: str,
        pipeline: str,
        *,
        rescue_dir: Path,
        state_name: str | None = None,  # the pipeline's, with its target when it has named ones
        ttl_s: float = DEFAULT_TTL_S,
        notify: Callable[[str], None] = print,
    ) -> None:
        self.connect = connect  # one client per operation, closed when it ends
        self.bucket = bucket
        self.key = key
        self.pipeline = pipeline
        self.where = f"bos:/{bucket}/{key}"
        self.rescue_path = rescue_dir / f"{state_name or pipeline}.state.unpushed.json"
        self.ttl_s = ttl_s
        self.notify = notify

    def lock(self, client: BosClient, command: str) -> BosLock:
        return BosLock(
            client,
            self.bucket,
            self.key + ".lock",
            command=command,
            ttl_s=self.ttl_s,
            notify=self.notify,
        )

    # -- reading ---------------------------------------------------------------------------------------

    def read(self) -> StateFile:
        with self.connect() as client, tempfile.TemporaryDirectory(prefix="qfrun-state-") as work:
            state, _ = self._load(client, Path(work))
        state.history_store = BosHistory(self)
        return state

    def _load(self, client: BosClient, work: Path) -> tuple[StateFile, str]:
        """The state and its ETag ("" when there is none yet), on a working copy in ``work``."""
        copy = work / f"{self.pipeline}.state.json"
        try:
            found = client.get_versioned(self.bucket, self.key)
        except PlatformError as error:
            raise StateError(f"The state {self.where} cannot be read: {error}") from None
        if found is None:
            state = StateFile(copy, self.pipeline)
            state.label = self.where
            return state, ""
        data, etag = found
        return StateFile.from_snapshot(data, copy, self.pipeline, label=self.where), etag

    def lock_note(self) -> LockNote | None:
        """Who holds the lock now, or None when nobody does."""
        with self.connect() as client:
            found = self.lock(client, "qfrun state").read()
        return None if found is None else found[0]

    # -- writing ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def hold(self, command: str) -> Iterator[StateFile]:
        with self.connect() as client:
            lock = self.lock(client, command).acquire()
            try:
                with tempfile.TemporaryDirectory(prefix="qfrun-state-") as work:
                    state, etag = self._load(client, Path(work))
                    state.on_saved = _Publisher(self, client, lock, etag)
                    state.history_store = BosHistory(self)
                    try:
                        yield state
                    finally:
                        state.close()
            finally:
                lock.release()

    def replace(self, data: bytes, *, source: str, force: bool) -> StateFile:
        with self.hold(f"qfrun state push {source}") as current:
            new = checked_snapshot(
                data, current.path, self.pipeline, source=source, current=current, force=force
            )
            current.stages, current.runs = new.stages, new.runs
            current.generation = max(current.generation, new.generation)
        return current

    def unlock(self, *, force: bool) -> str:
        with self.connect() as client:
            lock = self.lock(client, "qfrun state unlock")
            found = lock.read()
            if found is None:
                return f"The state {self.where} is not locked; nothing to unlock."
            note, _ = found
            if note is not None and note.expires > lock.clock() and not force:
                raise StateError(
                    f"The state lock {lock.where} is held by {note.describe()}; it has not expired, so break "
                    "it only if that run is gone: `qfrun state unlock PIPELINE --force`."
                )
            client.delete_object(self.bucket, lock.key)
        who = note.describe() if note is not None else "a note qfrun cannot read"
        return f"Broke the state lock {lock.where} ({who})."


class BosHistory:
    """The run history as the object ``<state key less .json>.history.jsonl`` beside the state object."""

    def __init__(self, backend: BosBackend) -> None:
        self.backend = backend
        base = backend.key.removesuffix(".json")
        self.key = base + history.SUFFIX
        self.where = f"bos:/{backend.bucket}/{self.key}"

    def read(self, limit: int) -> bytes | None:
        try:
            with self.backend.connect() as client:
                found = client.get_versioned(self.backend.bucket, self.key)
        except PlatformError as error:
            raise StateError(f"The run history {self.where} cannot be read: {error}") from None
        return None if found is None else found[0][:limit]

    def write(self, data: bytes) -> None:
        """Under the state's lock, so one writer at a time; BOS replaces the object whole."""
        try:
            with self.backend.connect() as client:
                client.put_object(self.backend.bucket, self.key, data, content_type="application/x-ndjson")
        except PlatformError as error:
            raise StateError(f"The run history {self.where} cannot be written: {error}") from None


class _Publisher:
    """Publishes each saved snapshot with ``If-Match`` on the ETag this run last wrote."""

    def __init__(self, backend: BosBackend, client: BosClient, lock: BosLock, etag: str) -> None:
        self.backend = backend
        self.client = client
        self.lock = lock
        self.etag = etag

    def __call__(self, data: bytes) -> None:
        digest = _md5(data)
        if digest == self.etag:
            return
        backend = self.backend
        try:
            self.lock.check()
            if self.etag:
                self.etag = self.client.put_object(
                    backend.bucket, backend.key, data, content_type="application/json", if_match=self.etag
                )
            else:
                self.etag = self.client.put_object(
                    backend.bucket, backend.key, data, content_type="application/json", if_none_match="*"
                )
        except (PlatformError, StateError) as error:
            if (
                isinstance(error, PlatformError)
                and error.status == PRECONDITION_FAILED
                and self._landed(digest)
            ):
                self.etag = digest  # an earlier try of this very put landed; its answer was lost
                return
            raise self._stopped(data, error) from None

    def _landed(self, digest: str) -> bool:
        with contextlib.suppress(PlatformError):
            found = self.client.get_versioned(self.backend.bucket, self.backend.key)
            return found is not None and found[1] == digest
        return False

    def _stopped(self, data: bytes, error: Exception) -> StateError:
        backend = self.backend
        why = (
            "someone else wrote it while this run held the lock"
            if isinstance(error, PlatformError) and error.status == PRECONDITION_FAILED
            else str(error).rstrip(".")
        )
        try:
            backend.rescue_path.parent.mkdir(parents=True, exist_ok=True)
            replace_file(backend.rescue_path, data, sync=True)
            kept = (
                f"this run's state is kept in {backend.rescue_path}; check it, then "
                f"`qfrun state push PIPELINE {backend.rescue_path}` puts it back"
            )
        except OSError as failure:
            kept = f"this run's state could not be kept locally either ({failure.strerror})"
        return StateError(f"The state {backend.where} was not updated ({why}); qfrun stopped, and {kept}.")
