"""Group commit: records made together share one fsync, and none is reported saved before it is on disk.

``os.fsync`` is wrapped so that each call captures what the file holds at that moment: the bytes a power loss
would leave (what the kernel had not synced is gone). Tests then rebuild the state from those bytes alone.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runner.pipeline.spec import load_pipeline
from runner.platform.protocol import TaskRequest
from runner.state.file import StageRecord, StageStatus, StateFile
from runner.state.io import companion
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import run, state_path, write


@dataclass
class Disk:
    """What each file (by inode) held at its last fsync, and how many fsyncs each got."""

    durable: dict[int, bytes] = field(default_factory=dict)
    syncs: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate: threading.Event = field(default_factory=threading.Event)  # cleared: fsync waits (a slow disk)

    def survives(self, path: Path) -> bytes:
        """The bytes of ``path`` that a power loss now would keep."""
        return self.durable.get(os.stat(path).st_ino, b"")

    def syncs_of(self, path: Path) -> int:
        return self.syncs.get(os.stat(path).st_ino, 0)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    disk = Disk()
    disk.gate.set()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        # What the file holds when fsync is called is what it makes durable, however long the disk takes.
        content = Path(f"/proc/self/fd/{fd}").read_bytes() if os.path.isfile(f"/proc/self/fd/{fd}") else b""
        inode = os.fstat(fd).st_ino
        real_fsync(fd)
        assert disk.gate.wait(30)
        with disk.lock:
            disk.durable[inode] = content
            disk.syncs[inode] = disk.syncs.get(inode, 0) + 1

    monkeypatch.setattr(os, "fsync", fsync)
    return disk


pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to read an fd's file")


def record_for(index: int) -> StageRecord:
    return StageRecord(fingerprint=f"fp-{index}", status=StageStatus.SUCCEEDED, attempt=1)


def test_records_made_while_an_fsync_runs_share_the_next_one_and_none_returns_before_it(
    tmp_path: Path, disk: Disk
) -> None:
    state = StateFile.load(tmp_path / "s.json", "p")
    state.record("first", record_for(0))  # opens the journal (its first write is a compaction)
    before = disk.syncs_of(state.journal_path)
    disk.gate.clear()  # the next fsync hangs until every writer has written its line
    writers = 8
    late: list[str] = []

    def writer(n: int) -> None:
        stage = f"w{n}"
        state.record(stage, record_for(n))
        if f'"stage":"{stage}"'.encode() not in disk.survives(state.journal_path):
            late.append(stage)

    pool = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in pool:
        thread.start()
    deadline = time.monotonic() + 30
    while state.journal_path.read_bytes().count(b'"stage":"w') < writers and time.monotonic() < deadline:
        time.sleep(0.001)
    disk.gate.set()
    for thread in pool:
        thread.join()
    assert late == []  # no record() returned before its line was fsync'd
    # The first writer's fsync, then one for the seven that wrote while it ran (one each would be eight).
    assert disk.syncs_of(state.journal_path) - before == 2
    state.close()
    assert len(StateFile.load(tmp_path / "s.json", "p").stages) == 1 + writers


def test_a_batch_makes_its_records_durable_with_one_fsync_at_its_end(tmp_path: Path, disk: Disk) -> None:
    state = StateFile.load(tmp_path / "s.json", "p")
    state.record("first", record_for(0))
    before = disk.syncs_of(state.journal_path)
    with state.batch():
        for n in range(50):
            state.record(f"s{n}", record_for(n))
        assert b'"stage":"s49"' not in disk.survives(state.journal_path)  # written, not yet synced
        assert b'"stage":"s49"' in state.journal_path.read_bytes()  # a killed qfrun would keep it
    assert disk.syncs_of(state.journal_path) == before + 1
    assert b'"stage":"s49"' in disk.survives(state.journal_path)
    state.close()


def test_a_batch_left_by_an_error_still_commits_and_lets_the_error_through(
    tmp_path: Path, disk: Disk
) -> None:
    state = StateFile.load(tmp_path / "s.json", "p")
    state.record("first", record_for(0))

    def interrupted_batch() -> None:
        with state.batch():
            state.record("inside", record_for(1))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_batch()
    assert b'"stage":"inside"' in disk.survives(state.journal_path)
    state.close()


def test_an_empty_batch_costs_no_fsync(tmp_path: Path, disk: Disk) -> None:
    state = StateFile.load(tmp_path / "s.json", "p")
    state.record("first", record_for(0))
    before = disk.syncs_of(state.journal_path)
    with state.batch():
        pass
    assert disk.syncs_of(state.journal_path) == before
    state.close()


def test_a_power_loss_at_any_create_keeps_its_intent_and_the_end_of_every_stage_it_depends_on(
    tmp_path: Path, disk: Disk
) -> None:
    path = write(tmp_path)
    pipeline = load_pipeline(path)
    snapshot = state_path(pipeline)
    journal = companion(snapshot, ".journal")
    checked: list[str] = []
    problems: list[str] = []

    def power_loss(request: TaskRequest) -> None:
        # What a machine that lost power at this create would find on restart: the snapshot (always
        # replaced atomically and fsync'd) and the journal up to its last fsync.
        lost = Path(tempfile.mkdtemp(dir=tmp_path))  # creates run on worker threads, maybe together
        (lost / "s.json").write_bytes(snapshot.read_bytes())
        (lost / "s.journal").write_bytes(disk.survives(journal))
        survived = StateFile.load(lost / "s.json", pipeline.name)
        stage_id = next(s for s, r in survived.stages.items() if (r.intent or {}).get("name") == request.name)
        checked.append(stage_id)
        for upstream in pipeline.graph.predecessors(stage_id):
            record = survived.stages.get(upstream)
            if record is None or record.status is not StageStatus.SUCCEEDED:
                problems.append(f"{stage_id} was created while {upstream}'s end was not on disk")

    platform = FakePlatform(on_create=power_loss)
    summary, _, _ = run(path, platform)
    assert not summary.failed
    assert problems == []
    assert len(checked) == len(platform.created) >= 4  # each create found its own intent on disk
