"""A transport lent to a short-lived client, which that client's ``close`` must not close.

``httpx.Client.close`` closes its transport, and closing a transport closes every connection of its pool.
The platform client lends its transport (on the local platform, the one that restarts the server) to each
BOS client and export download it opens for a moment; when one of those closed it, the requests that other
stages had in flight on the same pool lost their sockets mid-read (``ReadError: [Errno 9] Bad file
descriptor``), and a create became ambiguous. A borrowed transport sends through the lender's pool and
leaves closing it to the lender.
"""

from __future__ import annotations

import httpx


class Borrowed(httpx.BaseTransport):
    """Sends through ``lender``; ``close`` leaves it open (its owner closes it)."""

    def __init__(self, lender: httpx.BaseTransport) -> None:
        self.lender = lender

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.lender.handle_request(request)

    def close(self) -> None:
        """Nothing: the connections are the lender's, and other requests may be using them."""


def borrowed(transport: httpx.BaseTransport | None) -> httpx.BaseTransport | None:
    """``transport`` wrapped so that a client closing it leaves it open; ``None`` (a pool of the client's
    own, which it closes) as it is."""
    return None if transport is None else Borrowed(transport)
