"""Which local files a pipeline may make qfrun read, and reading them without being tricked.

A pipeline file may come from an untrusted pull request, and every path in it (a dataset, a model folder to
import, a custom evaluator's module) is something qfrun will hash, upload or run. So a path must resolve,
links followed, inside the pipeline's repository or inside a folder the user allowed outside the file
(``--allow-path``, ``QFRUN_ALLOW_PATHS``); and what is read must be a regular file: a FIFO would block qfrun
forever, ``/dev/zero`` would never end.

The repository is the work tree of the git repository holding the pipeline file (the nearest folder above it
with a ``.git``), because that is what a pull request changes and a reviewer sees, and pipelines commonly
name ``../data`` from a ``pipelines/`` folder. Outside git there is no such boundary to find, so it is the
pipeline's own folder: the narrowest choice, widened only by the user.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ALLOW_PATHS_VARIABLE = "QFRUN_ALLOW_PATHS"  # folders a pipeline may read, os.pathsep-separated

# Batch inference on Qianfan takes at most 300 MB of input [B2]; a dataset is uploaded whole.
MAX_DATASET_BYTES = 300 * 1000 * 1000
MAX_MODULE_BYTES = 1024 * 1024  # a custom evaluator's source, sent with the evaluation task
MAX_SHEET_BYTES = 64 * 2**20  # a manual evaluation's scoring sheet, read back once people filled it in
MAX_MODEL_FILE_BYTES = 64 * 2**30  # one file of a model folder (a 30B model's shard is well under it)
_BLOCK = 1 << 20


class PathRefused(Exception):
    """A path a pipeline names that qfrun will not read; the message completes "<field>: ..."."""


def repository_of(pipeline_file: Path) -> Path:
    """The folder a pipeline's paths stay inside unless the user allows more (see the module's docstring)."""
    folder = pipeline_file.resolve().parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():  # a folder, or a file in a worktree or submodule
            return candidate
    return folder


def allowed_folders(
    extra: Iterable[str | Path] = (), environ: Mapping[str, str] | None = None
) -> tuple[Path, ...]:
    """The folders the user allowed outside the pipeline: ``extra`` (``--allow-path``), QFRUN_ALLOW_PATHS."""
    listed = (environ if environ is not None else os.environ).get(ALLOW_PATHS_VARIABLE, "").split(os.pathsep)
    return tuple(
        Path(p).expanduser().resolve() for p in (*[str(e) for e in extra], *listed) if str(p).strip()
    )


@dataclass(frozen=True)
class Confinement:
    """Where one pipeline's relative paths start (``base``) and the folders they must stay inside."""

    base: Path  # the pipeline's folder
    repository: Path
    allowed: tuple[Path, ...] = ()

    @classmethod
    def for_pipeline(cls, pipeline_file: Path, allowed: tuple[Path, ...] = ()) -> Confinement:
        return cls(pipeline_file.resolve().parent, repository_of(pipeline_file), allowed)

    def file(self, raw: str, *, code: bool = False) -> Path:
        """The real path of a regular file ``raw`` names; ``code`` keeps it to the repository."""
        real = self._inside(raw, code=code)
        kind = _kind(real)
        if kind == "missing":
            raise PathRefused(
                f"the file {self.shown(raw)} does not exist (paths are relative to the pipeline's folder)."
            )
        if kind != "a regular file":
            raise PathRefused(f"{raw} is {kind}, not a regular file; qfrun reads regular files only.")
        return real

    def code(self, raw: str) -> Path:
        """The real path of a source file ``raw`` names, inside the repository only."""
        return self.file(raw, code=True)

    def sheet(self, raw: str) -> Path:
        """The real path of a file qfrun writes into the repository and later reads back (a manual
        evaluation's scoring sheet): inside the repository, where a pull request shows it; it need not exist
        yet, and whatever is there must be a regular file."""
        real = self._inside(raw, code=True, why="qfrun writes scoring sheets only there")
        kind = _kind(real)
        if kind not in ("missing", "a regular file"):
            raise PathRefused(f"{raw} is {kind}, not a regular file; a scoring sheet is one.")
        return real

    def folder(self, raw: str) -> Path:
        """The real path of the folder ``raw`` names, after checking every entry in it (see ``entries``)."""
        real = self._inside(raw, code=False)
        kind = _kind(real)
        if kind == "missing":
            raise PathRefused(
                f"the model folder {self.shown(raw)} does not exist "
                "(paths are relative to the pipeline's folder)."
            )
        if kind != "a folder":
            raise PathRefused(f"{raw} is {kind}, not a folder.")
        for _ in entries(real, shown=raw):
            pass
        return real

    def confined(self, kind: Literal["file", "folder", "code", "sheet"], raw: str) -> Path:
        """The real path of ``raw`` under the rule ``kind`` names (a stage type's ``LocalInput.kind``)."""
        rules: dict[str, Callable[[str], Path]] = {
            "file": self.file,
            "folder": self.folder,
            "code": self.code,
            "sheet": self.sheet,
        }
        return rules[kind](raw)

    def shown(self, raw: str) -> str:
        """``raw`` as messages show it: joined to the pipeline's folder, ``..`` folded."""
        return os.path.normpath(self.base / raw)

    def _inside(self, raw: str, *, code: bool, why: str = "code runs only from there") -> Path:
        written = self.base / raw  # an absolute ``raw`` replaces the base
        real = _resolve(written, raw)
        roots = (self.repository,) if code else (self.repository, *self.allowed)
        if any(real.is_relative_to(root) for root in roots):
            return real
        lexical = Path(os.path.normpath(written))
        how = (
            f"is a link to {real}"
            if any(lexical.is_relative_to(root) for root in roots)
            else f"resolves to {real}"
        )
        where = (
            f"the repository {self.repository} ({why})"
            if code
            else f"the repository {self.repository} and the folders allowed with --allow-path or "
            f"{ALLOW_PATHS_VARIABLE}"
        )
        raise PathRefused(f"{raw} {how}, outside {where}.")


def _resolve(path: Path, shown: str) -> Path:
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError for a loop of links, later ones OSError
        raise PathRefused(f"{shown} is a loop of links.") from None


def _kind(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        return f"unreadable ({error.strerror})"
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def entries(
    folder: Path, *, shown: str | None = None, skip: frozenset[str] = frozenset()
) -> Iterator[tuple[str, Path]]:
    """Every regular file under ``folder`` as (relative POSIX path, real path), in a stable order.

    A link is followed only while it stays inside the folder (a model import copies the folder's own files,
    and its hash must cover exactly those); a link out of it, a FIFO, a device or a socket is refused.
    Files and folders named in ``skip`` are left out at any depth, unread.
    """
    name = shown or str(folder)
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        files = [f for f in files if f not in skip]
        for child in sorted(files) + [d for d in dirs if Path(root, d).is_symlink()]:
            path = Path(root, child)
            relative = path.relative_to(folder).as_posix()
            real = _resolve(path, f"{name} holds {relative}, which")
            if not real.is_relative_to(folder):
                raise PathRefused(f"{name} has a link out of it: {relative} -> {real}.")
            kind = _kind(real)
            if kind == "a regular file":
                yield relative, real
            elif kind != "a folder":  # a link to a folder inside is walked where it lies
                raise PathRefused(
                    f"{name} holds {relative}, which is {kind}; model folders hold regular files."
                )


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them, never blocking on a FIFO."""
    chunks = list(_blocks(path, limit))
    return b"".join(chunks)


def sha256_regular(path: Path, limit: int) -> str:
    import hashlib  # hashing is a run's and a plan's: validate does without it

    sha = hashlib.sha256()
    for block in _blocks(path, limit):
        sha.update(block)
    return sha.hexdigest()


def _blocks(path: Path, limit: int) -> Iterator[bytes]:
    # O_NONBLOCK: opening a FIFO returns at once (then fstat refuses it) instead of waiting for a writer;
    # O_NOFOLLOW: a link swapped in after the path was checked is refused, not followed.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise PathRefused(f"{path} cannot be read: {error.strerror}.") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # checked before fdopen, which raises IsADirectoryError for a folder
        os.close(fd)
        raise PathRefused(f"{path} is not a regular file; qfrun reads regular files only.")
    with os.fdopen(fd, "rb") as stream:
        if info.st_size > limit:
            raise PathRefused(
                f"{path} is {info.st_size:,} bytes, more than the {limit:,} qfrun reads from such a file."
            )
        left = info.st_size  # never more than it held when opened, should it grow while read
        while left > 0:
            block = stream.read(min(_BLOCK, left))
            if not block:
                break
            left -= len(block)
            yield block
