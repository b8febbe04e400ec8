"""The run history beside a state file: one snapshot per run, bounded in runs and in bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import PlatformUnavailable, StateError
from runner.state import history
from runner.state.bos_backend import BosBackend, BosHistory
from runner.state.file import RunRecord, StageRecord, StageStatus, StateFile

TYPES = {"eval": "evaluate"}


def _state(tmp_path: Path, run_id: str, accuracy: float, *, padding: str = "") -> StateFile:
    state = StateFile.load(tmp_path / "p.state.json", "p", sync=False)
    outputs = {"metrics": {"accuracy": accuracy}, "models": {"m": {"metrics": {"accuracy": accuracy}}}}
    last = {"fingerprint": f"fp-{run_id}", "run_id": run_id, "outputs": outputs, "inputs": {"pad": padding}}
    state.record(
        "eval",
        StageRecord(StageStatus.SUCCEEDED, f"fp-{run_id}", run_id, 1, outputs=outputs, last_success=last),
    )
    state.record_run(RunRecord(run_id, "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "succeeded"))
    state.close()
    return state


def test_each_run_leaves_one_snapshot_and_a_resumed_run_replaces_its_own(tmp_path: Path) -> None:
    history.append(_state(tmp_path, "r1", 0.5), TYPES)
    history.append(_state(tmp_path, "r2", 0.6), TYPES)
    history.append(_state(tmp_path, "r2", 0.7), TYPES)  # the same run, resumed
    kept = history.load(tmp_path / "p.state.json")
    assert [entry["run_id"] for entry in kept] == ["r1", "r2"]
    assert kept[-1]["stages"]["eval"]["outputs"]["metrics"] == {"accuracy": 0.7}
    assert kept[-1]["stages"]["eval"]["type"] == "evaluate"
    assert history.previous(kept, "r2") == kept[0]


def test_the_history_keeps_the_last_fifty_runs(tmp_path: Path) -> None:
    for index in range(history.MAX_ENTRIES + 7):
        history.append(_state(tmp_path, f"r{index:03d}", index / 100), TYPES)
    kept = history.load(tmp_path / "p.state.json")
    assert len(kept) == history.MAX_ENTRIES
    assert kept[0]["run_id"] == "r007"
    assert kept[-1]["run_id"] == f"r{history.MAX_ENTRIES + 6:03d}"


def test_past_its_byte_bound_the_oldest_runs_go_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "MAX_BYTES", 5_000)
    for index in range(6):
        history.append(_state(tmp_path, f"r{index}", 0.5, padding="x" * 1_500), TYPES)
    path = history.history_path(tmp_path / "p.state.json")
    entry_size = len(path.read_bytes().splitlines(keepends=True)[-1])  # every entry is this size here
    assert path.stat().st_size <= 5_000
    kept = [entry["run_id"] for entry in history.load(tmp_path / "p.state.json")]
    assert kept == [f"r{index}" for index in range(6)][-(5_000 // entry_size) :]
    assert len(kept) >= 2


def test_a_damaged_history_is_refused_with_its_line(tmp_path: Path) -> None:
    history.append(_state(tmp_path, "r1", 0.5), TYPES)
    path = history.history_path(tmp_path / "p.state.json")
    path.write_text(path.read_text() + "not json\n")
    with pytest.raises(StateError, match=r"p\.state\.history\.jsonl is damaged at line 2"):
        history.load(tmp_path / "p.state.json")


def test_no_history_file_is_an_empty_history(tmp_path: Path) -> None:
    assert history.load(tmp_path / "p.state.json") == []


class _Unreachable:
    """A BOS client whose every call fails as an unreachable endpoint does (the error path only)."""

    def __enter__(self) -> _Unreachable:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def get_versioned(self, *args: object, **kwargs: object) -> None:
        raise PlatformUnavailable("BOS at http://127.0.0.1:9 did not answer.")

    put_object = get_versioned


def test_a_history_kept_in_bos_that_cannot_be_reached_is_a_state_error_naming_the_object(
    tmp_path: Path,
) -> None:
    backend = BosBackend(
        lambda: _Unreachable(),  # type: ignore[arg-type,return-value]
        "b",
        "ci/p.state.json",
        "p",
        rescue_dir=tmp_path,
    )
    store = BosHistory(backend)
    with pytest.raises(StateError, match=r"run history bos:/b/ci/p\.state\.history\.jsonl cannot be read"):
        store.read(10)
    with pytest.raises(StateError, match=r"cannot be written: BOS at http://127\.0\.0\.1:9 did not answer"):
        store.write(b"{}\n")
