"""The run history beside a state file: one line per run with what each stage ended with.

``qfrun diff`` compares the newest run with the one before it, and the report plots metrics across runs, so
each run leaves a *snapshot* in ``<state>.history.jsonl``: per stage its status, fingerprint, fingerprint
material (what ``runner.run.fingerprint.changes`` explains) and outputs (metrics, services). The state file
itself keeps only the latest record of each stage, which is why this lives apart from it.

The history is bounded twice: at most ``MAX_ENTRIES`` runs (the number of runs the state file lists, so every
run ``qfrun status`` shows has its metrics here) and at most ``MAX_BYTES`` (oldest runs dropped first), so a
pipeline of thousands of stages, whose material is large, keeps the file quick to read for every report.
The file is replaced atomically at the end of a run, under the run lock, like the snapshot of the state.
A state kept in BOS keeps its history there too, as ``<key>.history.jsonl`` beside the state object
(``StateFile.history_store``, set by runner.state.bos_backend): the state's working copy is temporary, and
CI's ``qfrun diff`` must see the runs that the merges to main made.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.errors import StateError
from runner.state.file import MAX_RUNS, StateFile, atomic_write, companion

MAX_ENTRIES = MAX_RUNS
# About 750 bytes a stage (the quickstart's 6 stages: 4.5 KB a run), so all 50 runs of a pipeline up to ~100
# stages; a 2,000-stage pipeline keeps its last two or three, which is all ``qfrun diff`` needs.
MAX_BYTES = 4 * 2**20
SUFFIX = ".history.jsonl"

Snapshot = dict[str, Any]


def history_path(state_path: Path) -> Path:
    """``x.state.json`` keeps its history in ``x.state.history.jsonl``."""
    return companion(state_path, SUFFIX)


def snapshot(state: StateFile, types: Mapping[str, str]) -> Snapshot:
    """What the state says each stage ended with, in the form the history keeps and ``qfrun diff`` reads.

    ``types`` maps stage ids to stage types (the state does not record them); a stage the pipeline no longer
    has keeps an empty type.
    """
    run = state.runs[-1] if state.runs else None
    stages: dict[str, Any] = {}
    for stage_id, record in state.stages.items():
        last = record.last_success or {}
        stages[stage_id] = {
            "type": types.get(stage_id, ""),
            "status": record.status.value,
            # the fingerprint of what the stage's outputs came from: its last success, else its attempt
            "fingerprint": str(last.get("fingerprint") or record.fingerprint),
            "inputs": last.get("inputs") or {},
            "outputs": record.outputs or last.get("outputs") or {},
            "reason": record.error or record.reason,
        }
    return {
        "run_id": run.run_id if run else "",
        "status": run.status if run else "",
        "finished_at": run.finished_at if run else "",
        "stages": stages,
    }


def load(source: Path | StateFile) -> list[Snapshot]:
    """The runs kept so far, oldest first, of a state (wherever its backend keeps them) or of the state file
    at a path; no history yet is an empty list."""
    store = source.history_store if isinstance(source, StateFile) else None
    if store is not None:
        raw = store.read(MAX_BYTES * 2 + 1)
        return [] if raw is None else _parse(raw, store.where)
    path = history_path(source.path if isinstance(source, StateFile) else source)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise StateError(f"The run history {path} is not a regular file; move it away and re-run.")
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES * 2 + 1)
    except FileNotFoundError:
        return []
    except OSError as error:
        raise StateError(f"The run history {path} cannot be read: {error.strerror}.") from error
    return _parse(raw, path)


def _parse(raw: bytes, path: Path | str) -> list[Snapshot]:
    if len(raw) > MAX_BYTES * 2:
        raise StateError(f"The run history {path} is larger than qfrun writes; move it away and re-run.")
    entries: list[Snapshot] = []
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("stages"), dict):
            raise StateError(
                f"The run history {path} is damaged at line {number}: it is not a run qfrun wrote; "
                "move the file away to start a new history."
            )
        entries.append(entry)
    return entries


def append(state: StateFile, types: Mapping[str, str]) -> Snapshot:
    """Add (or replace, for a resumed run of the same id) the state's latest run; call under the run lock."""
    entry = snapshot(state, types)
    kept = [old for old in load(state) if old.get("run_id") != entry["run_id"]]
    lines = [_encode(old) for old in kept[-(MAX_ENTRIES - 1) :]] + [_encode(entry)]
    size = sum(len(line) for line in lines)
    while len(lines) > 1 and size > MAX_BYTES:  # the newest run stays, whatever its size
        size -= len(lines.pop(0))
    if state.history_store is not None:
        state.history_store.write(b"".join(lines))
    else:
        atomic_write(history_path(state.path), b"".join(lines), sync=state.sync, what="run history")
    return entry


def previous(entries: list[Snapshot], run_id: str) -> Snapshot | None:
    """The newest kept run other than ``run_id`` (the run the state shows now)."""
    return next((entry for entry in reversed(entries) if entry.get("run_id") != run_id), None)


def _encode(entry: Snapshot) -> bytes:
    try:
        return (json.dumps(entry, separators=(",", ":"), ensure_ascii=False, default=str) + "\n").encode()
    except (TypeError, ValueError) as error:
        raise StateError(f"The run history entry cannot be saved as JSON: {error}.") from error
