"""A local model folder as Qianfan imports one: its files, uploaded to BOS under a key named by their content,
then registered with CreateCustomModel (``sourceType: Import``, ``importMeta.bucket`` and ``objectPath``
[M5]), the documented way into Qianfan's "my models": it imports from BOS only.

The folder's digest names both the BOS folder and the version (in its description), so a second run uploads
nothing that is there already and finds the version it made instead of making another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runner.errors import PlatformError

MODELS_PREFIX = "qfrun/models"  # BOS folders of imported model folders, one per content digest
DESCRIPTION_PREFIX = "qfrun import sha256:"  # how a version says which content it was imported from
# One PutObject takes at most 5 GB [Put]; a larger file needs a multipart upload, which qfrun does not make.
MAX_OBJECT_BYTES = 5 * 1024**3
IGNORED_NAMES = frozenset({".git", "__pycache__", ".cache"})  # never part of a model


@dataclass(frozen=True)
class ModelFile:
    relative: str  # posix path inside the folder: the key under the BOS folder
    path: Path
    size: int


@dataclass(frozen=True)
class ModelFolder:
    files: tuple[ModelFile, ...]
    digest: str  # sha256 of the relative paths and bytes, in order

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
    if not any(item.relative == "config.json" for item in files):
        raise PlatformError(f"the model folder {folder} has no config.json, so it is no Hugging Face model")
    return ModelFolder(files, folder_digest(files))


def _files(folder: Path) -> Iterator[ModelFile]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if relative.split("/")[0] in IGNORED_NAMES or (path.is_dir() and not path.is_symlink()):
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
    digest = hashlib.sha256()
    for item in files:
        digest.update(item.relative.encode() + b"\0")
        with item.path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()
