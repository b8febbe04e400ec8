"""Run a pipeline against a file-backed fake platform, and SIGKILL this process at transition number N.

Used by tests/run/test_crash.py: ``python -m runner.testing.crash_driver PIPELINE STORE KILL_AT``.
Transitions are counted at every state write and right after the platform created a task (before qfrun
recorded it); KILL_AT 0 runs to the end and prints how many transitions there were.

``python -m runner.testing.crash_driver --forking`` does the same for each JSON request line on stdin
(``{"pipeline", "store", "kill_at", "stderr"}``), each in a process forked from this one, and answers one JSON
line per request (``returncode``, as ``subprocess`` gives it, and ``stdout``). Why: the crash test runs the
driver about eighty times, and starting Python and importing qfrun cost most of the CPU of each run; a fork
of a process that has imported qfrun once is the same fresh process as far as the run can tell.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, NoReturn

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


def drive(pipeline_path: Path, store: Path, kill_at: int) -> str:
    """Run the pipeline, SIGKILLing this process at transition ``kill_at``; the line the driver prints."""

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
    return f"{transitions.count} {outcomes}\n"


def serve_forks(requests: IO[str], answers: IO[str]) -> None:
    """Answer each request line with the outcome of one ``drive`` in a child forked for it."""
    for line in requests:
        request = json.loads(line)
        read_end, write_end = os.pipe()
        pid = os.fork()
        # Coverage starts again in the child at the fork, and sees new frames only: the child's work is _child
        if pid == 0:  # pragma: no cover
            os.close(read_end)
            _child(request, write_end)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            out = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status), "stdout": out}) + "\n")
        answers.flush()


def _child(request: dict[str, Any], write_end: int) -> NoReturn:
    """A forked run: its stderr to the request's file, its line up the pipe, then out without the parent's
    cleanup (the parent goes on serving)."""
    code = 0
    try:
        with open(request["stderr"], "wb") as err:
            os.dup2(err.fileno(), 2)
        done = drive(Path(request["pipeline"]), Path(request["store"]), int(request["kill_at"]))
        os.write(write_end, done.encode())
    except BaseException:  # noqa: BLE001 - the child must reach os._exit: any failure is its exit 1, printed
        traceback.print_exc()
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    if sys.argv[1:] == ["--forking"]:
        serve_forks(sys.stdin, sys.stdout)
        return
    sys.stdout.write(drive(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])))


if __name__ == "__main__":
    main()
