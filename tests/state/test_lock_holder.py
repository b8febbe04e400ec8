"""The run lock's holder note and its failure paths: a note that cannot be written releases the lock, a note
that cannot be read is no holder, and a loser's message says what it knows and no more."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import filelock
import pytest

from runner.errors import StateError, StateLockedError
from runner.state import lock as lock_module
from runner.state.lock import RunLock


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / ".qfrun" / "demo.state.json"


def test_a_holder_note_that_cannot_be_written_releases_the_lock_it_took(
    state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise StateError("The lock holder note cannot be written: No space left on device.")

    monkeypatch.setattr(lock_module, "atomic_write", full)
    with pytest.raises(StateError, match="No space left"), RunLock(state_path, command="qfrun run a.yaml"):
        pytest.fail("the body must not run without a note")
    monkeypatch.undo()
    with RunLock(state_path, command="qfrun run a.yaml") as held:  # released: the next run gets it
        assert held.holder() is not None


def test_an_interrupt_while_writing_the_note_releases_the_lock_too(
    state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(lock_module, "atomic_write", interrupted)
    with pytest.raises(KeyboardInterrupt), RunLock(state_path, command="qfrun run a.yaml"):
        pass
    monkeypatch.undo()
    with RunLock(state_path, command="qfrun run a.yaml"):
        pass


def test_the_note_names_this_process_and_its_command_cut_to_a_bounded_length(state_path: Path) -> None:
    command = "qfrun run " + "x" * 500
    with RunLock(state_path, command=command, pipeline="named") as held:
        note = held.holder()
        assert note is not None
        assert (note["pid"], note["host"], note["pipeline"]) == (os.getpid(), socket.gethostname(), "named")
        assert note["command"] == command[:200]
        assert note["started_at"].endswith("Z")
    assert not held.holder_path.exists()  # the note goes with the lock
    assert held.lock_path.exists()  # the lock file stays: unlinking it races with the next opener


@pytest.mark.parametrize(
    "text", ["not json", "[1, 2]", '"a string"', ""], ids=["garbage", "list", "str", "empty"]
)
def test_a_note_that_is_not_a_json_object_is_no_holder(state_path: Path, text: str) -> None:
    lock = RunLock(state_path, command="qfrun plan")
    state_path.parent.mkdir(parents=True)
    lock.holder_path.write_text(text)
    assert lock.holder() is None


def test_a_loser_names_a_holder_on_another_host_without_guessing_whether_it_lives(state_path: Path) -> None:
    with RunLock(state_path, command="qfrun run a.yaml") as held:
        held.holder_path.write_text(
            json.dumps(
                {"pid": 1, "host": "ci-runner-7", "started_at": "2026-01-01T00:00:00Z", "command": "qfrun x"}
            )
        )
        with pytest.raises(StateLockedError) as caught, RunLock(state_path, command="qfrun run b.yaml"):
            pass
    assert str(caught.value) == (
        "Another qfrun run holds the state of pipeline 'demo' (pid 1 on host ci-runner-7, started "
        "2026-01-01T00:00:00Z: qfrun x); wait for it or stop it."
    )


def test_a_loser_reading_a_note_with_missing_fields_still_says_what_it_can(state_path: Path) -> None:
    with RunLock(state_path, command="qfrun run a.yaml") as held:
        held.holder_path.write_text(json.dumps({"pid": "not a number"}))
        with pytest.raises(StateLockedError) as caught, RunLock(state_path, command="qfrun run b.yaml"):
            pass
    assert "(pid not a number on host ?, started ?: )" in str(caught.value)
    assert "has ended" not in str(caught.value)  # a pid that is not a number is never probed


def test_a_pid_owned_by_another_user_counts_as_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(pid: int, signal: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", refused)
    assert lock_module._alive(12345) is True


def test_a_pid_that_does_not_exist_is_dead_and_this_one_is_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    def gone(pid: int, signal: int) -> None:
        raise ProcessLookupError(3, "No such process")

    assert lock_module._alive(os.getpid()) is True
    monkeypatch.setattr(os, "kill", gone)
    assert lock_module._alive(12345) is False


def test_outside_posix_no_pid_is_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    probed: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, signal: probed.append(pid))
    monkeypatch.setattr(lock_module.os, "name", "nt")
    assert lock_module._alive(12345) is True
    assert probed == []  # os.kill(pid, 0) would end the process on Windows


def test_leaving_a_lock_that_was_never_taken_changes_nothing(state_path: Path) -> None:
    lock = RunLock(state_path, command="qfrun run a.yaml")
    lock.__exit__(None, None, None)
    assert not state_path.parent.exists()


def test_leaving_twice_releases_once(state_path: Path) -> None:
    lock = RunLock(state_path, command="qfrun run a.yaml")
    with lock:
        pass
    lock.__exit__(None, None, None)
    with RunLock(state_path, command="qfrun run b.yaml"):
        pass


def test_a_lock_file_that_cannot_be_opened_is_a_state_error_naming_it(
    state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: filelock.BaseFileLock, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(filelock.FileLock, "acquire", refuse)
    with pytest.raises(StateError) as caught, RunLock(state_path, command="qfrun run a.yaml"):
        pass
    assert str(caught.value) == (
        f"The lock file {state_path.parent / 'demo.state.lock'} cannot be created: Permission denied."
    )
    assert not isinstance(caught.value, StateLockedError)


@pytest.mark.parametrize(
    ("name", "pipeline"),
    [("x.state.json", "x"), ("x.json", "x"), ("x.state", "x"), ("plain", "plain"), (".state.json", ".state")],
)
def test_the_pipeline_of_a_state_path_is_its_name_without_the_suffixes(name: str, pipeline: str) -> None:
    assert lock_module.pipeline_of_state(Path("/s") / name) == pipeline
