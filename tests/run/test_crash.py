"""Crash safety, proven: SIGKILL at every transition in turn, then resume; no task is created twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.state.file import StateFile
from runner.testing.fake_platform import FakePlatform
from runner.testing.forking import SOURCE, forking_driver
from runner.testing.pipelines import write

STAGES = ("base", "base_infer", "base_eval", "w4", "serve")


Driver = Callable[[Path, int], subprocess.CompletedProcess[str]]


def drive(folder: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    """One run in a fresh Python process."""
    env = {**os.environ, "PYTHONPATH": str(SOURCE)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "runner.testing.crash_driver",
            str(folder / "pipeline.yaml"),
            str(folder / "platform.json"),
            str(kill_at),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def forked(tmp_path: Path) -> Iterator[Driver]:
    """Runs, each in a child forked from one driver that imported qfrun once (``--forking``): the same fresh
    process to the run, without paying for Python's start and qfrun's imports eighty times."""
    with forking_driver("runner.testing.crash_driver") as (requests, answers):

        def run(folder: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
            err = folder / f"stderr-{kill_at}.txt"
            request = {"pipeline": str(folder / "pipeline.yaml"), "store": str(folder / "platform.json")}
            requests.write(json.dumps({**request, "kill_at": kill_at, "stderr": str(err)}) + "\n")
            requests.flush()
            answer = json.loads(answers.readline())
            stderr = err.read_text(encoding="utf-8", errors="replace")
            args = [sys.executable, "-m", "runner.testing.crash_driver", "--forking"]
            return subprocess.CompletedProcess(args, answer["returncode"], answer["stdout"], stderr)

        yield run


def transitions(tmp_path: Path, driver: Driver, name: str) -> int:
    folder = tmp_path / name
    folder.mkdir()
    write(folder)
    done = driver(folder, 0)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[0])


@pytest.mark.slow
def test_a_run_killed_at_any_transition_resumes_without_creating_a_task_twice(
    tmp_path: Path, forked: Driver
) -> None:
    total = transitions(tmp_path, drive, "count")
    assert total >= 20  # every stage's pending/intent/submitted/running/succeeded plus the creates
    # a forked run is the fresh process the kills below stand for: it passes the same transitions
    assert transitions(tmp_path, forked, "count-forked") == total
    for kill_at in range(1, total + 1):
        folder = tmp_path / f"kill-{kill_at}"
        folder.mkdir()
        write(folder)
        killed = forked(folder, kill_at)
        assert killed.returncode == -signal.SIGKILL, f"transition {kill_at}: {killed.stderr}"
        StateFile.load(folder / ".qfrun" / "demo.state.json", "demo")  # always loads after a kill
        resumed = forked(folder, 0)
        assert resumed.returncode == 0, f"transition {kill_at}: {resumed.stderr}"
        outcomes = dict(part.split("=") for part in resumed.stdout.split()[1].split(","))
        assert set(outcomes) == set(STAGES)
        assert set(outcomes.values()) <= {"succeeded", "up_to_date"}, (
            f"transition {kill_at}: {resumed.stdout}"
        )
        platform = FakePlatform(store=folder / "platform.json")
        for stage in STAGES[1:]:
            assert len(platform.created_for(stage)) == 1, f"transition {kill_at}: {stage} created twice"
        state = StateFile.load(folder / ".qfrun" / "demo.state.json", "demo")
        assert all(state.stages[s].status.value == "succeeded" for s in STAGES)
