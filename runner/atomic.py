"""Writing a file so that a reader sees the old one or the new one, never a part: the project's one writer.

The state file, the local platform's records and job results, and a manual evaluation's scoring sheet all
go through ``replace_file``: a temporary file in the same folder, then a rename. ``sync=True`` adds the
fsyncs that make it durable across a power loss (the file, then its folder's entry); without them it is
still whole-or-nothing for a killed process, which is all most of them need.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def replace_file(path: Path, data: bytes, *, sync: bool = False, exclusive: bool = False) -> bool:
    """Put ``data`` at ``path`` atomically; raises OSError (the temporary file removed) when it cannot.

    ``exclusive=True`` never replaces a file already there and returns False instead (a scoring sheet people
    may be filling in); otherwise it returns True.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        if exclusive:
            try:
                os.link(temporary, path)  # fails when the name exists: no window between a check and a write
            except FileExistsError:
                return False
            finally:
                os.unlink(temporary)
        else:
            os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if sync:
        fsync_folder(path.parent)
    return True


def write_json(path: Path, value: Any, *, indent: int | None = None) -> None:
    """``value`` as UTF-8 JSON at ``path`` (its folder made if missing), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, json.dumps(value, ensure_ascii=False, indent=indent).encode("utf-8"))


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; not every platform can open a folder, and then it is skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
