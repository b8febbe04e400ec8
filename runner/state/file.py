"""The state file: what each stage of one pipeline did, kept durable across crashes.

One state is two files, so that saving a transition costs one appended line, not a rewrite of
every stage (which would make a 2,000-stage run quadratic):

* the **snapshot** ``<state>.json``: ``{"qfrun_state": 1, "pipeline", "generation", "updated_at",
  "stages", "runs"}``, format version first, always replaced atomically (temp file, fsync, rename,
  fsync of the folder), so it is never half-written;
* the **journal** ``<state>.journal``: a header ``{"qfrun_journal": 1, "generation": N}``, then one JSON
  line per transition, each written with one ``os.write`` and fsync'd before ``record`` returns; lines
  written together (by worker threads, or in one ``batch()`` of the scheduler) share one fsync.

Loading reads the snapshot and replays the journal when its generation matches; a journal of an older
generation is already folded into the snapshot, and a torn last line is a crash mid-write (the
transition before it is safe). Compaction writes snapshot N+1 *before* journal N+1, so a crash
between the two leaves an old journal that is ignored. Only the holder of ``runner.state.lock.RunLock``
writes; ``load`` alone is read-only and safe for ``plan`` and ``status``.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from runner.errors import StateError
from runner.state.io import HistoryStore, atomic_write, companion, ensure_folder, utc_now
from runner.state.records import RUN_STATUSES, RunRecord, StageRecord, StageStatus

__all__ = [
    "FORMAT",
    "JOURNAL_FORMAT",
    "MAX_RUNS",
    "RUN_STATUSES",
    "RunRecord",
    "StageRecord",
    "StageStatus",
    "StateFile",
    "atomic_write",
    "companion",
    "ensure_folder",
    "utc_now",
]

FORMAT = 1
JOURNAL_FORMAT = 1
MAX_RUNS = 50
_SNAPSHOT_KEYS = frozenset({"qfrun_state", "pipeline", "generation", "updated_at", "stages", "runs"})
_READ_ATTEMPTS = 5
_START_OVER = "it was not written by qfrun or was edited by hand — move it away to start over."


class _JournalAhead(StateError):
    """The journal is of a later generation than the snapshot read just before it."""


def _encode(entry: dict[str, Any], what: str) -> bytes:
    try:
        return (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
    except (TypeError, ValueError) as error:
        raise StateError(f"The record of {what} cannot be saved as JSON: {error}.") from error


MAX_STATE_BYTES = 256 * 2**20  # a 20,000-stage state is a few MiB; anything this large is not a state

# When the journal is folded into a new snapshot. A compaction rewrites every stage and costs four fsyncs
# (snapshot, journal header, the folder after each), so the bound must stay above what one run writes a stage
# (an attempt, its intent, its task, its end: 4-5 lines): at 2 lines a stage, a run of a fresh 2,000-stage
# state compacted 8 times as its stages appeared, a fifth of the run's time (issue 17, P3). Loading replays
# at most 4 lines a stage plus the floor, so it stays proportional to the state; the byte bound keeps a
# journal of large records far below MAX_STATE_BYTES, which loading enforces on the journal too.
COMPACT_LINES_PER_STAGE = 4
COMPACT_LINES_FLOOR = 1000
COMPACT_BYTES = 32 * 2**20


class StateFile:
    """One pipeline's state: snapshot + append-only journal, written only under the run lock."""

    def __init__(self, path: Path, pipeline: str, *, sync: bool = True) -> None:
        self.path = path
        # How messages name the state: its path, or where a remote backend keeps it (``bos:/bucket/key``).
        self.label = str(path)
        self.sync = sync
        self.pipeline = pipeline
        self.journal_path = companion(path, ".journal")
        self.stages: dict[str, StageRecord] = {}
        self.runs: list[RunRecord] = []
        self.generation = 0
        self._journal_lines = 0
        self._journal_bytes = 0
        self._fd: int | None = None
        # The first write that failed (disk full, file too large, read-only folder): nothing more is written
        # after it, so the files keep the state as last saved, never a later line after a torn one.
        self._failed: StateError | None = None
        # Stages finish on worker threads: one writer at a time keeps a line from going to a replaced journal.
        self._mutex = threading.RLock()
        # Group commit: a durable record is written under the mutex, then fsync'd outside it, so that threads
        # finishing together share one fsync (the first to take _sync_lock covers every line written so far)
        # and the one scheduling meanwhile is not held up. _written counts lines written since load,
        # _synced those known to be on disk. Lock order: _mutex, then _sync_lock; never the reverse.
        self._sync_lock = threading.Lock()
        self._written = 0
        self._synced = 0
        # Threads inside ``batch()``: their durable records wait for the batch's one fsync at its end.
        self._batching = threading.local()
        # Called with the whole state after every durable write, under the writers' mutex (so in order):
        # a remote backend publishes the snapshot there (runner.state.backend). A StateError it raises
        # stops all later writes, as a failed disk write does.
        self.on_saved: Callable[[bytes], None] | None = None
        # Where the run history is kept when not beside ``path`` (a remote backend's working copy is
        # temporary, so the history cannot live beside it).
        self.history_store: HistoryStore | None = None

    @classmethod
    def load(cls, path: Path, pipeline: str, *, sync: bool = True) -> StateFile:
        """Read the state (a missing file is an empty state); changes nothing on disk.

        ``sync=False`` writes without fsync: a killed qfrun still loses nothing (the kernel keeps what was
        written), a power loss may lose the last transitions. Each fsync costs ~4 ms on a virtual disk, so
        tests and benchmarks of many stages use it; real runs keep the default.
        """
        attempt = 1
        while True:
            state = cls(path, pipeline, sync=sync)
            state._read_snapshot()
            try:
                state._replay_journal()
            except _JournalAhead as ahead:
                # A writer compacted between our two reads (plan/status read without the lock): read again.
                if attempt == _READ_ATTEMPTS:
                    raise StateError(str(ahead)) from None
                time.sleep(0.005 * attempt)
                attempt += 1
                continue
            return state

    @classmethod
    def from_snapshot(
        cls, data: bytes, path: Path, pipeline: str, *, label: str, sync: bool = True
    ) -> StateFile:
        """A state read from snapshot bytes kept elsewhere (a remote backend), checked as strictly as a
        file; it writes to ``path`` (a working copy) once its holder records anything."""
        state = cls(path, pipeline, sync=sync)
        state.label = label
        if len(data) > MAX_STATE_BYTES:
            raise StateError(
                f"The state {label} is larger than {MAX_STATE_BYTES // 2**20} MiB, which no pipeline's state "
                "reaches; it is not qfrun's, or it is damaged."
            )
        state._parse_snapshot(data)
        return state

    # -- writing -------------------------------------------------------------------------------------

    def record(self, stage_id: str, record: StageRecord, *, durable: bool = True) -> None:
        """Save one stage's new record; it is on disk (fsync'd) when this returns (inside ``batch()``: when
        the batch ends).

        ``durable=False`` is for transitions that promise nothing outside qfrun (progress, ``running``):
        the line is written, so a killed qfrun keeps it, but the fsync (~4 ms on a virtual disk) is left to
        the next durable record, which flushes both. Intent, task and terminal records stay durable.
        Records that threads make at the same time share one fsync (group commit).
        """
        line = _encode({"stage": stage_id, "record": record.to_json()}, f"stage {stage_id!r}")
        with self._mutex:
            self.stages[stage_id] = record
            seq = self._append(line)
        if durable:
            self._commit(seq)

    def record_run(self, run: RunRecord) -> None:
        """Save a run's start or end (replacing the run of the same id); durable when this returns."""
        line = _encode({"run": run.to_json()}, f"run {run.run_id!r}")
        with self._mutex:
            self._put_run(run)
            seq = self._append(line)
        self._commit(seq)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Durable records made by this thread inside the block are on disk when the block ends, with one
        fsync for all of them instead of one each (the executor wraps each scheduling step in it).

        Use it only where nothing outside qfrun depends on a record before the block ends: a platform call
        that must follow a durable intent goes after it.
        """
        if getattr(self._batching, "seq", None) is not None:
            yield  # nested: the outer block commits
            return
        self._batching.seq = 0
        try:
            yield
        except BaseException:
            # Ctrl-C or a failed write inside the block: still make what was recorded durable, but let the
            # block's own error be the one that propagates.
            seq, self._batching.seq = self._batching.seq, None
            with contextlib.suppress(StateError):
                self._commit(seq)
            raise
        seq, self._batching.seq = self._batching.seq, None
        self._commit(seq)

    def compact(self) -> None:
        """Write the whole state as snapshot N+1, then start an empty journal N+1."""
        with self._mutex:
            self._guarded(self._compact)

    def _compact(self) -> None:
        first = self._fd is None
        ensure_folder(self.path.parent)
        if first:
            self._remove_stale_temps()
        generation = self.generation + 1
        atomic_write(self.path, self._snapshot_bytes(generation), sync=self.sync)
        self.generation = generation
        header = {"qfrun_journal": JOURNAL_FORMAT, "generation": generation}
        atomic_write(self.journal_path, _encode(header, "the journal header"), sync=self.sync)
        with self._sync_lock:
            # The snapshot holds every line written so far, on disk: nothing is left for the old journal.
            self._synced = self._written
            self._close_journal()
        try:
            self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
        except OSError as error:
            raise StateError(
                f"The state journal {self.journal_path} cannot be opened: {error.strerror}."
            ) from error
        self._journal_lines = 0
        self._journal_bytes = 0

    def _snapshot_bytes(self, generation: int) -> bytes:
        # One line per stage and per run: readable and diffable, yet encoded by json's fast C encoder
        # (``indent=`` would switch to the pure-Python one, ~5x slower on 2,000 stages).
        head = {
            "qfrun_state": FORMAT,
            "pipeline": self.pipeline,
            "generation": generation,
            "updated_at": utc_now(),
        }
        compact = (",", ":")
        stages = ",".join(
            f"\n  {json.dumps(stage_id)}: {json.dumps(record.to_json(), separators=compact)}"
            for stage_id, record in self.stages.items()
        )
        runs = ",".join(f"\n  {json.dumps(run.to_json(), separators=compact)}" for run in self.runs)
        text = f'{json.dumps(head)[:-1]},\n "stages": {{{stages}\n }},\n "runs": [{runs}\n ]\n}}\n'
        return text.encode("utf-8")

    def close(self) -> None:
        """Fold the journal into the snapshot and let go of the journal; call it under the lock.

        After a failed write it only lets go: the files already hold the state as last saved.
        """
        with self._mutex:
            try:
                if self._failed is None:
                    self._compact()
                    self._publish()
            finally:
                with self._sync_lock:
                    self._close_journal()

    def _guarded(self, write: Callable[[], None]) -> None:
        """Run one write; once one failed, every later write raises its error again and touches nothing."""
        if self._failed is not None:
            raise self._failed
        try:
            write()
        except StateError as error:
            self._failed = error
            raise

    def _append(self, line: bytes) -> int:
        """Write one line (call under the mutex); its number, for ``_commit``."""
        self._guarded(lambda: self._write(line))
        return self._written

    def _commit(self, seq: int) -> None:
        """Return once line ``seq`` is on disk, then publish the state (group commit; see ``__init__``)."""
        if not seq:
            return  # nothing was recorded
        pending = getattr(self._batching, "seq", None)
        if pending is not None:
            self._batching.seq = max(pending, seq)
            return
        with self._sync_lock:
            if self._synced < seq:
                # Every line counted in _written is in the current journal (a compaction, which replaces
                # the journal, first marks all of them synced under this lock), so one fsync covers them.
                covered = self._written
                if self.sync and self._fd is not None:
                    self._guarded(self._fsync)
                self._synced = max(self._synced, covered)
        if self.on_saved is not None:
            with self._mutex:
                self._publish()

    def _fsync(self) -> None:
        assert self._fd is not None
        try:
            os.fsync(self._fd)
        except OSError as error:
            raise StateError(
                f"The state journal {self.journal_path} cannot be written: {error.strerror or error}; qfrun "
                "stopped with the state as last saved, and re-running the same command resumes from there."
            ) from error

    def snapshot(self) -> bytes:
        """The whole state as one snapshot (journal folded in): what ``qfrun state pull`` prints and what a
        remote backend stores."""
        with self._mutex:
            return self._snapshot_bytes(self.generation)

    def _publish(self) -> None:
        hook = self.on_saved
        if hook is not None:
            self._guarded(lambda: hook(self._snapshot_bytes(self.generation)))

    def _write(self, line: bytes) -> None:
        if self._fd is None:
            # First write of this session: a fresh journal of a new generation, so that no line is ever
            # appended after a torn tail or to a journal of an older generation. The change is in it.
            self._written += 1
            self._compact()
            return
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as error:
            raise StateError(
                f"The state journal {self.journal_path} cannot be written: {error.strerror or error}; qfrun "
                "stopped with the state as last saved, and re-running the same command resumes from there."
            ) from error
        self._written += 1
        self._journal_lines += 1
        self._journal_bytes += len(line)
        if (
            self._journal_lines > COMPACT_LINES_PER_STAGE * len(self.stages) + COMPACT_LINES_FLOOR
            or self._journal_bytes > COMPACT_BYTES
        ):
            self._compact()

    def _close_journal(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _remove_stale_temps(self) -> None:
        # Temp files of a writer killed mid-write; only the lock holder gets here, so none is in use.
        for target in (self.path, self.journal_path):
            for stale in self.path.parent.glob(f".{target.name}.*.tmp"):
                with contextlib.suppress(OSError):
                    stale.unlink()

    def _put_run(self, run: RunRecord) -> None:
        for index, known in enumerate(self.runs):
            if known.run_id == run.run_id:
                self.runs[index] = run
                return
        self.runs.append(run)
        del self.runs[:-MAX_RUNS]

    # -- reading -------------------------------------------------------------------------------------

    def _damaged(self, where: Path | str, detail: str) -> StateError:
        return StateError(f"The state file {where} is damaged: {detail} I{_START_OVER[1:]}")

    def _read_bytes(self, path: Path) -> bytes | None:
        """The file's bytes, read only if it is a regular file within ``MAX_STATE_BYTES`` (a state file
        swapped for a FIFO, a device or a huge file must not hang qfrun or exhaust its memory)."""
        try:
            # Looked at before it is opened: opening a FIFO for reading would wait for a writer forever.
            if not stat.S_ISREG(path.stat().st_mode):
                raise StateError(f"The state file {path} is not a regular file; move it away and re-run.")
            with path.open("rb") as handle:
                data = handle.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StateError(f"The state file {path} cannot be read: {error.strerror}.") from error
        if len(data) > MAX_STATE_BYTES:
            raise StateError(
                f"The state file {path} is larger than {MAX_STATE_BYTES // 2**20} MiB, which no pipeline's "
                "state reaches; it is not qfrun's, or it is damaged."
            )
        return data

    def _read_snapshot(self) -> None:
        raw = self._read_bytes(self.path)
        if raw is not None:
            self._parse_snapshot(raw)

    def _parse_snapshot(self, raw: bytes) -> None:
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise StateError(f"The state file {self.label} is not UTF-8 text; {_START_OVER}") from None
        except json.JSONDecodeError as error:
            raise StateError(
                f"The state file {self.label} is not valid JSON (line {error.lineno}, column {error.colno}); "
                f"{_START_OVER}"
            ) from None
        except RecursionError:
            raise StateError(
                f"The state file {self.label} is nested too deeply to be read; {_START_OVER}"
            ) from None
        if not isinstance(data, dict):
            raise StateError(f"The state file {self.label} does not hold a JSON object; {_START_OVER}")
        self._check_version(data.get("qfrun_state"), "qfrun_state", FORMAT, self.label)
        if data.get("pipeline") != self.pipeline:
            raise StateError(
                f"The state file {self.label} belongs to pipeline {data.get('pipeline')!r}, "
                f"not {self.pipeline!r}; "
                "give each pipeline its own --state, or move the file away to start over."
            )
        unknown = sorted(set(data) - _SNAPSHOT_KEYS)
        if unknown:
            raise self._damaged(self.label, f"it has an unknown key {unknown[0]!r}.")
        try:
            self.generation = _non_negative_int(data.get("generation"), "generation")
            stages = data.get("stages", {})
            if not isinstance(stages, dict):
                raise StateError("stages should be an object.")
            self.stages = {
                sid: StageRecord.from_json(rec, where=f"stages.{sid}") for sid, rec in stages.items()
            }
            runs = data.get("runs", [])
            if not isinstance(runs, list):
                raise StateError("runs should be a list.")
            for index, run in enumerate(runs):
                self._put_run(RunRecord.from_json(run, where=f"runs[{index}]"))
        except StateError as error:
            raise self._damaged(self.label, str(error)) from None

    def _check_version(self, version: Any, key: str, supported: int, path: Path | str) -> None:
        if version is None:
            raise StateError(f"The state file {path} has no {key} format version; {_START_OVER}")
        if type(version) is not int or version < 1:
            raise StateError(
                f"The state file {path} has an unknown {key} format version {version!r}; {_START_OVER}"
            )
        if version > supported:
            raise StateError(
                f"The state file {path} was written by a newer qfrun (format {version}); this qfrun reads "
                f"format {supported} — upgrade qfrun, or move the file away to start over."
            )

    def _replay_journal(self) -> None:
        raw = self._read_bytes(self.journal_path)
        if not raw:
            return
        *complete, tail = raw.split(b"\n")
        if not complete:
            return  # a torn header: nothing in it was ever acknowledged
        header = _parse_line(complete[0])
        if not isinstance(header, dict):
            raise self._damaged(self.journal_path, "its first line is not a qfrun journal header.")
        self._check_version(header.get("qfrun_journal"), "qfrun_journal", JOURNAL_FORMAT, self.journal_path)
        generation = header.get("generation")
        if type(generation) is not int:
            raise self._damaged(self.journal_path, "its header has no generation number.")
        if generation < self.generation:
            return  # compaction wrote its snapshot but not the fresh journal: all of this is in the snapshot
        if generation > self.generation:
            raise _JournalAhead(
                f"The state journal {self.journal_path} (generation {generation}) is newer than its snapshot "
                f"{self.path} (generation {self.generation}); the snapshot was replaced by hand — move both "
                "away to start over."
            )
        self._replay(complete[1:], torn=bool(tail))

    def _replay(self, lines: Iterable[bytes], *, torn: bool) -> None:
        entries = list(lines)
        for index, line in enumerate(entries):
            number = index + 2
            entry = _parse_line(line)
            if entry is None:
                if index == len(entries) - 1 and not torn:
                    break  # an unreadable last line is a crash mid-write: the transitions before it are safe
                raise self._damaged(self.journal_path, f"line {number} is not valid JSON.")
            try:
                self._apply(entry)
            except StateError as error:
                raise self._damaged(self.journal_path, f"line {number}: {error}") from None
            self._journal_lines += 1
            self._journal_bytes += len(line) + 1

    def _apply(self, entry: Any) -> None:
        if isinstance(entry, dict) and set(entry) == {"stage", "record"} and isinstance(entry["stage"], str):
            stage_id = entry["stage"]
            self.stages[stage_id] = StageRecord.from_json(entry["record"], where=f"stages.{stage_id}")
        elif isinstance(entry, dict) and set(entry) == {"run"}:
            self._put_run(RunRecord.from_json(entry["run"], where="run"))
        else:
            raise StateError("the entry is neither a stage transition nor a run.")


def _parse_line(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def _non_negative_int(value: Any, where: str) -> int:
    if type(value) is not int or value < 0:
        raise StateError(f"{where} should be a whole number of at least 0, not {value!r}.")
    return value
