"""A state file changed by hand, a bad merge or a broken disk: a valid snapshot and journal with one value
replaced, one key removed or added, or bytes cut off, is read whole or refused with a ``StateError``
sentence naming the file, never with another exception, and reading it never changes the files."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import StateError
from runner.state.file import RunRecord, StageRecord, StageStatus, StateFile
from runner.testing.mutation import mutated, places


def _valid_files(folder: Path) -> tuple[dict[str, Any], bytes]:
    """A real state (snapshot and journal) as qfrun writes it: the snapshot as JSON, the journal's bytes."""
    path = folder / "p.state.json"
    state = StateFile.load(path, "p", sync=False)
    state.record_run(
        RunRecord("r1", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "succeeded", "qfrun run p")
    )
    last = {"fingerprint": "f1", "outputs": {"v": 1}, "run_id": "r1", "finished_at": "2026-01-01T00:01:00Z"}
    state.record(
        "a",
        StageRecord(
            StageStatus.SUCCEEDED,
            "f1",
            "r1",
            attempt=1,
            task={"task_id": "infer-1", "kind": "batch_inference"},
            outputs={"v": 1},
            last_success=last,
        ),
    )
    state.record("b", StageRecord(StageStatus.FAILED, "f2", "r1", attempt=2, error="boom"))
    state.compact()
    state.record("b", StageRecord(StageStatus.RUNNING, "f3", "r2", attempt=3, rows_done=1, rows_total=4))
    state.close()
    snapshot = json.loads(path.read_text())
    journal = (folder / "p.state.journal").read_bytes()
    return snapshot, journal


with tempfile.TemporaryDirectory() as _folder:
    SNAPSHOT, JOURNAL = _valid_files(Path(_folder))

SCALARS = (
    st.none() | st.booleans() | st.integers(-3, 2**70) | st.floats(allow_nan=False) | st.text(max_size=10)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


PATHS = places(SNAPSHOT)


def _read(snapshot: bytes, journal: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.state.json"
        path.write_bytes(snapshot)
        (Path(folder) / "p.state.journal").write_bytes(journal)
        before = sorted((p.name, p.read_bytes()) for p in Path(folder).iterdir())
        try:
            state = StateFile.load(path, "p", sync=False)
        except StateError as error:
            text = str(error)
            assert text.endswith("."), text
            assert "p.state" in text, text
        else:
            for record in state.stages.values():
                assert isinstance(record.status, StageStatus)
                json.dumps(record.to_json())  # what was read can be written back
        assert sorted((p.name, p.read_bytes()) for p in Path(folder).iterdir()) == before


def _mutated(path: tuple[Any, ...], how: str, value: Any) -> dict[str, Any]:
    return mutated(SNAPSHOT, path, how, value, new_key="unexpected")  # type: ignore[no-any-return]


def test_the_valid_state_reads_back_as_written() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.state.json"
        path.write_text(json.dumps(SNAPSHOT))
        (Path(folder) / "p.state.journal").write_bytes(JOURNAL)
        state = StateFile.load(path, "p", sync=False)
    assert state.stages["b"].status is StageStatus.RUNNING  # the journal's line, over the snapshot
    assert (state.stages["b"].rows_done, state.stages["b"].rows_total) == (1, 4)
    assert state.stages["a"].task == {"task_id": "infer-1", "kind": "batch_inference"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), how=st.sampled_from(["replace", "remove", "add"]), value=VALUES)
def test_a_snapshot_with_one_thing_changed_is_read_or_refused_in_a_sentence(
    path: tuple[Any, ...], how: str, value: Any
) -> None:
    _read(json.dumps(_mutated(path, how, value)).encode(), JOURNAL)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, len(JOURNAL)), junk=st.binary(max_size=40))
def test_a_journal_cut_anywhere_or_with_bytes_after_it_is_read_or_refused_in_a_sentence(
    cut: int, junk: bytes
) -> None:
    _read(json.dumps(SNAPSHOT).encode(), JOURNAL[:cut] + junk)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, len(json.dumps(SNAPSHOT))), junk=st.binary(max_size=20))
def test_a_snapshot_cut_anywhere_is_read_or_refused_in_a_sentence(cut: int, junk: bytes) -> None:
    _read(json.dumps(SNAPSHOT).encode()[:cut] + junk, JOURNAL)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=VALUES)
def test_a_journal_line_of_any_json_is_read_or_refused_in_a_sentence(line: Any) -> None:
    _read(json.dumps(SNAPSHOT).encode(), JOURNAL + json.dumps(line).encode() + b"\n")
