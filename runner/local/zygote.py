"""The warm worker: a process that imported the model runtime once and forks engine jobs and replicas from it.

``python -m runner.local.zygote FD ROOM`` where FD is one end of a ``SOCK_SEQPACKET`` socket pair the
platform's process kept the other end of (runner.local.warm starts it). A fresh job process spends seconds
importing torch and transformers (and llmcompressor for a compression) before it does anything; a child
forked from here has them already. Each request is one datagram, JSON plus three file descriptors (stdin,
stdout, stderr, by ``SCM_RIGHTS``):

    {"op": "spawn", "module": M, "argv": [...], "env": {...}, "cwd": DIR, "title": [...], "warm": [...]}

answered with ``{"spawned": PID}`` or ``{"refused": REASON}`` (the platform then starts the job as a process
of its own), and later ``{"exit": PID, "returncode": CODE}`` (Popen's convention: minus the signal number).
A datagram keeps the JSON and its descriptors together, so no length prefix is needed.

The child behaves as ``python -m M ARGV`` would: a process group (session) of its own, the request's
environment, directory and standard streams, and ``/proc/PID/cmdline`` rewritten to the command line the
platform would have run (``title``), so that ``ps`` shows what runs and orphan recovery recognises it. It dies
with this process (``PR_SET_PDEATHSIG``), and this process ends every child's group and exits when the
platform's end of the socket closes (the platform exited, even by SIGKILL): no job outlives its platform.

Forking a process with threads copies only the forking one, and a lock another thread held stays locked in
the child forever, so a fork is refused while any thread runs here that is not known to be fork-safe.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_REQUEST = 1 << 20  # bytes of one request datagram (an environment is a few KiB)
# Runtime modules every child needs; imported once here, which is the point of this process.
BASE_IMPORTS = ("runner.local.engine", "torch", "transformers")
# Native threads that survive a fork harmlessly: jemalloc's background purger takes its own locks around
# fork (pthread_atfork) and restarts in the child when needed.
FORK_SAFE_THREADS = frozenset({"jemalloc_bg_thd"})
_PR_SET_PDEATHSIG = 1


@dataclass
class Spawn:
    """One request to run a module in a forked child."""

    module: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    title: list[str]
    warm: list[str]

    @classmethod
    def parse(cls, message: Any) -> Spawn:
        if not isinstance(message, dict) or message.get("op") != "spawn":
            raise ValueError(f"not a spawn request: {str(message)[:80]}")
        spawn = cls(
            module=message["module"],
            argv=list(message["argv"]),
            env=dict(message["env"]),
            cwd=message["cwd"],
            title=list(message.get("title") or []),
            warm=list(message.get("warm") or []),
        )
        if not all(isinstance(item, str) for item in [spawn.module, spawn.cwd, *spawn.argv, *spawn.warm]):
            raise ValueError("a spawn request's module, argv, cwd and warm must be strings")
        return spawn


class Zygote:
    """The loop: take requests, fork children, report their exits; end them all when the platform is gone."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.children: set[int] = set()
        self.warmed: set[str] = set()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        # Restored in each child: the handler the interpreter had (coverage's, when measured) before ours.
        self.old_sigchld = signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(self.wake_w)

    def serve(self) -> Spawn | None:
        """Serve until the platform is gone (returns None) or, in a forked child, return its request."""
        selector = selectors.DefaultSelector()
        selector.register(self.control, selectors.EVENT_READ)
        selector.register(self.wake_r, selectors.EVENT_READ)
        try:
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self.control:
                        received = self._receive()
                        if received is None:
                            return None
                        spawn = self._handle(*received)
                        if spawn is not None:
                            return spawn  # this is the forked child
                    else:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self.wake_r, 512)
                        self._reap()
        finally:
            selector.close()

    def end_children(self) -> None:
        """SIGKILL every live child's process group (what a job started too) and reap the children."""
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for pid in self.children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children.clear()

    # -- requests ------------------------------------------------------------------------------------------
    def _receive(self) -> tuple[bytes, list[int]] | None:
        try:
            data, fds, flags, _ = socket.recv_fds(self.control, MAX_REQUEST, 3)
        except ConnectionResetError:
            return None
        if not data:
            for fd in fds:
                os.close(fd)
            return None  # EOF: the platform's process is gone
        if flags & socket.MSG_TRUNC:
            for fd in fds:
                os.close(fd)
            self._send({"refused": f"the request was larger than {MAX_REQUEST} bytes"})
            return b"", []
        return data, fds

    def _handle(self, data: bytes, fds: list[int]) -> Spawn | None:
        if not data:
            return None
        try:
            spawn = Spawn.parse(json.loads(data))
            if len(fds) != 3:
                raise ValueError(f"a spawn request carries 3 file descriptors, not {len(fds)}")
            for name in spawn.warm:
                self._warm(name)
            unsafe = self._unsafe_threads()
            if unsafe:
                raise ValueError(f"it has {len(unsafe)} thread(s) besides its own ({', '.join(unsafe)})")
        except (ValueError, KeyError, TypeError) as error:
            for fd in fds:
                os.close(fd)
            self._send({"refused": f"the warm worker refused to fork: {error}"})
            return None
        ready_r, ready_w = os.pipe()
        flush_stdio()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            self._become_child(spawn, fds, ready_w)
            return spawn
        os.close(ready_w)
        for fd in fds:
            os.close(fd)
        # The child closes its end once it leads its own process group, so a signal to the group sent right
        # after the answer cannot miss it.
        with contextlib.suppress(OSError):
            os.read(ready_r, 1)
        os.close(ready_r)
        self.children.add(pid)
        self._send({"spawned": pid})
        return None

    def _warm(self, name: str) -> None:
        """Import a module the next children need; a failure is the child's to report, with its real error."""
        if name in self.warmed:
            return
        self.warmed.add(name)
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the job imports it again and fails with the real error
            traceback.print_exc(file=sys.stderr)
        settle_native_threads()

    def _unsafe_threads(self) -> list[str]:
        names = []
        me = str(os.getpid())
        for task in os.listdir("/proc/self/task"):
            if task == me:
                continue
            try:
                name = Path(f"/proc/self/task/{task}/comm").read_text().strip()
            except OSError:
                continue  # it ended
            if name not in FORK_SAFE_THREADS:
                names.append(name)
        return names

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.children:
                self.children.discard(pid)
                self._send({"exit": pid, "returncode": os.waitstatus_to_exitcode(status)})

    def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the platform is gone: the next receive sees the EOF
            self.control.send(json.dumps(message).encode())

    # -- in the forked child -------------------------------------------------------------------------------
    def _become_child(self, spawn: Spawn, fds: list[int], ready_w: int) -> None:
        os.setsid()  # a process group of its own, as Popen(start_new_session=True) makes
        parent = os.getppid()
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the zygote died before the death signal was armed
            os._exit(1)
        os.close(ready_w)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, self.old_sigchld)
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.control.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        # os.environ's mapping calls putenv/unsetenv, so C code reading getenv later (OpenMP, CUDA) sees it.
        os.environ.clear()
        os.environ.update(spawn.env)
        # The engine package sets its defaults (OMP_WAIT_POLICY) when imported, which happened here, before
        # the environment above replaced them; run it again so the child (and what it starts) has them.
        if "runner.local.engine" in sys.modules:
            importlib.reload(sys.modules["runner.local.engine"])
        os.chdir(spawn.cwd)
        if sys.path and sys.path[0] == START_CWD:
            sys.path[0] = os.getcwd()  # what ``python -m`` puts first: the directory it starts in
        set_title(spawn.title)
        reseed_numpy()


def run_child(spawn: Spawn) -> int:
    """Run the module as ``python -m`` would, in the forked child; its exit code."""
    sys.argv = [spawn.module, *spawn.argv]
    try:
        runpy.run_module(spawn.module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        if stop.code is None:
            return 0
        if isinstance(stop.code, int):
            return stop.code
        sys.stderr.write(f"{stop.code}\n")
        return 1
    except BaseException:  # noqa: BLE001 - what the interpreter would print before exiting 1
        traceback.print_exc()
        return 1
    return 0


def flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def reseed_numpy() -> None:
    """numpy's legacy global generator is copied by fork; a fresh process seeds it from the OS (Python's
    ``random`` is reseeded by CPython itself after a fork)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        with contextlib.suppress(Exception):
            numpy.random.seed()


def settle_native_threads() -> None:
    """Let native libraries stop the pools they stop around a fork, by forking once.

    OpenBLAS (numpy's) starts its thread pool when it loads and shuts it down in its ``pthread_atfork``
    handler, restarting it only at its next use (never here). After this fork its threads are gone, so
    the thread check before each real fork sees only threads nothing would stop.
    """
    flush_stdio()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def set_title(words: list[str]) -> None:
    """Rewrite this process's ``/proc/self/cmdline`` (its argv area) to ``words``, NUL-separated.

    The area is the zygote's own command line, which holds a long padding argument to make room; a title
    longer than the room is cut. Writing there is what ``setproctitle`` does; the child's memory is its own
    copy, so the zygote's command line does not change.
    """
    if not words:
        return
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end: fields 48 and 49 of stat(5)
    except (OSError, IndexError, ValueError):
        return
    room = end - start
    text = b"\0".join(word.encode(errors="replace") for word in words)[: room - 1]
    with contextlib.suppress(OSError, ValueError):
        ctypes.memmove(start, text + b"\0" * (room - len(text)), room)


START_CWD = os.getcwd()


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[0]))
    os.set_inheritable(control.fileno(), False)
    # An import failure here ends this process; the platform sees the socket close and runs jobs as before.
    for name in BASE_IMPORTS:
        importlib.import_module(name)
    settle_native_threads()
    zygote = Zygote(control)
    title = [sys.executable, "-m", __spec__.name if __spec__ else "runner.local.zygote"]
    set_title(title)
    spawn = zygote.serve()
    if spawn is None:
        zygote.end_children()
        return 0
    exit_child(run_child(spawn))
    return 1  # not reached


def exit_child(code: int) -> None:
    """End a forked child as the interpreter would, without tearing its modules down.

    Freeing every object of a heap shared copy-on-write with the zygote writes to all its pages: a child
    that exits normally spends seconds (2.3 s measured) copying memory it is about to drop. So: join the
    threads the job left (as the interpreter does), run the exit handlers (logging's flush, coverage's
    save), flush the standard streams, and ``os._exit``.
    """
    with contextlib.suppress(Exception):
        getattr(threading, "_shutdown", lambda: None)()
    with contextlib.suppress(Exception):
        getattr(atexit, "_run_exitfuncs", lambda: None)()
    flush_stdio()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
