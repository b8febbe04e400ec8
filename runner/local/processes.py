"""Child processes of the local platform (task jobs, service replicas, the server itself): one set of helpers.

Jobs and replicas run in process groups of their own, so ending one ends whatever it started; a platform
that died may leave them behind, and its successor kills only processes whose command line proves they are
what the record says (a pid may have been reused by anything since). A job forked by the warm worker
(runner.local.zygote) rewrites its command line to the one it would have been started with, so the same check
recognises it; it also dies with its warm worker, which dies with the platform.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Protocol

GRACE_S = 5.0


class ChildProcess(Protocol):
    """What the platform needs of a job or replica process: ``subprocess.Popen``, or a child the warm worker
    forked (runner.local.warm.WarmChild). Its pid leads its process group."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (an orphan's zombie may never be reaped here)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def terminate_group(process: ChildProcess, *, wait: bool) -> None:
    """SIGTERM the process's group, then SIGKILL it if it has not exited within ``GRACE_S``.

    ``wait=False`` returns at once and reaps in a thread (a task runner must not stall on one job);
    ``wait=True`` returns when the group is gone (a released service must be gone when the answer says so).
    """
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)

    def reap() -> None:
        try:
            process.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(GRACE_S)

    if wait:
        reap()
    else:
        threading.Thread(target=reap, daemon=True).start()


def kill_orphan(pid: int, *markers: str) -> None:
    """SIGKILL the group of ``pid`` only if its command line holds every marker; wait up to 5 s for it."""
    if pid <= 0:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return
    if all(marker in cmdline for marker in markers):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        for _ in range(50):
            if not pid_alive(pid):
                return
            time.sleep(0.1)
