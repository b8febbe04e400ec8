"""The state file: snapshot + journal round trips, corruption is reported, crashes never lose a prefix."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import signal
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import IO, Any

import jsonschema
import pytest

from runner.errors import StateError
from runner.state.file import (
    COMPACT_LINES_FLOOR,
    COMPACT_LINES_PER_STAGE,
    FORMAT,
    MAX_RUNS,
    RunRecord,
    StageRecord,
    StageStatus,
    StateFile,
    companion,
    utc_now,
)
from runner.testing.forking import forking_driver

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / ".qfrun" / "demo.state.json"


def _record(index: int, status: StageStatus = StageStatus.SUCCEEDED) -> StageRecord:
    return StageRecord(
        status=status,
        fingerprint=f"fp{index}",
        run_id="r1",
        attempt=1,
        intent={"kind": "infer", "name": f"qfrun-demo-s{index}-abc"},
        task={"kind": "infer", "task_id": f"task-{index}", "name": f"qfrun-demo-s{index}-abc"},
        rows_done=index,
        rows_total=100,
        outputs={"metrics": {"accuracy": 0.5 + index / 1000}, "path": f"out/{index}"},
        started_at=utc_now(),
        finished_at=utc_now(),
        last_success={"fingerprint": f"fp{index}", "outputs": {}, "run_id": "r0", "finished_at": utc_now()},
    )


def _snapshot(state_path: Path) -> dict[str, Any]:
    data = json.loads(state_path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _schema() -> dict[str, Any]:
    schema = json.loads((REPO / "schemas" / "state.schema.json").read_text(encoding="utf-8"))
    assert isinstance(schema, dict)
    return schema


def test_missing_state_file_loads_as_an_empty_state_and_writes_nothing(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo")
    assert state.stages == {}
    assert state.runs == []
    assert not state_path.parent.exists()


def test_terminal_statuses_are_succeeded_failed_and_skipped() -> None:
    assert {s for s in StageStatus if s.terminal} == {
        StageStatus.SUCCEEDED,
        StageStatus.FAILED,
        StageStatus.SKIPPED,
    }


def test_stage_record_round_trips_through_json() -> None:
    record = _record(7)
    assert StageRecord.from_json(json.loads(json.dumps(record.to_json())), where="stages.s7") == record
    assert StageRecord.from_json({"status": "pending"}, where="stages.x") == StageRecord()


def test_records_are_readable_by_another_reader_before_close(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo")
    state.record_run(RunRecord(run_id="r1", started_at=utc_now(), command="qfrun run demo.yaml"))
    for index in range(10):
        state.record(f"s{index}", _record(index, StageStatus.SUBMITTED))
    state.record("s3", _record(3, StageStatus.FAILED))

    seen = StateFile.load(state_path, "demo")
    assert seen.stages == state.stages
    assert seen.stages["s3"].status is StageStatus.FAILED
    assert [run.run_id for run in seen.runs] == ["r1"]


def test_close_folds_the_journal_into_a_snapshot_with_the_version_first(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo")
    for index in range(5):
        state.record(f"s{index}", _record(index))
    state.close()

    snapshot = _snapshot(state_path)
    assert next(iter(snapshot)) == "qfrun_state"
    assert snapshot["qfrun_state"] == FORMAT
    assert snapshot["generation"] == state.generation
    assert set(snapshot["stages"]) == {f"s{index}" for index in range(5)}
    journal = companion(state_path, ".journal").read_text(encoding="utf-8").splitlines()
    assert journal == [
        json.dumps({"qfrun_journal": 1, "generation": state.generation}, separators=(",", ":"))
    ]
    assert StateFile.load(state_path, "demo").stages == state.stages


def test_each_session_starts_a_new_generation(state_path: Path) -> None:
    generations = []
    for run in range(3):
        state = StateFile.load(state_path, "demo")
        state.record("a", _record(run))
        state.close()
        generations.append(state.generation)
    assert generations == sorted(set(generations))
    assert StateFile.load(state_path, "demo").stages["a"].fingerprint == "fp2"


def test_a_journal_of_an_older_generation_is_ignored(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo")
    state.record("a", _record(1))
    journal = companion(state_path, ".journal")
    journal.write_bytes(journal.read_bytes())
    with journal.open("ab") as handle:  # a transition that the next snapshot already contains
        handle.write(json.dumps({"stage": "a", "record": _record(1).to_json()}).encode() + b"\n")
    stale = journal.read_bytes()
    state.record("a", _record(2))
    state.compact()  # snapshot N+1 holds fp2
    journal.write_bytes(stale)  # a crash between snapshot N+1 and journal N+1 leaves journal N

    assert StateFile.load(state_path, "demo").stages["a"].fingerprint == "fp2"


def test_a_torn_last_journal_line_is_ignored_and_the_next_session_appends_cleanly(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo")
    state.record("a", _record(1))
    state.record("b", _record(2))
    journal = companion(state_path, ".journal")
    line = json.dumps({"stage": "c", "record": _record(3).to_json()}).encode()
    with journal.open("ab") as handle:
        handle.write(line[: len(line) // 2])  # SIGKILL in the middle of a write

    resumed = StateFile.load(state_path, "demo")
    assert set(resumed.stages) == {"a", "b"}
    resumed.record("d", _record(4))
    resumed.record("e", _record(5))
    assert set(StateFile.load(state_path, "demo").stages) == {"a", "b", "d", "e"}


def test_a_journal_newer_than_its_snapshot_is_refused(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo")
    state.record("a", _record(1))
    state.close()
    companion(state_path, ".journal").write_text('{"qfrun_journal":1,"generation":99}\n', encoding="utf-8")
    with pytest.raises(StateError, match=r"\(generation 99\) is newer than its snapshot") as caught:
        StateFile.load(state_path, "demo")
    assert type(caught.value) is StateError


def test_a_reader_without_the_lock_always_loads_while_a_writer_compacts(state_path: Path) -> None:
    writer = StateFile.load(state_path, "demo", sync=False)
    writer.record("a", _record(0))
    stop = threading.Event()

    def write() -> None:
        index = 1
        while not stop.is_set():
            writer.record(f"s{index % 5}", _record(index))
            if index % 3 == 0:
                writer.compact()
            index += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        for _ in range(300):
            assert "a" in StateFile.load(state_path, "demo").stages
    finally:
        stop.set()
        thread.join()


def test_records_from_many_threads_are_all_saved(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo", sync=False)

    def work(worker: int) -> None:
        for index in range(150):  # 4 workers x 150 lines on 4 stages: compaction runs while others write
            state.record(f"w{worker}", _record(index))

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {sid: rec.fingerprint for sid, rec in StateFile.load(state_path, "demo").stages.items()} == {
        f"w{worker}": "fp149" for worker in range(4)
    }


def test_an_invalid_journal_line_in_the_middle_is_reported_with_its_line(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo")
    state.record("a", _record(1))
    state.record("b", _record(2))
    journal = companion(state_path, ".journal")
    with journal.open("ab") as handle:
        handle.write(b"{garbage\n")
        handle.write(json.dumps({"stage": "c", "record": _record(3).to_json()}).encode() + b"\n")

    with pytest.raises(
        StateError, match=r"demo\.state\.journal is damaged: line 3 is not valid JSON\. It was not written"
    ):
        StateFile.load(state_path, "demo")


def test_a_snapshot_that_is_not_json_is_reported_with_line_and_column(state_path: Path) -> None:
    state_path.parent.mkdir(parents=True)
    state_path.write_text('{\n  "qfrun_state": 1,\n    oops\n}\n', encoding="utf-8")
    with pytest.raises(StateError) as caught:
        StateFile.load(state_path, "demo")
    message = str(caught.value)
    assert str(state_path) in message
    assert "is not valid JSON (line 3, column 5)" in message
    assert "move it away to start over" in message
    assert caught.value.exit_code == 4


def test_a_newer_format_names_both_versions(state_path: Path) -> None:
    state_path.parent.mkdir(parents=True)
    state_path.write_text(json.dumps({"qfrun_state": 2, "pipeline": "demo"}), encoding="utf-8")
    with pytest.raises(
        StateError, match=r"was written by a newer qfrun \(format 2\); this qfrun reads format 1"
    ):
        StateFile.load(state_path, "demo")


def test_a_snapshot_without_a_format_version_is_refused(state_path: Path) -> None:
    state_path.parent.mkdir(parents=True)
    state_path.write_text(json.dumps({"pipeline": "demo", "stages": {}}), encoding="utf-8")
    with pytest.raises(StateError, match="has no qfrun_state format version"):
        StateFile.load(state_path, "demo")


def test_a_state_of_another_pipeline_is_refused(state_path: Path) -> None:
    state = StateFile.load(state_path, "other")
    state.record("a", _record(1))
    state.close()
    with pytest.raises(StateError, match="belongs to pipeline 'other', not 'demo'"):
        StateFile.load(state_path, "demo")


@pytest.mark.parametrize(
    ("key", "value", "where"),
    [
        ("status", "done", "stages.s1.status should be one of pending"),
        ("attempt", "1", "stages.s1.attempt should be a whole number"),
        ("attempt", True, "stages.s1.attempt should be a whole number"),
        ("task", {"task_id": 5}, "stages.s1.task.task_id should be a string"),
        ("outputs", [], "stages.s1.outputs should be an object"),
        ("rows_done", -1, "stages.s1.rows_done should be a whole number"),
        ("surprise", 1, "stages.s1.surprise is not a key this qfrun knows"),
    ],
)
def test_a_record_with_a_wrong_type_names_the_key(
    state_path: Path, key: str, value: object, where: str
) -> None:
    state = StateFile.load(state_path, "demo")
    state.record("s1", _record(1))
    state.close()
    snapshot = _snapshot(state_path)
    snapshot["stages"]["s1"][key] = value
    state_path.write_text(json.dumps(snapshot), encoding="utf-8")

    with pytest.raises(StateError) as caught:
        StateFile.load(state_path, "demo")
    assert where in str(caught.value)
    assert str(state_path) in str(caught.value)


_HEAD = '"qfrun_state": 1, "pipeline": "demo", "generation": 1'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "does not hold a JSON object"),
        ('{"qfrun_state": "1", "pipeline": "demo"}', "unknown qfrun_state format version '1'"),
        ("{" + _HEAD + ', "extra": 1}', "it has an unknown key 'extra'"),
        ("{" + _HEAD + ', "stages": []}', "stages should be an object"),
        ("{" + _HEAD + ', "runs": {}}', "runs should be a list"),
        ("{" + _HEAD + ', "runs": [{"run_id": "r", "started_at": "", "status": "done"}]}', "runs[0].status"),
        ("{" + _HEAD + ', "runs": [{"run_id": "r", "started_at": "", "selected": "a"}]}', "runs[0].selected"),
        ('{"qfrun_state": 1, "pipeline": "demo", "generation": -1}', "generation should be a whole number"),
        ("[" * 100_000 + "]" * 100_000, "is nested too deeply"),
    ],
)
def test_a_damaged_snapshot_says_what_is_wrong(state_path: Path, content: str, message: str) -> None:
    state_path.parent.mkdir(parents=True)
    state_path.write_text(content, encoding="utf-8")
    with pytest.raises(StateError) as caught:
        StateFile.load(state_path, "demo")
    assert message in str(caught.value)
    assert str(caught.value).endswith("start over.")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"not a header\n", "its first line is not a qfrun journal header"),
        (b'{"qfrun_journal": 2, "generation": 1}\n', "was written by a newer qfrun (format 2)"),
        (b'{"qfrun_journal": 1}\n', "its header has no generation number"),
    ],
)
def test_a_damaged_journal_header_says_what_is_wrong(state_path: Path, header: bytes, message: str) -> None:
    state = StateFile.load(state_path, "demo")
    state.record("a", _record(1))
    state.close()
    companion(state_path, ".journal").write_bytes(header)
    with pytest.raises(StateError, match=re.escape(message)):
        StateFile.load(state_path, "demo")


def test_a_journal_entry_of_an_unknown_shape_is_reported_with_its_line(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo")
    state.record("a", _record(1))
    state.record("b", _record(2))
    with companion(state_path, ".journal").open("ab") as handle:
        handle.write(b'{"stage": "c"}\n{"run": {"run_id": "r", "started_at": ""}}\n')
    with pytest.raises(StateError, match="line 3: the entry is neither a stage transition nor a run"):
        StateFile.load(state_path, "demo")


def test_a_corrupt_snapshot_is_never_dropped_or_overwritten(state_path: Path) -> None:
    state_path.parent.mkdir(parents=True)
    state_path.write_bytes(b"\xff\xfe not json")
    with pytest.raises(StateError, match="is not UTF-8 text"):
        StateFile.load(state_path, "demo")
    assert state_path.read_bytes() == b"\xff\xfe not json"


def test_only_the_last_fifty_runs_are_kept_and_a_run_is_updated_in_place(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo")
    for index in range(MAX_RUNS + 5):
        state.record_run(RunRecord(run_id=f"r{index}", started_at=utc_now()))
    last = f"r{MAX_RUNS + 4}"
    state.record_run(RunRecord(run_id=last, started_at=utc_now(), finished_at=utc_now(), status="succeeded"))

    for seen in (state, StateFile.load(state_path, "demo")):
        assert len(seen.runs) == MAX_RUNS
        assert seen.runs[0].run_id == "r5"
        assert seen.runs[-1].run_id == last
        assert seen.runs[-1].status == "succeeded"


def test_the_journal_is_compacted_when_it_outgrows_the_stages(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo", sync=False)
    state.record("a", _record(0))
    start = state.generation
    bound = COMPACT_LINES_PER_STAGE * 1 + COMPACT_LINES_FLOOR  # 1 stage
    for index in range(2 * bound + 10):
        state.record("a", _record(index))
    assert state.generation == start + 2
    lines = companion(state_path, ".journal").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= bound + 1
    assert StateFile.load(state_path, "demo").stages["a"].fingerprint == f"fp{2 * bound + 9}"


def test_a_run_of_a_fresh_state_is_not_compacted_again_as_its_stages_appear(state_path: Path) -> None:
    # A run writes ~4-5 lines a stage (attempt, intent, task, end); each compaction rewrites every stage
    # and costs four fsyncs, so the stages appearing one after another must not trigger one each time.
    state = StateFile.load(state_path, "demo", sync=False)
    state.record("s0", _record(0))  # the first write starts a new generation
    start = state.generation
    for index in range(400):
        for step in range(5):
            state.record(f"s{index}", _record(step))
    assert state.generation == start
    assert len(StateFile.load(state_path, "demo").stages) == 400


def test_a_journal_of_large_records_is_compacted_by_its_size(
    state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("runner.state.file.COMPACT_BYTES", 20_000)
    big = dataclasses.replace(_record(0), outputs={"text": "x" * 2_000})
    state = StateFile.load(state_path, "demo", sync=False)
    state.record("a", big)  # the first write starts a new generation
    start = state.generation
    line = len(companion(state_path, ".journal").read_bytes())  # the header
    state.record("a", big)
    line = len(companion(state_path, ".journal").read_bytes()) - line
    for _ in range(20_000 // line - 1):  # up to 20 KB
        state.record("a", big)
    assert state.generation == start
    state.record("a", big)  # past 20 KB: compacted, far below the bound in lines
    assert state.generation == start + 1
    assert StateFile.load(state_path, "demo").stages["a"] == big


def test_writes_leave_no_temp_files_behind(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo")
    state_path.parent.mkdir(parents=True, exist_ok=True)
    (state_path.parent / f".{state_path.name}.dead.tmp").write_text(
        "left by a killed writer", encoding="utf-8"
    )
    for index in range(20):
        state.record(f"s{index}", _record(index))
    state.close()
    assert sorted(path.name for path in state_path.parent.iterdir()) == [
        "demo.state.journal",
        "demo.state.json",
    ]


def test_an_unserialisable_output_is_refused_without_changing_the_state(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo")
    state.record("a", _record(1))
    bad = dataclasses.replace(_record(2), outputs={"when": object()})
    with pytest.raises(StateError, match="The record of stage 'a' cannot be saved as JSON"):
        state.record("a", bad)
    assert state.stages["a"].fingerprint == "fp1"


def test_without_sync_the_state_round_trips_the_same(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo", sync=False)
    for index in range(300):
        state.record(f"s{index % 7}", _record(index))
    assert StateFile.load(state_path, "demo").stages == state.stages
    state.close()
    assert StateFile.load(state_path, "demo").stages == state.stages


def test_the_snapshot_has_one_line_per_stage(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo")
    for index in range(3):
        state.record(f"s{index}", _record(index))
    state.close()
    lines = state_path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith('{"qfrun_state": 1, "pipeline": "demo", ')
    assert [line.split(":")[0].strip() for line in lines[2:5]] == ['"s0"', '"s1"', '"s2"']


def test_only_durable_records_wait_for_fsync(state_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = StateFile.load(state_path, "demo")
    state.record("a", _record(0))  # the first write compacts: a new snapshot and journal
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    state.record("a", _record(1, StageStatus.RUNNING), durable=False)
    assert synced == []
    state.record("a", _record(2))
    assert len(synced) == 1
    assert StateFile.load(state_path, "demo").stages["a"].fingerprint == "fp2"


def test_snapshots_validate_against_the_state_schema(state_path: Path) -> None:
    state = StateFile.load(state_path, "demo")
    state.record_run(RunRecord(run_id="r1", started_at=utc_now(), command="qfrun run x", selected=["a"]))
    state.record("a", _record(1))
    state.record("b", StageRecord())
    state.record("c", StageRecord(status=StageStatus.SKIPPED, reason="the gate `if: false` is false"))
    state.close()
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(_snapshot(state_path))


def test_the_state_schema_describes_every_field_of_the_records() -> None:
    defs = _schema()["$defs"]
    assert set(defs["stage"]["properties"]) == {f.name for f in dataclasses.fields(StageRecord)}
    assert set(defs["run"]["properties"]) == {f.name for f in dataclasses.fields(RunRecord)}


def test_the_state_schema_ships_in_the_package() -> None:
    try:
        text = resources.files("runner.schemas").joinpath("state.schema.json").read_text(encoding="utf-8")
    except ModuleNotFoundError:
        pytest.skip("runner.schemas is mapped only in an installed wheel")
    assert json.loads(text)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


# -- crash safety ----------------------------------------------------------------------------------


def _expected_prefix(last: int, stages: int) -> dict[str, int]:
    return {f"s{seq % stages}": seq for seq in range(last + 1)}


@dataclasses.dataclass
class Writers:
    """State writers (runner.testing.state_writer), each a child forked from one driver process that imported
    qfrun's state module once: a fresh process to the writer, for the test to kill with SIGKILL."""

    requests: IO[str]
    answers: IO[str]
    running: int | None = None

    def start(self, path: Path, stages: int, sync: str, acks: Path) -> tuple[int, IO[bytes]]:
        """A writer recording into ``path``: its pid, and its acknowledgements (``acks``, a named pipe)."""
        os.mkfifo(acks)
        request = {"path": str(path), "stages": stages, "sync": sync == "sync", "acks": str(acks)}
        self.requests.write(json.dumps(request) + "\n")
        self.requests.flush()
        self.running = json.loads(self.answers.readline())["pid"]
        return self.running, acks.open("rb")  # the open meets the child's open of the pipe for writing

    def ended(self) -> int:
        """Waits until the driver has reaped the writer; its return code as ``subprocess`` gives it."""
        returncode: int = json.loads(self.answers.readline())["returncode"]
        self.running = None
        return returncode


@pytest.fixture
def writers() -> Iterator[Writers]:
    with forking_driver("runner.testing.state_writer") as (requests, answers):
        started = Writers(requests, answers)
        try:
            yield started
        finally:
            if started.running is not None:  # a test that failed before its kill
                os.kill(started.running, signal.SIGKILL)
                started.ended()


@pytest.mark.slow
@pytest.mark.parametrize("sync", ["sync", "nosync"])
def test_the_state_always_loads_a_prefix_of_the_transitions_after_sigkill(
    tmp_path: Path, sync: str, writers: Writers
) -> None:
    path = tmp_path / ".qfrun" / "crash.state.json"
    stages = 25  # few, and the writer compacts every 37 lines, so that compaction is hit often as well
    rng = random.Random(20261125)
    for number in range(20):
        pid, acks = writers.start(path, stages, sync, tmp_path / f"acks-{number}")
        with acks:
            assert acks.readline() == b"ready\n"
            time.sleep(rng.uniform(0.0, 0.3))
            os.kill(pid, signal.SIGKILL)
            acknowledged = [int(line) for line in acks.read().split()]  # to the end: the writer is gone
        assert writers.ended() == -signal.SIGKILL

        state = StateFile.load(path, "crash")
        seen = {stage_id: record.attempt for stage_id, record in state.stages.items()}
        last = max(seen.values(), default=-1)
        assert last >= (acknowledged[-1] if acknowledged else -1), "an acknowledged transition was lost"
        assert seen == _expected_prefix(last, stages), "the state is not a prefix of the transitions"
    assert last > 0


def test_a_state_file_that_is_a_fifo_or_too_large_is_refused_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "demo.state.json"
    os.mkfifo(path)  # opening it for reading would block forever without the check
    with pytest.raises(StateError, match="is not a regular file"):
        StateFile.load(path, "demo")
    path.unlink()
    monkeypatch.setattr("runner.state.file.MAX_STATE_BYTES", 1024)
    path.write_bytes(b" " * 2048)
    with pytest.raises(StateError, match="is larger than"):
        StateFile.load(path, "demo")
