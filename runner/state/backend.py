"""Where a pipeline's state lives: the local file (the default) or an object in BOS that CI can share.

Every command goes through this seam: ``read`` for the read-only verbs (plan, status, report), ``hold``
for the writers (run, destroy), which lock the state for the whole block, and ``replace`` / ``unlock``
for ``qfrun state push`` and ``qfrun state unlock``. The location comes from, first to last: ``--state``
(a path, or ``bos:/bucket/key``), the ``QFRUN_STATE`` environment variable (the same forms), the
pipeline's ``state:`` mapping, and the default ``.qfrun/<name>.state.json`` beside the pipeline.

A pipeline with named targets (``platforms:``) keeps one state per target: every location but ``--state``
(which names exactly one state) gets the target in its name, ``<name>.<target>.state.json`` (Terraform's
workspaces do the same to a backend's key), so a CI job that sets QFRUN_STATE once never mixes targets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from runner.errors import StateError, StateLockedError
from runner.state.file import StateFile
from runner.state.lock import RunLock

ENV_STATE = "QFRUN_STATE"
BOS_SCHEME = "bos:/"


class StateBackend(Protocol):
    """One pipeline's state, wherever it is kept."""

    where: str

    def read(self) -> StateFile:
        """The state as last saved, without the lock (a run may be writing it)."""
        ...

    def hold(self, command: str) -> contextlib.AbstractContextManager[StateFile]:
        """The state under the lock for the whole block, saved and let go when the block ends."""
        ...

    def replace(self, data: bytes, *, source: str, force: bool) -> StateFile:
        """Put a snapshot (``qfrun state pull``'s output) in place of the state, under the lock."""
        ...

    def unlock(self, *, force: bool) -> str:
        """Break a lock left by a run that is gone; returns what was done, in one sentence."""
        ...


@dataclass(frozen=True)
class BosLocation:
    bucket: str
    key: str
    endpoint: str = ""

    def __str__(self) -> str:
        return f"bos:/{self.bucket}/{self.key}"


def parse_location(text: str, *, where: str) -> Path | BosLocation:
    """``bos:/bucket/key`` (or ``bos://``) as a BosLocation, anything else as a path."""
    if not text.startswith(BOS_SCHEME):
        return Path(text)
    bucket, _, key = text[len(BOS_SCHEME) :].lstrip("/").partition("/")
    if not bucket or not key or key.endswith("/"):
        raise StateError(f"{where}: {text!r} is not a BOS object; write bos:/bucket/path/name.state.json.")
    return BosLocation(bucket, key)


def state_location(
    pipeline_name: str,
    pipeline_path: Path,
    declared: Any,
    option: Path | str | None,
    environ: Mapping[str, str],
    target: str | None = None,
) -> Path | BosLocation:
    """Where the state is, by the precedence in this module's docstring; ``target`` is the named target's
    (None for a pipeline of one ``platform:``)."""
    if option is not None:
        return parse_location(str(option), where="--state")
    if environ.get(ENV_STATE, "").strip():
        return parse_location(with_target(environ[ENV_STATE].strip(), target), where=ENV_STATE)
    default = pipeline_path.parent / ".qfrun" / with_target(f"{pipeline_name}.state.json", target)
    if isinstance(declared, Mapping) and declared.get("backend") == "bos":
        key = with_target(str(declared.get("key") or f"qfrun/state/{pipeline_name}.state.json"), target)
        return BosLocation(str(declared["bucket"]), key, str(declared.get("endpoint") or ""))
    if isinstance(declared, Mapping) and declared.get("path"):
        return pipeline_path.parent / with_target(str(declared["path"]), target)
    return default


STATE_SUFFIX = ".state.json"


def with_target(location: str, target: str | None) -> str:
    """``location`` with the target in its last name: ``a/x.state.json`` -> ``a/x.prod.state.json``,
    ``a/x.json`` -> ``a/x.prod.json``, ``a/x`` -> ``a/x.prod``; unchanged without a target."""
    if target is None:
        return location
    folder, slash, name = location.rpartition("/")
    if name.endswith(STATE_SUFFIX) and len(name) > len(STATE_SUFFIX):
        name = f"{name[: -len(STATE_SUFFIX)]}.{target}{STATE_SUFFIX}"
    elif "." in name.lstrip("."):
        stem, _, extension = name.rpartition(".")
        name = f"{stem}.{target}.{extension}"
    else:
        name = f"{name}.{target}"
    return folder + slash + name


class LocalBackend:
    """The state file beside the pipeline (or at ``--state``), under an OS file lock."""

    def __init__(self, path: Path, pipeline: str) -> None:
        self.path = path
        self.pipeline = pipeline
        self.where = str(path)

    def read(self) -> StateFile:
        return StateFile.load(self.path, self.pipeline)

    @contextlib.contextmanager
    def hold(self, command: str) -> Iterator[StateFile]:
        with RunLock(self.path, command=command, pipeline=self.pipeline):
            state = StateFile.load(self.path, self.pipeline)
            try:
                yield state
            finally:
                state.close()

    def replace(self, data: bytes, *, source: str, force: bool) -> StateFile:
        with self.hold(f"qfrun state push {source}") as current:
            new = checked_snapshot(
                data, self.path, self.pipeline, source=source, current=current, force=force
            )
            # Written as the next generation through the state's own compaction, so a journal of the
            # replaced state is never replayed over it.
            current.stages, current.runs = new.stages, new.runs
            current.generation = max(current.generation, new.generation)
        return current

    def unlock(self, *, force: bool) -> str:
        lock = RunLock(self.path, command="qfrun state unlock", pipeline=self.pipeline)
        try:
            with lock:
                return f"The state file {self.path} is not locked; nothing to unlock."
        except StateLockedError as held:
            raise StateLockedError(
                f"{held} The lock of a local state file is the operating system's: it ends with the "
                "process that holds it, so stop that process rather than break the lock."
            ) from None


def checked_snapshot(
    data: bytes, path: Path, pipeline: str, *, source: str, current: StateFile, force: bool
) -> StateFile:
    """``data`` read as a state of ``pipeline`` (as strictly as a state file), refused when it is older
    than ``current`` unless ``force``: pushing a stale copy would forget tasks a later run created."""
    new = StateFile.from_snapshot(data, path, pipeline, label=source)
    if new.generation < current.generation and not force:
        raise StateError(
            f"{source} is generation {new.generation}, older than the state's generation "
            f"{current.generation} at {current.label}; pull the state again, or pass --force to replace it "
            "anyway."
        )
    return new
