"""Stage fingerprints: what a stage's result depends on, hashed, and explained when it changes.

A fingerprint covers the stage's resolved fields (after expressions), the fingerprints and outputs of the
stages it depends on, the content of the local files it reads (datasets, an imported model folder) and the
platform it runs on. The material itself is kept with the last success in the state file, so ``qfrun plan``
can say *what* changed ("service.replicas: 1 -> 2"), not only that something did. The material records the
content hash format its digests were made with (runner.content_hash).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner import content_hash
from runner.files import MAX_DATASET_BYTES, MAX_MODULE_BYTES


def digest(material: Mapping[str, Any]) -> str:
    """The fingerprint of a material: its content hash, less the format stamp.

    The stamp is left out so that a stage whose digests read the same under an older format (a file's hash
    never changed) keeps its fingerprint and stays up to date; where they differ, the fingerprint differs
    too, and ``changes`` names the format as the reason.
    """
    return content_hash.of_json({k: v for k, v in material.items() if k != content_hash.FORMAT_KEY})


def local_input_sha256(kind: str, path: Path) -> str:
    """The content hash of a stage's local input (``runner.stages.base.LocalInput``): a folder's tree, or a
    file's bytes within the size its kind allows (a custom evaluator's module is small code)."""
    if kind == "folder":
        return content_hash.of_folder(path).digest
    return content_hash.of_file(path, MAX_MODULE_BYTES if kind == "code" else MAX_DATASET_BYTES)


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
    formats = content_hash.format_of(old), content_hash.format_of(new)
    for name in sorted(set(old.get("files", {})) | set(new.get("files", {}))):
        before, after = old.get("files", {}).get(name), new.get("files", {}).get(name)
        if before != after and before and after and formats[0] != formats[1]:
            # Hashed by two formats, the digests cannot tell whether the content changed: the stage re-runs.
            found.append(
                f"qfrun's fingerprint format changed (content hash {formats[0]} -> {formats[1]}) for {name}"
            )
        elif before is None and old:
            # read now, not before: newly named, or newly fingerprinted by this qfrun (a built-in benchmark)
            found.append(f"{name} was not in the last fingerprint")
        elif before != after:
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
