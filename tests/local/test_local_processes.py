"""The platform's process helpers end what they are meant to end and nothing else: a group that ignores
SIGTERM is killed after the grace period, and an orphan is killed only when its command line proves it is
the job or replica the record names (a recorded pid may belong to anything by now)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.local import processes
from runner.local.processes import kill_orphan, pid_alive, terminate_group

pytestmark = pytest.mark.slow  # starts processes

STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
    "time.sleep(60)"
)
_started: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _end_what_was_started() -> Iterator[None]:
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _start(code: str, *extra: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", code, *extra], stdout=subprocess.PIPE, start_new_session=True
    )
    _started.append(process)
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"  # its handlers are installed
    return process


def test_a_group_that_ignores_sigterm_is_killed_after_the_grace_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processes, "GRACE_S", 0.3)
    process = _start(STUBBORN)
    started = time.monotonic()
    terminate_group(process, wait=True)
    assert process.returncode == -9
    assert time.monotonic() - started >= 0.3
    assert not pid_alive(process.pid)
    terminate_group(process, wait=True)  # already gone: nothing to do, no error


def test_terminate_without_waiting_returns_at_once_and_still_ends_the_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processes, "GRACE_S", 0.3)
    process = _start(STUBBORN)
    started = time.monotonic()
    terminate_group(process, wait=False)
    assert time.monotonic() - started < 0.3
    deadline = time.monotonic() + 10
    while process.poll() is None:
        assert time.monotonic() < deadline, "the group was not ended"
        time.sleep(0.05)
    assert process.returncode == -9


def test_an_orphan_is_killed_only_when_its_command_line_names_what_the_record_says() -> None:
    process = _start(
        "print('ready', flush=True); import time; time.sleep(60)", "runner.local.engine.job", "ame-1"
    )
    try:
        kill_orphan(process.pid, "runner.local.engine.job", "ame-2")  # another task's record: not this one
        assert process.poll() is None
        kill_orphan(process.pid, "runner.local.engine.job", "ame-1")
        assert process.wait(10) == -9
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    kill_orphan(0, "anything")  # no pid recorded
    kill_orphan(process.pid, "runner.local.engine.job")  # gone since: nothing to read, nothing killed


def test_a_zombie_and_a_pid_nobody_has_are_not_alive() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    _started.append(child)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not pid_alive(child.pid)  # exited, not yet reaped
    child.wait()
    assert not pid_alive(child.pid)
