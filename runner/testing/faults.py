"""A transport that loses answers and refuses requests on cue, in front of a real platform.

It stands between ``PlatformClient`` and the platform it talks to (the real local platform on 127.0.0.1 in
the tests), so faults happen where they happen in life: on the wire, after or before the server acted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

Match = Callable[[httpx.Request], bool]


def action(prefix: str) -> Match:
    """Requests whose console action (``?Action=`` or the last path segment) starts with ``prefix``."""

    def matches(request: httpx.Request) -> bool:
        name = request.url.params.get("Action") or request.url.path.rsplit("/", 1)[-1]
        return name.startswith(prefix)

    return matches


@dataclass
class Fault:
    match: Match
    times: int
    after_server: bool  # True: the server handles the request, then the answer is lost


@dataclass
class FaultyTransport(httpx.BaseTransport):
    inner: httpx.BaseTransport
    faults: list[Fault] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def lose_answer(self, match: Match, times: int = 1) -> None:
        """The next ``times`` matching requests reach the server; their answers never come back."""
        self.faults.append(Fault(match, times, after_server=True))

    def refuse(self, match: Match, times: int = 1) -> None:
        """The next ``times`` matching requests never reach the server (connection refused)."""
        self.faults.append(Fault(match, times, after_server=False))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fault = next((f for f in self.faults if f.times > 0 and f.match(request)), None)
        if fault is None:
            return self.inner.handle_request(request)
        fault.times -= 1
        self.log.append(f"{'lost answer' if fault.after_server else 'refused'}: {request.url}")
        if fault.after_server:
            self.inner.handle_request(request).read()
            raise httpx.ReadTimeout("the answer was lost on the way back", request=request)
        raise httpx.ConnectError("the connection was refused", request=request)

    def close(self) -> None:
        self.inner.close()
