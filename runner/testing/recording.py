"""A real HTTP transport that remembers what it sent, for tests that count a client's requests."""

from __future__ import annotations

import httpx


class Recording(httpx.HTTPTransport):
    """Sends every request; ``sent`` lists each as ``"POST CreateDataset"`` (the console's action) or
    ``"PUT /bucket/key"`` (its method and path)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        action = request.url.params.get("Action")
        self.sent.append(f"{request.method} {action or request.url.path}")
        return super().handle_request(request)
