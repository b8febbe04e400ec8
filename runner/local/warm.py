"""Start engine jobs and replicas from the warm worker (runner.local.zygote), or as processes of their own.

``launch`` is what the task workers and the service manager call. The first job or replica of a platform
process starts its warm worker (one per process: every platform in it shares it; never at platform start,
since most platforms never run a job), with the environment jobs get (``job_env``: no platform token or
keys); later ones are forked from it, already past the seconds of importing torch and transformers. When the
warm worker cannot start, dies, or refuses a fork, the job starts as ``python -m MODULE`` as it always did
(one warning per process), and ``QFRUN_LOCAL_WARM=0`` in the platform's environment makes that the rule.

Only the platform's own interpreter gets a warm worker: the worker must import this package, which another
``python`` (a test's stand-in script) may not.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import IO

from runner.local.processes import ChildProcess

log = logging.getLogger(__name__)

ENV_WARM = "QFRUN_LOCAL_WARM"
ZYGOTE_MODULE = "runner.local.zygote"
# A spawn waits for the worker's imports (torch; llmcompressor for a compression's first job), which a loaded
# machine slows to tens of seconds. Giving up kills the worker, and with it every job and replica it forked,
# so the limit is for a worker that hangs, not for a slow one.
START_TIMEOUT = 600.0
TITLE_ROOM = 4096  # bytes of the worker's command line a child may rewrite into its own (zygote.set_title)
PIPE = subprocess.PIPE
# Variables read when the interpreter or a library loads, which a forked child cannot change any more
# (sys.path, OpenMP's and BLAS's thread pools, where transformers caches): a job whose values differ from
# the warm worker's starts as a process of its own.
LOAD_TIME_PREFIXES = (
    "PYTHON",
    "LD_",
    "OMP_",
    "GOMP_",
    "KMP_",
    "MKL_",
    "OPENBLAS_",
    "CUDA_",
    "TORCH",
    "PYTORCH_",
    "HF_",
    "TRANSFORMERS_",
    "TOKENIZERS_",
)


class WarmUnavailable(Exception):
    """The warm worker did not fork the child; start it as a process of its own."""


class WarmChild:
    """A child forked by the warm worker, with the part of ``subprocess.Popen``'s interface the platform
    uses. Its exit status comes from the warm worker (it is not this process's child)."""

    def __init__(self, pid: int, args: list[str], stdout: IO[bytes] | None) -> None:
        self.pid = pid
        self.args = args
        self.stdout = stdout
        self.returncode: int | None = None
        self._ended = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def _end(self, returncode: int) -> None:
        if self.returncode is None:
            self.returncode = returncode
        self._ended.set()


class WarmWorker:
    """The platform's end of one warm worker process."""

    def __init__(self, python: str, env: Mapping[str, str]) -> None:
        self.python = python
        self.load_time = load_time(env)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [python, "-m", ZYGOTE_MODULE, str(theirs.fileno()), "." * TITLE_ROOM]
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # a Ctrl-C at the platform's terminal is the platform's to handle
                env=dict(env),
            )
        finally:
            theirs.close()
        self.control = ours
        self.children: dict[int, WarmChild] = {}
        # Answers to spawn requests, in order: the forked child, a refusal's reason, or None (it exited).
        self.replies: queue.Queue[WarmChild | str | None] = queue.Queue()
        self.spawning = threading.Lock()
        self.lock = threading.Lock()
        self.accepting = True  # False once it exited or refused: the platform then starts processes
        self.reader = threading.Thread(target=self._read, name="warm-worker", daemon=True)
        self.reader.start()

    def spawn(
        self,
        module: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        stdout: int,
        stderr: int,
        warm: Sequence[str] = (),
    ) -> WarmChild:
        """Fork ``python -m module argv`` in the warm worker; ``stdout``/``stderr`` are descriptors it gets
        (PIPE: a pipe whose reading end is the child's ``stdout``)."""
        title = [self.python, "-m", module, *argv]
        request = {
            "op": "spawn",
            "module": module,
            "argv": list(argv),
            "env": dict(env),
            "cwd": os.getcwd(),
            "title": title,
            "warm": list(warm),
        }
        read_end: int | None = None
        opened: list[int] = []  # descriptors made here for the child, closed here once it has them
        if stdout == PIPE:
            read_end, stdout = os.pipe()
            opened.append(stdout)
        if stdout == subprocess.DEVNULL:
            stdout = _devnull(opened)
        if stderr == subprocess.DEVNULL:
            stderr = _devnull(opened)
        stdin = _devnull(opened, os.O_RDONLY)
        try:
            with self.spawning:
                if not self.accepting:
                    raise WarmUnavailable("the warm worker has exited")
                try:
                    socket.send_fds(self.control, [json.dumps(request).encode()], [stdin, stdout, stderr])
                except OSError as error:
                    raise WarmUnavailable(f"the warm worker did not take the request: {error}") from None
                try:
                    reply = self.replies.get(timeout=START_TIMEOUT)
                except queue.Empty:
                    self.close()  # it may still fork later: end it, so the job cannot run twice
                    raise WarmUnavailable(
                        f"the warm worker did not answer within {START_TIMEOUT:.0f} s"
                    ) from None
        except BaseException:
            if read_end is not None:
                os.close(read_end)
            raise
        finally:
            for fd in opened:
                os.close(fd)
        if not isinstance(reply, WarmChild):
            if read_end is not None:
                os.close(read_end)
            # A worker that refused once (a thread it cannot fork safely) would refuse again; it keeps
            # running for the children it has.
            self.accepting = False
            raise WarmUnavailable(reply or "the warm worker exited")
        child = reply
        child.args = title
        if read_end is not None:
            child.stdout = open(read_end, "rb")  # the caller reads and closes it
        return child

    def close(self, *, grace: float = 0.0) -> None:
        """End the warm worker: close its socket, so that it ends its children's groups, reaps them and exits
        (reaped, their CPU time counts as this process's children's), then SIGKILL it after ``grace``
        seconds. No grace when it may still be about to fork a request it was sent (a spawn timed out)."""
        self.accepting = False
        with contextlib.suppress(OSError):
            self.control.shutdown(socket.SHUT_RDWR)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.reader.join(5)

    def _read(self) -> None:
        """Dispatch the worker's messages: answers to ``spawn``, and its children's exits."""
        while True:
            try:
                data = self.control.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.control.close()
                break
            message = json.loads(data)
            if "exit" in message:
                with self.lock:
                    child = self.children.pop(int(message["exit"]), None)
                if child is not None:
                    child._end(int(message["returncode"]))
                continue
            if "spawned" in message:
                child = WarmChild(int(message["spawned"]), [], None)
                with self.lock:
                    self.children[child.pid] = child
                self.replies.put(child)
            else:
                self.replies.put(str(message.get("refused", "the warm worker answered nonsense")))
        self._gone()

    def _gone(self) -> None:
        """The worker exited: its children died with it (PR_SET_PDEATHSIG); kill what they started too."""
        self.accepting = False
        self.replies.put(None)
        with self.lock:
            orphans = list(self.children.values())
            self.children.clear()
        for child in orphans:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            child._end(-signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


def _devnull(opened: list[int], flags: int = os.O_WRONLY) -> int:
    fd = os.open(os.devnull, flags)
    opened.append(fd)
    return fd


_workers: dict[str, WarmWorker] = {}
_workers_lock = threading.Lock()
_warned = False


def load_time(env: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key.startswith(LOAD_TIME_PREFIXES)}


def enabled() -> bool:
    return os.environ.get(ENV_WARM, "1").strip().lower() not in ("0", "false", "no", "off")


def launch(
    python: str,
    module: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    worker_env: Mapping[str, str],
    stdout: int | IO[bytes],
    stderr: int | IO[bytes],
    warm: Sequence[str] = (),
) -> ChildProcess:
    """Start ``python -m module argv`` in a process group of its own, forked warm when possible.

    ``env`` is the child's environment, ``worker_env`` the warm worker's if this starts it; ``stdout`` is
    a descriptor, a file, or ``PIPE``; stdin is /dev/null.
    """
    out = stdout if isinstance(stdout, int) else stdout.fileno()
    err = stderr if isinstance(stderr, int) else stderr.fileno()
    if enabled() and os.path.realpath(python) == os.path.realpath(sys.executable):
        worker = _worker(python, worker_env)
        if worker is not None and worker.load_time == load_time(env):
            try:
                return worker.spawn(module, argv, env=env, stdout=out, stderr=err, warm=warm)
            except WarmUnavailable as reason:
                _warn(str(reason))
    return subprocess.Popen(
        [python, "-m", module, *argv],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        start_new_session=True,
        env=dict(env),
    )


def _worker(python: str, env: Mapping[str, str]) -> WarmWorker | None:
    with _workers_lock:
        worker = _workers.get(python)
        if worker is not None and worker.accepting:
            return worker
        if worker is not None:
            return None  # it died or refused once: this process starts jobs as processes from now on
        try:
            worker = _workers[python] = WarmWorker(python, env)
        except OSError as error:
            _warn(f"the warm worker did not start: {error}")
            return None
        return worker


def _warn(reason: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning("Local jobs start as processes of their own (slower): %s.", reason)


def _forget_in_child() -> None:
    """A process forked from one with warm workers (the crash test's driver forks its runs) starts its own:
    it has no reader thread for the inherited ones, and holding their sockets open would keep them alive
    after the process that started them died."""
    global _workers, _workers_lock
    for worker in _workers.values():
        with contextlib.suppress(OSError):
            worker.control.close()  # this process's copy only; shutdown() would cut the parent's too
    _workers = {}
    _workers_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


def shutdown_all() -> None:
    """End every warm worker of this process and its children (run at exit; a process killed before that
    ends them too: they see their socket close)."""
    with _workers_lock:
        workers = list(_workers.values())
        _workers.clear()
    for worker in workers:
        worker.close(grace=5.0)


atexit.register(shutdown_all)
