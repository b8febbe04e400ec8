"""Engine entries for the warm worker's tests (tests/local/test_local_warm.py): a job that reports what it
was started with, one that fails, and one that waits in a process group with a child of its own.

``runner.local.engine.job`` runs them from a spec's ``entry`` like any task kind's engine function, so a test
can start the same job forked warm and as a process of its own and compare what each saw.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPORTED_ENV = ("QFRUN_LOCAL_TOKEN", "QFRUN_LOCAL_ACCESS_KEY", "OMP_WAIT_POLICY", "WARM_PROBE")


def report(params: dict[str, Any], progress: Path | None) -> dict[str, Any]:
    """What the job process sees: its streams, directory, session, environment and command line."""
    sys.stdout.write("probe stdout\n")
    sys.stdout.flush()
    sys.stderr.write("probe stderr\n")
    sys.stderr.flush()
    numpy = sys.modules.get("numpy")
    return {
        "cwd": os.getcwd(),
        "leads_its_session": os.getsid(0) == os.getpid(),
        "env": {name: os.environ.get(name) for name in REPORTED_ENV},
        "cmdline": Path("/proc/self/cmdline").read_bytes().rstrip(b"\0").decode().split("\0"),
        "argv": sys.argv,
        "stdin_is_devnull": os.path.samestat(os.fstat(0), os.stat(os.devnull)),
        "numpy_draw": int(numpy.random.randint(1 << 30)) if numpy is not None else None,
    }


def fail(params: dict[str, Any], progress: Path | None) -> dict[str, Any]:
    raise ValueError("The probe job failed as asked")


def wait_with_a_child(params: dict[str, Any], progress: Path | None) -> dict[str, Any]:
    """Start a grandchild in this job's process group, write both pids, and wait to be stopped."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    Path(params["pids"]).write_text(f"{os.getpid()} {child.pid}\n")
    time.sleep(120)
    return {}
