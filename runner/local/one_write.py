"""uvicorn's h11 protocol with each response sent in one write, for the platform and its replicas.

uvicorn writes a response's status line and headers, then its body, as two ``transport.write`` calls, and
with ``TCP_NODELAY`` (``runner.local.listen``) each is a packet of its own: the client wakes up for the head,
finds no body and waits again. On 127.0.0.1 a write also runs the receiving side's TCP work in the writer's
system call, so on a busy 2-core machine every extra packet is an extra wake-up of the other process, and
the platform's sends were its largest single cost under 8 concurrent chats. Here the writes made in one turn
of the event loop are joined and sent together at the end of it; closing sends what is pending first, and
writes that reach ``JOIN_BYTES`` go at once, so a large download is still paced by the transport's flow
control (uvicorn waits before its next write while the real transport's buffer is full).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

JOIN_BYTES = 64 * 1024  # pending writes this large leave at once: joining only pays for small responses


class JoinedWrites:
    """A transport whose writes within one event-loop turn leave as one ``write`` of the real transport."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= JOIN_BYTES:  # a large body goes now, under the real transport's flow control
            self._flush()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)


class OneWriteH11Protocol(H11Protocol):
    """``uvicorn.Config(http=OneWriteH11Protocol)``: h11, with each response's writes joined."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        joined: Any = JoinedWrites(transport, self.loop)
        super().connection_made(joined)
