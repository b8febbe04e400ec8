"""The content hash of the whole project: one way to hash bytes, a file and a folder, with a format version.

Everything qfrun or its local platform compares by content goes through here: a stage's fingerprint (the
hash of its material), the files and folders a stage reads, a dataset sent to the platform, the model folder
a local import or a job registers. One format means the runner and the platform agree on what "the same
model folder" is.

``FORMAT`` is recorded next to every digest that is kept: in the fingerprint material of the state file
(``FORMAT_KEY``) and as the local store's schema version (runner.local.store). A reader of an older record
compares it where its digests cannot differ (a file's hash has always been the sha256 of its bytes), and
says "the content hash format changed" where they can, so a stage re-runs for that reason and never stays
wrongly up to date.

Formats:
  1. (before the format was recorded) a file: sha256 of its bytes. A folder, in the state file: sha256 over
     ``"<relative path>\\0<file hash>\\n"`` per regular file, every file counted; in the local store:
     sha256 over ``"<relative path>\\0<bytes>\\0"``, skipping three names at the top level only.
  2. a file: unchanged. A folder: format 1's state-file form over the files a model import copies, i.e.
     without ``.git``, ``__pycache__`` and ``.cache`` at any depth, for the runner and the platform alike.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.files import MAX_DATASET_BYTES, MAX_MODEL_FILE_BYTES, PathRefused, entries, sha256_regular

FORMAT = 2
FORMAT_KEY = "content_hash_format"  # the material key that records FORMAT beside the digests it qualifies
FIRST_FORMAT = 1  # what a record without FORMAT_KEY was written with

# Never part of a model: what a model import leaves behind (version control, bytecode, download caches).
IGNORED_NAMES = frozenset({".git", "__pycache__", ".cache"})

_lock = threading.Lock()
_file_hashes: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class Tree:
    """A folder's content hash and the total size of the files it covers."""

    digest: str
    size: int


def of_bytes(data: bytes) -> str:
    """The sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def of_text(text: str) -> str:
    """The sha256 of ``text`` as UTF-8."""
    return of_bytes(text.encode("utf-8"))


def of_json(value: Any) -> str:
    """The sha256 of a value's canonical JSON (sorted keys, no spaces; other values as their str)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return of_text(text)


def of_file(path: Path, limit: int = MAX_DATASET_BYTES) -> str:
    """A regular file's content hash, cached per (path, size, mtime) so a run hashes each file once.

    Raises runner.files.PathRefused for a file that is not regular (a FIFO would block, a device never end),
    a link swapped in for it, or one larger than ``limit``.
    """
    real = path.resolve()
    stat = real.stat()
    key = (str(real), stat.st_size, stat.st_mtime_ns)
    with _lock:
        cached = _file_hashes.get(key)
    if cached is None:
        cached = sha256_regular(real, limit)
        with _lock:
            _file_hashes[key] = cached
    return cached


def of_folder(folder: Path, *, shown: str | None = None) -> Tree:
    """A folder's content hash: each regular file's relative path and content hash, in a stable order.

    The same files hash the same wherever the folder lives, which makes a model import idempotent.
    Links out of the folder, FIFOs and devices raise runner.files.PathRefused (see ``files.entries``).
    """
    real = folder.resolve()
    if not real.is_dir():  # os.walk would quietly give the hash of nothing
        raise PathRefused(f"{shown or folder} is not a folder.")
    found = list(entries(real, shown=shown or str(folder), skip=IGNORED_NAMES))
    return Tree(of_files(found), sum(path.stat().st_size for _, path in found))


def of_files(files: Iterable[tuple[str, Path]]) -> str:
    """The folder form over files listed as (relative POSIX path, path): what a caller that walks a folder
    its own way (an upload to BOS) hashes, so both sides name the same content; the order is the format's,
    not the caller's."""
    sha = hashlib.sha256()
    for relative, path in sorted(files, key=lambda item: _walk_order(item[0])):
        sha.update(f"{relative}\0{of_file(path, MAX_MODEL_FILE_BYTES)}\n".encode())
    return sha.hexdigest()


def _walk_order(relative: str) -> tuple[tuple[int, str], ...]:
    """A folder's files in the order format 1 hashed them (``os.walk``, sorted): in each folder its files by
    name, then its sub-folders by name."""
    *folders, name = relative.split("/")
    return (*((1, part) for part in folders), (0, name))


def format_of(material: Mapping[str, Any]) -> int:
    """The content hash format a fingerprint material was made with (``FIRST_FORMAT`` before one was kept)."""
    value = material.get(FORMAT_KEY, FIRST_FORMAT)
    return value if isinstance(value, int) and not isinstance(value, bool) else FIRST_FORMAT
