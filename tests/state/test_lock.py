"""The run lock: one writer per state file, a loser names the holder, a dead holder's lock is recovered."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.errors import StateError, StateLockedError
from runner.state.lock import RunLock, pipeline_of_state

REPO = Path(__file__).resolve().parents[2]

_HOLDER = """
import sys, time
from pathlib import Path
from runner.state.lock import RunLock

with RunLock(Path(sys.argv[1]), command="qfrun run held.yaml"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / ".qfrun" / "demo.state.json"


@contextlib.contextmanager
def _held_in_child(state_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process that holds the lock until it is killed."""
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(state_path)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == b"held\n"
            yield child
        finally:
            child.kill()


def test_the_pipeline_name_is_read_from_a_default_state_path() -> None:
    assert pipeline_of_state(Path(".qfrun/eval-nightly.state.json")) == "eval-nightly"
    assert pipeline_of_state(Path("custom.json")) == "custom"


def test_taking_the_lock_creates_the_state_folder_with_a_gitignore(state_path: Path) -> None:
    with RunLock(state_path, command="qfrun run demo.yaml") as lock:
        holder = json.loads(lock.holder_path.read_text(encoding="utf-8"))
        assert holder["pid"] == os.getpid()
        assert holder["command"] == "qfrun run demo.yaml"
        assert holder["started_at"].endswith("Z")
    assert (state_path.parent / ".gitignore").read_text(encoding="utf-8") == "*\n"
    assert not lock.holder_path.exists()


def test_a_folder_the_user_made_gets_no_gitignore(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    with RunLock(folder / "demo.state.json", command="qfrun run demo.yaml"):
        pass
    assert not (folder / ".gitignore").exists()


def test_a_second_holder_in_the_same_process_fails_at_once(state_path: Path) -> None:
    with RunLock(state_path, command="qfrun run demo.yaml", pipeline="demo"):
        started = time.monotonic()
        with pytest.raises(StateLockedError) as caught, RunLock(state_path, command="qfrun run demo.yaml"):
            pass
        assert time.monotonic() - started < 1.0
    message = str(caught.value)
    assert message.startswith("Another qfrun run holds the state of pipeline 'demo' (pid ")
    assert message.endswith("qfrun run demo.yaml); wait for it or stop it.")
    assert caught.value.exit_code == 4


def test_the_lock_can_be_taken_again_after_it_is_released(state_path: Path) -> None:
    for _ in range(3):
        with RunLock(state_path, command="qfrun run demo.yaml"):
            pass


def test_a_loser_that_finds_no_holder_note_still_says_what_is_locked(state_path: Path) -> None:
    with RunLock(state_path, command="qfrun run demo.yaml") as lock:
        lock.holder_path.unlink()
        with (
            pytest.raises(StateLockedError, match=r"lock file .*demo\.state\.lock"),
            RunLock(state_path, command="x"),
        ):
            pass


@pytest.mark.slow
def test_a_lock_held_after_its_holder_ended_says_so(state_path: Path) -> None:
    with RunLock(state_path, command="qfrun run demo.yaml") as lock:
        with subprocess.Popen([sys.executable, "-c", "pass"]) as ended:
            pass
        note = {
            "pid": ended.pid,
            "host": socket.gethostname(),
            "started_at": "2026-11-25T16:00:00Z",
            "command": "c",
        }
        lock.holder_path.write_text(json.dumps(note), encoding="utf-8")
        with pytest.raises(StateLockedError) as caught, RunLock(state_path, command="x"):
            pass
    assert f"pid {ended.pid} has ended, so a process it started still holds" in str(caught.value)


def test_a_lock_in_an_unwritable_place_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(StateError), RunLock(blocker / ".qfrun" / "x.state.json", command="qfrun run x.yaml"):
        pass


@pytest.mark.slow
def test_a_holder_in_another_process_is_named_by_its_pid(state_path: Path) -> None:
    with _held_in_child(state_path) as child:
        started = time.monotonic()
        with pytest.raises(StateLockedError) as caught, RunLock(state_path, command="qfrun run demo.yaml"):
            pass
        assert time.monotonic() - started < 1.0
    assert f"(pid {child.pid} on host " in str(caught.value)
    assert "qfrun run held.yaml" in str(caught.value)


@pytest.mark.slow
def test_the_lock_of_a_killed_holder_is_recovered(state_path: Path) -> None:
    with _held_in_child(state_path) as child:
        child.send_signal(signal.SIGKILL)
        child.wait()
    stale = RunLock(state_path, command="probe").holder()
    assert stale is not None
    assert stale["pid"] == child.pid  # the note of the dead holder is still there

    with RunLock(state_path, command="qfrun run demo.yaml") as lock:
        holder = lock.holder()
        assert holder is not None
        assert holder["pid"] == os.getpid()
