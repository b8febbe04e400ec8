"""Stage fingerprints: what a stage's result depends on, hashed, and explained when it changes.

A fingerprint covers the stage's resolved fields (after expressions), the fingerprints and outputs of the
stages it depends on, the content of the local files it reads (datasets, an imported model folder) and the
platform it runs on. The material itself is kept with the last success in the state file, so ``qfrun plan``
can say *what* changed ("service.replicas: 1 -> 2"), not only that something did.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.files import MAX_DATASET_BYTES, MAX_MODEL_FILE_BYTES, MAX_MODULE_BYTES, entries, sha256_regular

_lock = threading.Lock()
_file_hashes: dict[tuple[str, int, int], str] = {}


def digest(material: Mapping[str, Any]) -> str:
    """The sha256 of the material's canonical JSON."""
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: Path, limit: int = MAX_DATASET_BYTES) -> str:
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


def local_input_sha256(kind: str, path: Path) -> str:
    """The content hash of a stage's local input (``runner.stages.base.LocalInput``): a folder's tree, or a
    file's bytes within the size its kind allows (a custom evaluator's module is small code)."""
    if kind == "folder":
        return folder_sha256(path)
    return file_sha256(path, MAX_MODULE_BYTES if kind == "code" else MAX_DATASET_BYTES)


def folder_sha256(folder: Path) -> str:
    """A folder's content hash: every regular file's relative path and content, in a stable order.

    Links out of the folder, FIFOs and devices raise runner.files.PathRefused (see ``files.entries``).
    """
    sha = hashlib.sha256()
    real = folder.resolve()
    for relative, path in entries(real, shown=str(folder)):
        sha.update(f"{relative}\0{file_sha256(path, MAX_MODEL_FILE_BYTES)}\n".encode())
    return sha.hexdigest()


def changes(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 5) -> list[str]:
    """What differs between two fingerprint materials, as short phrases for the plan."""
    found: list[str] = []
    _diff(old.get("fields", {}), new.get("fields", {}), "", found)
    for stage_id in sorted(set(old.get("upstream", {})) | set(new.get("upstream", {}))):
        before, after = old.get("upstream", {}).get(stage_id), new.get("upstream", {}).get(stage_id)
        if before != after:
            found.append(
                f"upstream {stage_id} changed"
                if before and after
                else f"upstream {stage_id} added or removed"
            )
    for name in sorted(set(old.get("files", {})) | set(new.get("files", {}))):
        if old.get("files", {}).get(name) != new.get("files", {}).get(name):
            found.append(f"the content of {name} changed")
    if old.get("platform") != new.get("platform"):
        found.append(f"platform changed ({old.get('platform')} -> {new.get('platform')})")
    if old.get("type") != new.get("type"):
        found.append("stage type changed")
    if not found:
        found.append("qfrun's fingerprint format changed")
    return found[:limit] + ([f"and {len(found) - limit} more"] if len(found) > limit else [])


def _diff(old: Any, new: Any, path: str, found: list[str]) -> None:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            _diff(
                old.get(key, _MISSING), new.get(key, _MISSING), f"{path}.{key}" if path else str(key), found
            )
    elif old != new:
        found.append(f"{path}: {_short(old)} -> {_short(new)}")


class _Missing:
    def __repr__(self) -> str:
        return "(unset)"


_MISSING = _Missing()


def _short(value: Any) -> str:
    text = value if isinstance(value, _Missing) else json.dumps(value, ensure_ascii=False, default=str)
    text = str(text)
    return text if len(text) <= 40 else text[:37] + "..."
