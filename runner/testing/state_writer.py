"""A process that records state transitions as fast as it can until it is killed, for the SIGKILL test of the
state file (tests/state/test_state.py).

``python -m runner.testing.state_writer --forking`` reads one JSON request per line on stdin
(``{"path", "stages", "sync", "acks"}``) and starts each writer in a child forked from itself; it answers
``{"pid": ...}`` at once and, when the child has ended (the test kills it), ``{"returncode": ...}`` as
``subprocess`` gives it. The child writes ``ready`` and then the number of every transition the state file
has taken (``record`` returned) to the named pipe ``acks``, so the test learns what it may expect to find.
Why fork: the test kills forty writers, and starting Python, coverage and qfrun's state module cost more CPU
than most writers live; a fork of a process that imported them once is the same fresh process to the writer
(the driver never opens a state file, so the child inherits no lock or descriptor of one).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import IO, Any, NoReturn

from runner.state.file import RunRecord, StageRecord, StageStatus, StateFile


def write_until_killed(path: Path, stages: int, sync: bool, acks: int) -> NoReturn:  # pragma: no cover
    """Resume the state at ``path``, then record one transition after another, each acknowledged on ``acks``
    once ``record`` returned; compacts every 37 transitions. Runs only in children that end by SIGKILL, which
    never save coverage data."""
    state = StateFile.load(path, "crash", sync=sync)
    seq = max((r.attempt for r in state.stages.values()), default=-1) + 1
    state.record_run(RunRecord(run_id=f"r{seq}", started_at="2026-11-25T16:00:00Z"))
    os.write(acks, b"ready\n")
    while True:
        record = StageRecord(status=StageStatus.RUNNING, attempt=seq, outputs={"pad": "x" * (seq % 97)})
        state.record(f"s{seq % stages}", record)
        os.write(acks, f"{seq}\n".encode())
        if seq % 37 == 0:
            state.compact()
        seq += 1


def serve_forks(requests: IO[str], answers: IO[str]) -> None:
    """Start a writer in a forked child per request line; answer its pid, then its end."""
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        # The child ends by SIGKILL (never saving coverage data), or by os._exit on a failure it printed
        if pid == 0:  # pragma: no cover
            _child(request)
        answers.write(json.dumps({"pid": pid}) + "\n")
        answers.flush()
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        answers.flush()


def _child(request: dict[str, Any]) -> NoReturn:  # pragma: no cover - see serve_forks
    """A forked writer: its acknowledgements to the request's named pipe, stdin and stdout away from the
    driver's (which go on carrying requests and answers)."""
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        acks = os.open(str(request["acks"]), os.O_WRONLY)
        write_until_killed(Path(request["path"]), int(request["stages"]), bool(request["sync"]), acks)
    except BaseException:  # noqa: BLE001 - the child must reach os._exit: any failure is its exit 1, printed
        traceback.print_exc()
        sys.stderr.flush()
    os._exit(1)


def main() -> None:
    if sys.argv[1:] != ["--forking"]:
        sys.exit("usage: python -m runner.testing.state_writer --forking")
    serve_forks(sys.stdin, sys.stdout)


if __name__ == "__main__":
    main()
