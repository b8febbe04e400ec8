"""The real local platform app inside the test's own process: ASGI calls and its lifespan, no socket.

``serving.serve_app`` puts uvicorn in front of the app, which is what a client meets; this module skips the
socket, so a test of a handler's answers costs a function call. The client is a plain ``httpx.Client``
whose transport hands each request to ``httpx.ASGITransport`` on an event loop in a helper thread (anyio's
blocking portal), the loop the app's lifespan runs on, so the task runner and the service manager start
and stop with the block as they do under uvicorn. An exception that escapes the app is raised in the test
(``ASGITransport`` re-raises it): a handler that would answer with a traceback fails the test instead.

Starlette's ``TestClient`` does the same, but warns that its httpx support is deprecated, and the suite
turns warnings into errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from starlette.applications import Starlette

from runner.local.app import create_app
from runner.local.credentials import LocalKeys
from runner.local.home import Home

# The app refuses a Host that is not a loopback name (DNS rebinding), so requests go to a loopback URL;
# the port is only a name here, nothing listens on it.
BASE_URL = "http://127.0.0.1:8765"


class _PortalTransport(httpx.BaseTransport):
    """A sync transport that runs each request through ``ASGITransport`` on the portal's event loop."""

    def __init__(self, portal: BlockingPortal, app: Starlette) -> None:
        self._portal = portal
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            answer = await self._asgi.handle_async_request(request)
            content = await answer.aread()
            return httpx.Response(answer.status_code, headers=answer.headers, content=content)

        return self._portal.call(send)


@contextmanager
def in_process(
    home: Home, token: str | None = None, keys: LocalKeys | None = None
) -> Iterator[tuple[httpx.Client, Starlette]]:
    """``create_app(home, token, keys)`` with its lifespan running, and a client that calls it directly."""
    app = create_app(home, token, keys)
    with in_process_app(app) as client:
        yield client, app


@contextmanager
def in_process_app(app: Starlette) -> Iterator[httpx.Client]:
    """Any of the platform's apps (the platform, a replica) with its lifespan running, called directly."""
    with start_blocking_portal() as portal:
        lifespan: Any = app.router.lifespan_context(app)
        portal.call(lifespan.__aenter__)
        try:
            with httpx.Client(transport=_PortalTransport(portal, app), base_url=BASE_URL) as client:
                yield client
        finally:
            portal.call(lifespan.__aexit__, None, None, None)
