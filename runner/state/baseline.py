"""The run ``qfrun diff`` compares against: a git revision's copy of the state, a state file, or a kept run.

A team that commits its state file (or a CI job that checks it out) compares with the state as the main
branch has it, read with ``git show <rev>:./<state>`` so the working copy is never touched; a user who keeps
the state machine-local compares with the previous run of the history (runner.state.history). Either way the
old side is read by ``StateFile.load``, with all its checks, from a private temporary copy.

A state kept in BOS is never in git: it *is* the state on main (the merges to main run the pipeline), and its
history is kept beside it in BOS, so the default old side is the run before the newest one there.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from runner.errors import StateError, UsageError
from runner.state import history
from runner.state.file import StateFile, companion
from runner.state.history import Snapshot

DEFAULT_REFS = ("main", "origin/main")  # a CI checkout of a pull request has only origin/main
_GIT_TIMEOUT_S = 30


def resolve(state: StateFile, types: Mapping[str, str], ref: str | None) -> tuple[str, Snapshot]:
    """The label and snapshot of the old side: ``ref`` when given, else main's committed state, else the
    previous run the history keeps. Raises UsageError naming what was tried when there is none."""
    current = state.runs[-1].run_id if state.runs else ""
    remote = state.history_store
    if ref is None:
        for name in DEFAULT_REFS if remote is None else ():
            found = at_revision(state, name)
            if found is not None:
                return name, history.snapshot(found, types)
        earlier = history.previous(history.load(state), current)
        if earlier is not None:
            return f"run {earlier['run_id']}", earlier
        where = (
            f"the history in {remote.where} keeps no earlier run"
            if remote is not None
            else f"the state file {state.path} is not committed on main and its history keeps no earlier run"
        )
        raise UsageError(
            f"There is nothing to compare with: {where}; run the pipeline again after a change, or name a "
            "REF (a git revision, a state file or a run id)."
        )
    kept = history.load(state)
    for entry in kept:
        if entry.get("run_id") == ref:
            return f"run {ref}", entry
    if Path(ref).is_file():
        return ref, history.snapshot(StateFile.load(Path(ref), state.pipeline), types)
    found = at_revision(state, ref) if remote is None else None
    if found is not None:
        return ref, history.snapshot(found, types)
    runs = ", ".join(str(entry.get("run_id")) for entry in kept[-3:]) or "none"
    raise UsageError(
        f"{ref!r} is neither a run the history keeps (the latest: {runs}), a state file, nor a git revision "
        f"that holds {state.path.name}."
    )


def at_revision(state: StateFile, revision: str) -> StateFile | None:
    """The state as git revision ``revision`` has it committed, or None where git, the repository, the
    revision or the committed file is missing."""
    if revision.startswith("-"):
        return None  # never an option to git
    # git runs in the nearest folder that exists here: a checkout need not have the state's folder (a pull
    # request that never ran the pipeline), while main's commit does.
    target = state.path.resolve()
    folder = next(parent for parent in target.parents if parent.is_dir())
    relative = target.relative_to(folder).as_posix()
    snapshot = _git_show(folder, revision, relative)
    if snapshot is None:
        return None
    journal = _git_show(folder, revision, companion(Path(relative), ".journal").as_posix())
    with tempfile.TemporaryDirectory(prefix="qfrun-diff-") as scratch:
        copy = Path(scratch) / state.path.name
        copy.write_bytes(snapshot)
        if journal is not None:
            companion(copy, ".journal").write_bytes(journal)
        try:
            return StateFile.load(copy, state.pipeline, sync=False)
        except StateError as error:
            raise StateError(f"The state file at {revision}: {error}") from None


def _git_show(folder: Path, revision: str, name: str) -> bytes | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "show", f"{revision}:./{name}"],
            capture_output=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # no git here: the history is the other way to compare
    return done.stdout if done.returncode == 0 else None
