"""Crash safety, proven: SIGKILL at every transition in turn, then resume; no task is created twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import runner
from runner.state.file import StateFile
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import write

# The checkout under test, first on the driver's path (a worktree beside an editable install of another).
SOURCE = Path(runner.__file__).resolve().parent.parent
STAGES = ("base", "base_infer", "base_eval", "w4", "serve")


def drive(folder: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
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


def transitions(tmp_path: Path) -> int:
    folder = tmp_path / "count"
    folder.mkdir()
    write(folder)
    done = drive(folder, 0)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[0])


@pytest.mark.slow
def test_a_run_killed_at_any_transition_resumes_without_creating_a_task_twice(tmp_path: Path) -> None:
    total = transitions(tmp_path)
    assert total >= 20  # every stage's pending/intent/submitted/running/succeeded plus the creates
    for kill_at in range(1, total + 1):
        folder = tmp_path / f"kill-{kill_at}"
        folder.mkdir()
        write(folder)
        killed = drive(folder, kill_at)
        assert killed.returncode == -signal.SIGKILL, f"transition {kill_at}: {killed.stderr}"
        StateFile.load(folder / ".qfrun" / "demo.state.json", "demo")  # always loads after a kill
        resumed = drive(folder, 0)
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
