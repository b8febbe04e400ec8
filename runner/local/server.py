"""The local platform's server: the app under uvicorn on 127.0.0.1, one per data directory.

``python -m runner.local.server serve --home DIR [--port N]`` is what the launcher starts in the background;
``qfrun platform serve`` runs ``serve`` in the foreground. The server holds ``serve.lock`` for its lifetime
and keeps ``platform.json`` (url and pid) exactly as long as it answers.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import filelock
import uvicorn

from runner import __version__
from runner.atomic import write_json
from runner.errors import PlatformError
from runner.local.credentials import LocalKeys
from runner.local.home import Home
from runner.local.launcher import TOKEN_ENV, remove_info, status
from runner.local.listen import loopback_listener
from runner.local.one_write import OneWriteH11Protocol

LOOPBACK = frozenset({"127.0.0.1", "localhost"})
log = logging.getLogger(__name__)


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
        try:
            sock = loopback_listener("127.0.0.1", port)
        except OSError as exc:
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
            create_app(home, token, keys),
            log_level="info",
            lifespan="on",
            access_log=False,
            http=OneWriteH11Protocol,
        )

        def started() -> None:
            write_json(home.info_path, info)
            if on_ready is not None:
                on_ready(url)

        server = _Server(config, started)
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
            remove_info(home, os.getpid())
    finally:
        lock.release()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.local.server")
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
