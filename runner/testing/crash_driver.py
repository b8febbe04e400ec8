"""Run a pipeline against a file-backed fake platform, and SIGKILL this process at transition number N.

Used by tests/run/test_crash.py: ``python -m runner.testing.crash_driver PIPELINE STORE KILL_AT``.
Transitions are counted at every state write and right after the platform created a task (before qfrun
recorded it); KILL_AT 0 runs to the end and prints how many transitions there were.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from runner.pipeline.spec import load_pipeline
from runner.run.executor import Executor, RunOptions
from runner.state.file import StateFile
from runner.state.lock import RunLock
from runner.state.records import StageRecord
from runner.testing.fake_platform import FakePlatform, Script
from runner.testing.pipelines import FAST, Recorder, state_path


class Transitions:
    """The points a crash can fall on: after every state write, and after the platform created a task but
    before qfrun recorded it. ``after(count)`` is called at each (tests/run/test_decide_property.py uses the
    same points to take the states a kill leaves)."""

    def __init__(self, after: Callable[[int], None]) -> None:
        self.after = after
        self.count = 0

    def watch(self, state: StateFile) -> None:
        original = state.record

        def record(stage_id: str, rec: StageRecord, *, durable: bool = True) -> None:
            original(stage_id, rec, durable=durable)
            self.passed()

        state.record = record  # type: ignore[method-assign,assignment]

    def passed(self, *_: object) -> None:
        self.count += 1
        self.after(self.count)


def main() -> None:
    pipeline_path, store, kill_at = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])

    def kill(count: int) -> None:
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    transitions = Transitions(kill)
    scripts = {stage: Script(polls=2) for stage in ("base_infer", "base_eval", "w4", "serve")}
    platform = FakePlatform(scripts=scripts, store=store, on_create=transitions.passed)
    pipeline = load_pipeline(pipeline_path)
    with RunLock(state_path(pipeline), command="crash-driver", pipeline=pipeline.name):
        state = StateFile.load(state_path(pipeline), pipeline.name)
        transitions.watch(state)
        summary = Executor(pipeline, platform, state, RunOptions(max_parallel=1, poll=FAST), Recorder()).run()
        state.close()
    outcomes = ",".join(f"{s}={o.outcome.replace(' ', '_')}" for s, o in summary.outcomes.items())
    sys.stdout.write(f"{transitions.count} {outcomes}\n")


if __name__ == "__main__":
    main()
