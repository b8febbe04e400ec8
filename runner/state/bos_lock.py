"""The run lock of a state kept in BOS: one lock object, created only if absent, that names its holder.

A file lock cannot span CI machines, so the lock is ``<state key>.lock`` in the same bucket, written with
BOS's conditional put: ``If-None-Match: *`` creates it only when no one holds it, and ``If-Match: <etag>``
renews or takes it over only when it is still the note that was read. Two runners racing therefore
cannot both win, whatever machines they are on.

The note names the holder (user, host, pid, command) and an expiry. While the run goes on, a heartbeat
thread pushes the expiry forward every third of ``ttl_s``; a run that crashed stops renewing, so after
``ttl_s`` a later run takes the lock over (conditionally, naming who held it) and
``qfrun state unlock --force`` breaks it at once. A holder whose renewal finds the note changed has lost
the lock and says so at its next write, so it never writes over the state its successor holds. Expiry is
judged by the reader's clock: keep ``ttl_s`` well above the clock skew between machines.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runner.errors import PlatformError, StateError, StateLockedError
from runner.platform.bos import BosClient

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 900.0
_COMMAND_LIMIT = 200
PRECONDITION_FAILED = 412


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "?"


@dataclass(frozen=True)
class LockNote:
    """What the lock object says: who holds it and until when (``expires`` in epoch seconds)."""

    lock_id: str
    holder: str
    command: str
    started_at: str
    expires: float

    def describe(self) -> str:
        return (
            f"{self.holder}, started {self.started_at}, lock id {self.lock_id}, "
            f"expires {_iso(self.expires)}: {self.command}"
        )

    def to_bytes(self) -> bytes:
        body = {
            "lock_id": self.lock_id,
            "holder": self.holder,
            "command": self.command,
            "started_at": self.started_at,
            "expires": self.expires,
            "expires_at": _iso(self.expires),
        }
        return (json.dumps(body) + "\n").encode("utf-8")

    @classmethod
    def parse(cls, data: bytes) -> LockNote | None:
        """The note, or None when the object is not one (then it is treated as expired long ago)."""
        try:
            body: Any = json.loads(data.decode("utf-8"))
            return cls(
                str(body["lock_id"]),
                str(body["holder"]),
                str(body.get("command", "")),
                str(body.get("started_at", "")),
                float(body["expires"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def _precondition_failed(error: PlatformError) -> bool:
    return error.status == PRECONDITION_FAILED


class BosLock:
    """Hold ``bucket``/``key`` for one run; a second holder fails at once, naming the first."""

    def __init__(
        self,
        client: BosClient,
        bucket: str,
        key: str,
        *,
        command: str,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.time,
        notify: Callable[[str], None] = log.warning,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.where = f"bos:/{bucket}/{key}"
        self.ttl_s = ttl_s
        self.clock = clock
        self.notify = notify
        holder = f"{_user()}@{socket.gethostname()} pid {os.getpid()}"
        self.note = LockNote(uuid.uuid4().hex, holder, command[:_COMMAND_LIMIT], _iso(clock()), 0.0)
        self._etag = ""
        self._lost = ""
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # -- holding ---------------------------------------------------------------------------------------

    def acquire(self) -> BosLock:
        """Create the lock object, or take over one that expired; StateLockedError when it is held."""
        note = self._fresh_note()
        try:
            self._etag = self.client.put_object(
                self.bucket, self.key, note.to_bytes(), content_type="application/json", if_none_match="*"
            )
        except PlatformError as error:
            if not _precondition_failed(error):
                raise self._unreachable(error) from None
            self._take_over(note)
        self.note = note
        self._heartbeat = threading.Thread(target=self._beat, name="qfrun-state-lock", daemon=True)
        self._heartbeat.start()
        return self

    def _take_over(self, note: LockNote) -> None:
        current = self.read()
        if current is None:  # released between our put and our read: try once more from scratch
            try:
                self._etag = self.client.put_object(
                    self.bucket, self.key, note.to_bytes(), content_type="application/json", if_none_match="*"
                )
                return
            except PlatformError as error:
                raise (
                    self._held(None) if _precondition_failed(error) else self._unreachable(error)
                ) from None
        held, etag = current
        if held is not None and held.lock_id == note.lock_id:  # our own put, retried after a lost answer
            self._etag = etag
            return
        if held is not None and held.expires > self.clock():
            raise self._held(held)
        try:
            self._etag = self.client.put_object(
                self.bucket, self.key, note.to_bytes(), content_type="application/json", if_match=etag
            )
        except PlatformError as error:
            raise (self._held(None) if _precondition_failed(error) else self._unreachable(error)) from None
        previous = held.describe() if held is not None else "a note qfrun cannot read"
        self.notify(f"Took over the expired state lock {self.where} ({previous}).")

    def release(self) -> None:
        """Stop renewing and delete the lock object if it is still ours."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        with contextlib.suppress(PlatformError):
            current = self.read()
            if current is not None and current[0] is not None and current[0].lock_id == self.note.lock_id:
                self.client.delete_object(self.bucket, self.key)

    def check(self) -> None:
        """Raise StateError when the lock was lost (taken over or broken) since it was acquired."""
        if self._lost:
            raise StateError(self._lost)

    def _fresh_note(self) -> LockNote:
        return LockNote(
            self.note.lock_id,
            self.note.holder,
            self.note.command,
            self.note.started_at,
            self.clock() + self.ttl_s,
        )

    def renew(self) -> None:
        """Push the expiry forward, only if the note is still the one this holder wrote."""
        note = self._fresh_note()
        try:
            self._etag = self.client.put_object(
                self.bucket, self.key, note.to_bytes(), content_type="application/json", if_match=self._etag
            )
        except PlatformError as error:
            if not _precondition_failed(error):
                raise
            self._lost = (
                f"The state lock {self.where} was taken over or broken while this run held it "
                f"(lock id {self.note.lock_id}); this run stopped writing the state so as not to overwrite "
                "what the new holder writes."
            )
            self._stop.set()
            return
        self.note = note

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                self.renew()
            except PlatformError as error:  # a passing outage: the next beat tries again before expiry
                log.warning("The state lock %s could not be renewed: %s", self.where, error)

    # -- reading ---------------------------------------------------------------------------------------

    def read(self) -> tuple[LockNote | None, str] | None:
        """The lock's note (None when unreadable) and ETag, or None when nobody holds the lock."""
        found = self.client.get_versioned(self.bucket, self.key)
        if found is None:
            return None
        data, etag = found
        return LockNote.parse(data), etag

    def _held(self, held: LockNote | None) -> StateLockedError:
        who = held.describe() if held is not None else "its holder has not said who it is yet"
        return StateLockedError(
            f"Another qfrun run holds the state lock {self.where} ({who}); wait for it, or if it is gone "
            "break the lock with `qfrun state unlock PIPELINE --force`."
        )

    def _unreachable(self, error: PlatformError) -> StateError:
        return StateError(f"The state lock {self.where} cannot be taken: {error}")
