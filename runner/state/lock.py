"""One writer per state file: an OS file lock, plus a note that names the holder.

The lock is a kernel lock (``flock`` through the filelock library) on ``<state>.lock``: the kernel drops
it when its process dies, however it dies, so a lock left by a killed run needs no clean-up. The OS lock
cannot say who holds it, so the winner writes ``<state>.lock.json`` (pid, host, start, command) and a
loser reads it to name the holder. A note left by a dead process is simply overwritten by the next winner.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

import filelock

from runner.errors import StateError, StateLockedError
from runner.state.io import atomic_write, companion, ensure_folder, utc_now

__all__ = ["RunLock", "pipeline_of_state"]

_COMMAND_LIMIT = 200


def pipeline_of_state(state_path: Path) -> str:
    """The pipeline name a default state path encodes: ``.qfrun/x.state.json`` → ``x``."""
    name = state_path.name.removesuffix(".json")
    return name.removesuffix(".state") or name


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


class RunLock:
    """Hold the state of one pipeline for one run; a second holder fails at once, naming the first."""

    def __init__(self, state_path: Path, *, command: str, pipeline: str | None = None) -> None:
        self.state_path = state_path
        self.command = command
        self.pipeline = pipeline if pipeline is not None else pipeline_of_state(state_path)
        self.lock_path = companion(state_path, ".lock")
        self.holder_path = companion(state_path, ".lock.json")
        # preserve_lock_file: never unlink the lock file (unlinking races with the next opener) and never
        # fall back to a soft lock, which a SIGKILL would leave behind.
        self._lock = filelock.FileLock(self.lock_path, timeout=0, thread_local=False, preserve_lock_file=True)
        self._held = False

    def __enter__(self) -> RunLock:
        ensure_folder(self.state_path.parent)
        try:
            self._lock.acquire(blocking=False)
        except filelock.Timeout:
            raise StateLockedError(self._held_message()) from None
        except OSError as error:
            raise StateError(
                f"The lock file {self.lock_path} cannot be created: {error.strerror}."
            ) from error
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": utc_now(),
            "command": self.command[:_COMMAND_LIMIT],
            "pipeline": self.pipeline,
        }
        try:
            atomic_write(
                self.holder_path, (json.dumps(holder) + "\n").encode("utf-8"), what="lock holder note"
            )
        except BaseException:
            self._lock.release()
            raise
        self._held = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._held:
            return
        self._held = False
        # The note goes first: a loser that sees the lock still held then says "holder not known" at worst.
        with contextlib.suppress(OSError):
            self.holder_path.unlink()
        self._lock.release()

    def holder(self) -> dict[str, Any] | None:
        """What the holder's note says, or None when there is no readable note."""
        try:
            data = json.loads(self.holder_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _held_message(self) -> str:
        head = f"Another qfrun run holds the state of pipeline {self.pipeline!r}"
        holder = self.holder()
        if holder is None:
            return (
                f"{head} (lock file {self.lock_path}; it has not said who it is yet); wait for it or stop it."
            )
        pid, host = holder.get("pid"), holder.get("host", "?")
        detail = (
            f"pid {pid} on host {host}, started {holder.get('started_at', '?')}: "
            f"{str(holder.get('command', ''))[:_COMMAND_LIMIT]}"
        )
        if isinstance(pid, int) and host == socket.gethostname() and not _alive(pid):
            detail += f"; pid {pid} has ended, so a process it started still holds {self.lock_path}"
        return f"{head} ({detail}); wait for it or stop it."
