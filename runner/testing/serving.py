"""Serve an ASGI app for a test: uvicorn in a thread, on a free loopback port bound before it starts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from runner.local.listen import loopback_listener


@contextmanager
def serve_app(app: Any, http: Any = "h11") -> Iterator[str]:
    """Serve ``app`` (its lifespan included) until the block ends; yields ``http://127.0.0.1:<port>``.

    ``http`` is uvicorn's HTTP protocol (a name or a class)."""
    sock = loopback_listener("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", http=http))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "the platform's server thread ended while starting"
            assert time.monotonic() < deadline, "the platform did not start within 20 s"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
