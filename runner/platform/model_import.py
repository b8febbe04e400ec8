"""A local model folder as Qianfan imports one: its files, uploaded to BOS under a key named by their content,
then registered with CreateCustomModel (``sourceType: Import``, ``importMeta.bucket`` and ``objectPath``
[M5]), the documented way into Qianfan's "my models": it imports from BOS only.

The folder's digest names both the BOS folder and the version (in its description), so a second run uploads
nothing that is there already and finds the version it made instead of making another.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runner import content_hash
from runner.errors import PlatformError

MODELS_PREFIX = "qfrun/models"  # BOS folders of imported model folders, one per content digest
DESCRIPTION_PREFIX = "qfrun import sha256:"  # how a version says which content it was imported from
# One PutObject takes at most 5 GB [Put]; a larger file needs a multipart upload, which qfrun does not make.
MAX_OBJECT_BYTES = 5 * 1024**3
IGNORED_NAMES = content_hash.IGNORED_NAMES  # never part of a model
# The transformers versions an imported Hugging Face model may name (``importMeta.transformerVersion``) [M5].
TRANSFORMER_VERSIONS = ("4.34.0", "4.36.2", "4.39.3", "4.40.2")


@dataclass(frozen=True)
class ModelFile:
    relative: str  # posix path inside the folder: the key under the BOS folder
    path: Path
    size: int


@dataclass(frozen=True)
class ModelFolder:
    files: tuple[ModelFile, ...]
    digest: str  # the files' content hash (runner.content_hash)
    transformer_version: str = TRANSFORMER_VERSIONS[-1]  # the one the import names (``transformer_version``)

    @property
    def object_path(self) -> str:
        """The BOS folder the files go to (``importMeta.objectPath``)."""
        return f"{MODELS_PREFIX}/{self.digest}/"

    @property
    def description(self) -> str:
        return DESCRIPTION_PREFIX + self.digest


def read_folder(folder: Path) -> ModelFolder:
    """The folder's regular files and digest; a link, a special file or a file too large for one put is an
    error that names it (validate confined the folder already, but it may have changed since)."""
    if not folder.is_dir():
        raise PlatformError(f"the model folder {folder} is not a folder")
    files = tuple(_files(folder))
    config = next((item for item in files if item.relative == "config.json"), None)
    if config is None:
        raise PlatformError(f"the model folder {folder} has no config.json, so it is no Hugging Face model")
    return ModelFolder(files, folder_digest(files), transformer_version(config.path))


def transformer_version(config: Path) -> str:
    """The oldest transformers version Qianfan offers [M5] that is not older than the one ``config.json``
    was saved with (``transformers_version``), else the newest it offers: a model saved by a newer release
    than Qianfan runs gets the closest there is, and one saved by an older release is never run by an
    older one."""
    try:
        saved = json.loads(config.read_text(encoding="utf-8")).get("transformers_version")
    except (OSError, ValueError, AttributeError):
        saved = None
    wanted = _numbers(saved) if isinstance(saved, str) else None
    if wanted is not None:
        for offered in TRANSFORMER_VERSIONS:
            if (_numbers(offered) or ()) >= wanted:
                return offered
    return TRANSFORMER_VERSIONS[-1]


def _numbers(version: str) -> tuple[int, ...] | None:
    """``4.39.3`` as (4, 39, 3); None for no dotted number (``4.40.0.dev0`` reads as 4.40.0)."""
    parts: list[int] = []
    for part in version.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts) or None


def _files(folder: Path) -> Iterator[ModelFile]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if IGNORED_NAMES.intersection(relative.split("/")) or (path.is_dir() and not path.is_symlink()):
            continue
        if path.is_symlink() or not path.is_file():
            raise PlatformError(f"the model folder {folder} has {relative}, which is not a regular file")
        size = path.stat().st_size
        if size > MAX_OBJECT_BYTES:
            raise PlatformError(
                f"{path} has {size} bytes, more than one BOS upload takes (5 GB); split it into shards"
            )
        yield ModelFile(relative, path, size)


def folder_digest(files: tuple[ModelFile, ...]) -> str:
    """The content hash of the files (runner.content_hash's folder form, as the local platform's import)."""
    return content_hash.of_files((item.relative, item.path) for item in files)
