"""Running the local platform: in the foreground (``serve``) or as a background process (``start``/``stop``).

A server writes ``platform.json`` (url and pid, never the token) into its data directory once it answers,
and removes it when it exits, so ``status`` and ``ensure_running`` find a live platform without guessing
ports. One server per data directory: it holds ``serve.lock`` for its lifetime, and ``start`` holds
``start.lock`` while it launches one, so two ``qfrun run`` starting at once share a single server. A token
the user set reaches a background server through its environment, never its command line; otherwise both
sides read the home's ``credentials.json`` (``runner.local.credentials``).

``python -m runner.local.daemon serve --home DIR [--port N]`` is what ``start`` launches.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock
import httpx
import uvicorn

from runner import __version__
from runner.errors import PlatformError, PlatformUnavailable
from runner.local.access import LocalKeys
from runner.local.credentials import effective, load_or_create
from runner.local.home import Home, write_json_atomic
from runner.local.workers import pid_alive

TOKEN_ENV = "QFRUN_LOCAL_TOKEN"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0
LOOPBACK = frozenset({"127.0.0.1", "localhost"})
log = logging.getLogger(__name__)
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


class _Server(uvicorn.Server):
    """uvicorn's server, writing ``platform.json`` once it has started (the app's lifespan ran)."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()


def serve(
    home: Home,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    on_ready: Callable[[str], None] | None = None,
    keys: LocalKeys | None = None,
) -> None:
    """Serve the platform in this process until SIGINT/SIGTERM; ``platform.json`` lives as long as it does.

    ``on_ready(url)`` is called once the platform answers (the CLI tells the user where it is).
    """
    from runner.local.app import create_app

    if host not in LOOPBACK:
        raise PlatformError(f"The local platform binds to 127.0.0.1 only; {host} was asked for.")
    home.ensure()
    lock = filelock.FileLock(str(home.root / "serve.lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        running = status(home)
        where = f" at {running.url} (pid {running.pid})" if running else ""
        raise PlatformError(f"Another local platform already serves {home.root}{where}.") from None
    # Everything the platform writes (its database, models, datasets, objects, logs) is this user's alone:
    # other local users may not read what a pipeline uploaded. Set once the lock is ours, so a refused
    # second serve leaves its process's umask alone.
    os.umask(0o077)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            sock.close()
            raise PlatformError(
                f"The local platform cannot listen on 127.0.0.1:{port}: {exc.strerror}."
            ) from exc
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        info = {
            "url": url,
            "pid": os.getpid(),
            "home": str(home.root),
            "version": __version__,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "token_required": True,  # always: the home's own token when the user set none
        }
        config = uvicorn.Config(
            create_app(home, token, keys), log_level="info", lifespan="on", access_log=False
        )

        def started() -> None:
            write_json_atomic(home.info_path, info)
            if on_ready is not None:
                on_ready(url)

        server = _Server(config, started)
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
            _remove_info(home, os.getpid())
    finally:
        lock.release()


def _remove_info(home: Home, pid: int) -> None:
    info = _read_info(home)
    if info is not None and info.get("pid") == pid:
        home.info_path.unlink(missing_ok=True)


def _read_info(home: Home) -> dict[str, Any] | None:
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
    info = _read_info(home)
    if info is None:
        return None
    if not pid_alive(info["pid"]):
        _remove_info(home, info["pid"])
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


def start(home: Home, token: str | None = None) -> Endpoint:
    """Start a background platform for ``home`` (or reuse the live one) and wait until it answers."""
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
            [sys.executable, "-m", "runner.local.daemon", "serve", "--home", str(home.root)], home, env
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                raise PlatformUnavailable(
                    f"The local platform for {home.root} exited while starting; see {home.log_path}: "
                    f"{_log_tail(home.log_path)}"
                )
            info = _read_info(home)
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
    info = _read_info(home)
    if info is None or not pid_alive(info["pid"]):
        if info is not None:
            _remove_info(home, info["pid"])
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
    _remove_info(home, pid)
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
    info = _read_info(home)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.local.daemon")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the local platform in the foreground")
    run.add_argument("--home", type=Path, default=None)
    run.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    home = Home(args.home.resolve()) if args.home else Home.default()
    try:
        keys = LocalKeys.from_env(os.environ)
        serve(home, port=args.port, token=os.environ.get(TOKEN_ENV) or None, keys=keys)
    except PlatformError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
