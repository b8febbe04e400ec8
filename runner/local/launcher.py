"""Finding, starting and stopping the local platform's server: what ``qfrun run`` and ``qfrun platform`` use.

This module imports no server code (no uvicorn, no app, no store): a run that finds the platform already
up pays for none of it, and one that starts it launches ``python -m runner.local.server`` in a session of its
own. A server writes ``platform.json`` (url and pid, never the token) into its data directory once it
answers, and removes it when it exits, so ``status`` and ``ensure_running`` find a live platform without
guessing ports. ``start`` holds ``start.lock`` while it launches one, so two ``qfrun run`` starting at once
share a single server. A token the user set reaches a background server through its environment, never its
command line; otherwise both sides read the home's ``credentials.json`` (``runner.local.credentials``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock
import httpx

from runner.errors import PlatformUnavailable
from runner.local.credentials import effective, load_or_create
from runner.local.home import Home
from runner.local.processes import pid_alive

TOKEN_ENV = "QFRUN_LOCAL_TOKEN"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0
MAX_RESTARTS = 3  # in one run: a platform that keeps dying has a cause a restart will not fix
# A detached start: a short-lived launcher starts the server in a session of its own and exits, so the server
# is never this process's child — never left a zombie while qfrun runs on, never a "still running" subprocess.
_LAUNCHER = (
    "import subprocess, sys\n"
    "with open(sys.argv[1], 'ab') as sink:\n"
    "    server = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,\n"
    "                              start_new_session=True)\n"
    "print(server.pid)\n"
)


@dataclass(frozen=True)
class Endpoint:
    """Where a running platform answers, and the token to send it (hidden from repr)."""

    url: str
    token: str = field(default="", repr=False)


@dataclass(frozen=True)
class Status:
    """A running platform as ``platform.json`` and its ``/healthz`` describe it."""

    url: str
    pid: int
    home: Path
    healthy: bool
    version: str = ""
    started_at: str = ""
    token_required: bool = False


def remove_info(home: Home, pid: int) -> None:
    info = read_info(home)
    if info is not None and info.get("pid") == pid:
        home.info_path.unlink(missing_ok=True)


def read_info(home: Home) -> dict[str, Any] | None:
    try:
        info = json.loads(home.info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("pid"), int) else None


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def status(home: Home) -> Status | None:
    """The running platform of ``home``, or None (a stale ``platform.json`` of a dead process is removed)."""
    info = read_info(home)
    if info is None:
        return None
    if not pid_alive(info["pid"]):
        remove_info(home, info["pid"])
        return None
    url = str(info.get("url", ""))
    return Status(
        url=url,
        pid=info["pid"],
        home=home.root,
        healthy=_healthy(url),
        version=str(info.get("version", "")),
        started_at=str(info.get("started_at", "")),
        token_required=bool(info.get("token_required", False)),
    )


def start(home: Home, token: str | None = None, port: int = 0) -> Endpoint:
    """Start a background platform for ``home`` (or reuse the live one) and wait until it answers.

    ``port`` 0 lets the system pick a free one; a restart asks for the port the platform had, so that every
    client holding its URL reaches it again."""
    home.ensure()
    with filelock.FileLock(str(home.root / "start.lock"), timeout=START_TIMEOUT + 10):
        # A token the user chose goes to the server in its environment; the home's own it reads itself.
        given, token = token, token or load_or_create(home).token
        running = status(home)
        if running is not None and running.healthy:
            return Endpoint(running.url, token)
        env = {key: value for key, value in os.environ.items() if key != TOKEN_ENV}
        if given:
            env[TOKEN_ENV] = given
        pid = _launch(
            [
                sys.executable,
                "-m",
                "runner.local.server",
                "serve",
                "--home",
                str(home.root),
                "--port",
                str(port),
            ],
            home,
            env,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                raise PlatformUnavailable(
                    f"The local platform for {home.root} exited while starting; see {home.log_path}: "
                    f"{_log_tail(home.log_path)}"
                )
            info = read_info(home)
            if info is not None and info["pid"] == pid and _healthy(str(info["url"])):
                return Endpoint(str(info["url"]), token)
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        raise PlatformUnavailable(
            f"The local platform for {home.root} did not answer within {START_TIMEOUT:.0f} s; "
            f"see {home.log_path}."
        )


def _launch(command: list[str], home: Home, env: dict[str, str]) -> int:
    """Start ``command`` detached (see _LAUNCHER), its output appended to the platform log; its pid."""
    # The launcher opens the log under qfrun's umask, not the server's 077: create it this user's alone.
    os.close(os.open(home.log_path, os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW, 0o600))
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(home.log_path), *command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise PlatformUnavailable(
            f"The local platform for {home.root} could not be started: {done.stderr.strip()[-300:]}"
        )
    return int(done.stdout)


def stop(home: Home) -> bool:
    """Stop the running platform of ``home`` (SIGTERM, then SIGKILL after 30 s); False when none ran."""
    info = read_info(home)
    if info is None or not pid_alive(info["pid"]):
        if info is not None:
            remove_info(home, info["pid"])
        return False
    pid = int(info["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    remove_info(home, pid)
    return True


def ensure_running(home: Home | None = None) -> Endpoint:
    """What ``qfrun run`` calls: the live platform of ``home`` (default: ``Home.default()``) or a new one."""
    home = home or Home.default()
    running = status(home)
    if running is not None and running.healthy:
        return Endpoint(running.url, effective(home, os.environ).token)
    return start(home, os.environ.get(TOKEN_ENV, "").strip() or None)


def token_for(url: str, home: Home | None = None) -> str | None:
    """The token of the platform of ``home`` when it is the one serving ``url``, else None: a pipeline's
    ``platform.url`` gets this user's token only when it names this user's own platform (another port on
    127.0.0.1 may be anyone's)."""
    home = home or Home.default()
    info = read_info(home)
    if info is None or str(info.get("url", "")).rstrip("/") != url.rstrip("/"):
        return None
    return effective(home, os.environ).token


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)."
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept) if kept else "(empty log)."


class RestartingTransport(httpx.BaseTransport):
    """The transport to a platform this qfrun started: a refused connection starts it again, same port.

    When the platform's server dies during a run (killed, out of memory), the next request finds nothing
    listening. A refused connection never reached a server, so sending the request again is safe even for
    a create; the server restarted on the same address recovers its tasks from its store and the run goes
    on attached to them, instead of ending with exit 5 and redoing work on the next run.
    """

    def __init__(self, home: Home, url: str, token: str | None, inner: httpx.BaseTransport | None = None):
        self._home, self._token = home, token
        self._port = httpx.URL(url).port or 0
        self._inner = inner or httpx.HTTPTransport()
        self.restarts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._inner.handle_request(request)
        except httpx.ConnectError:
            if request.url.port != self._port or self.restarts >= MAX_RESTARTS:
                raise
        self.restarts += 1
        start(self._home, self._token, port=self._port)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()
