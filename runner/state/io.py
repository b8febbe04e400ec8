"""Files of the state folder: atomic replacement, companions of a state path, the folder itself.

Shared by ``state.py`` (snapshot and journal) and ``lock.py`` (the holder's note), so that every file
qfrun keeps beside a pipeline is written the same crash-safe way.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from runner.atomic import replace_file
from runner.errors import StateError

__all__ = ["atomic_write", "companion", "ensure_folder", "utc_now"]


class HistoryStore(Protocol):
    """Where a remote backend keeps a state's run history (runner.state.history), instead of the file beside
    the state: BOS keeps it as an object beside the state object, so that every machine's ``qfrun diff`` and
    report see the runs CI made."""

    where: str

    def read(self, limit: int) -> bytes | None:
        """At most ``limit`` bytes of the history; None when there is none yet."""
        ...

    def write(self, data: bytes) -> None:
        """Replace the history; called under the run lock."""
        ...


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a ``Z``, to the second (what the state file stores)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def companion(state_path: Path, suffix: str) -> Path:
    """A file beside the state: ``x.state.json`` with ``.journal`` gives ``x.state.journal``."""
    base = state_path.with_suffix("") if state_path.suffix == ".json" else state_path
    return base.with_name(base.name + suffix)


def ensure_folder(folder: Path) -> None:
    """Create the folder of a state file; one that qfrun creates gets a ``.gitignore`` of ``*``.

    Like the caches of pytest and ruff, the state is machine-local and must not be committed by
    accident; a folder the user made is left as it is.
    """
    if folder.is_dir():
        return
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir()
    except FileExistsError:
        return  # made by a concurrent process, or a file in the way (the write that follows says so)
    except OSError as error:
        raise StateError(f"The state folder {folder} cannot be created: {error.strerror}.") from error
    with contextlib.suppress(OSError):
        (folder / ".gitignore").write_text("*\n", encoding="utf-8")


def atomic_write(path: Path, data: bytes, *, sync: bool = True, what: str = "state file") -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old file or the new one, never a part.

    ``sync=False`` skips the fsyncs: still whole-or-nothing for a killed process, not for a power loss.
    """
    try:
        replace_file(path, data, sync=sync)
    except OSError as error:
        raise StateError(f"The {what} {path} cannot be written: {error.strerror or error}.") from error
