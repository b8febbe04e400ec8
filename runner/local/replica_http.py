"""The platform's HTTP/1.1 client for its own replicas: keep-alive connections, one write per request.

Every chat the platform serves is forwarded to a replica on 127.0.0.1, so this hop's cost is paid once per
chat. httpx spent about 1 ms of the platform's CPU on each (its pool bookkeeping, its models, a write for the
head and another for the body) where the whole chat on a 2-core machine has only a few; this client knows
the one peer it talks to (a uvicorn replica answering JSON with a ``Content-Length``) and does only that:
the request goes out in one write, the answer is read by its length, and the connection goes back to the
pool for the next chat.

A connection the replica closed while idle (uvicorn drops keep-alive connections after a few seconds) is
found out either before use or when the first read gets nothing at all; then the request is sent once more
on a new connection, which is safe because the replica closed before reading it. Any other failure is a
``ReplicaUnreachable`` (nothing came back) or ``ReplicaProtocolError`` (what came back is not HTTP/1.1 as a
replica speaks it), and the connection is closed rather than reused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a chat answer is a few KiB; a replica that sends more is broken
MAX_HEAD_BYTES = 64 * 1024
IDLE_PER_REPLICA = 32  # connections kept open per replica; more concurrent chats open (and close) their own


class ReplicaUnreachable(Exception):
    """No answer came back (refused, reset, timed out); the message is the underlying error's class name."""


class ReplicaProtocolError(ReplicaUnreachable):
    """An answer came back that is not an HTTP/1.1 response this client reads."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _StaleConnection(Exception):
    """A pooled connection was closed by the replica before it read the request."""


class ReplicaClient:
    """POSTs JSON to replicas over pooled keep-alive connections; ``aclose`` closes the idle ones."""

    def __init__(self, timeout_s: float = 300.0, connect_timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._idle: dict[tuple[str, int], list[_Connection]] = {}

    async def post(self, url: str, path: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST ``body`` (JSON) to ``url`` + ``path``; the status and body that came back."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"a replica is served over plain http on this machine, not at {url!r}")
        host, port = parts.hostname, parts.port or 80
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{head}\r\n"
        ).encode("latin-1") + body
        try:
            async with asyncio.timeout(self.timeout_s):
                pooled = self._take((host, port))
                if pooled is not None:
                    with contextlib.suppress(_StaleConnection):
                        return await self._exchange((host, port), pooled, request, reused=True)
                return await self._exchange((host, port), await self._connect(host, port), request)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            raise ReplicaUnreachable(error.__class__.__name__) from error
        except ValueError as error:  # a line longer than the reader's limit
            raise ReplicaProtocolError("LineTooLong") from error

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for _, writer in connections:
                writer.close()

    def _take(self, key: tuple[str, int]) -> _Connection | None:
        connections = self._idle.get(key, [])
        while connections:
            reader, writer = connections.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    async def _connect(self, host: str, port: int) -> _Connection:
        async with asyncio.timeout(self.connect_timeout_s):
            return await asyncio.open_connection(host, port, limit=MAX_HEAD_BYTES)

    async def _exchange(
        self, key: tuple[str, int], connection: _Connection, request: bytes, *, reused: bool = False
    ) -> Answer:
        reader, writer = connection
        done = False
        try:
            writer.write(request)
            try:
                status_line = await reader.readline()
            except ConnectionError:
                if reused:
                    raise _StaleConnection() from None
                raise
            if not status_line:
                if reused:
                    raise _StaleConnection()
                raise ReplicaProtocolError("EmptyResponse")
            status, keep_alive, length = _read_head(status_line, await _read_fields(reader))
            answer = Answer(status, await _read_body(reader, length))
            done = keep_alive
            return answer
        finally:
            if done and len(self._idle.setdefault(key, [])) < IDLE_PER_REPLICA:
                self._idle[key].append(connection)
            else:
                writer.close()


async def _read_fields(reader: asyncio.StreamReader) -> dict[bytes, bytes]:
    """The header fields up to the blank line that ends them (also a chunked body's trailer)."""
    fields: dict[bytes, bytes] = {}
    size = 0
    while (line := await reader.readline()) not in (b"\r\n", b"\n"):
        size += len(line)
        if not line or size > MAX_HEAD_BYTES:
            raise ReplicaProtocolError("BadHead")
        name, colon, value = line.partition(b":")
        if colon:
            fields[name.strip().lower()] = value.strip()
    return fields


def _read_head(status_line: bytes, fields: dict[bytes, bytes]) -> tuple[int, bool, int | None]:
    """The status, whether the connection stays open, and the body's length (None: chunked)."""
    words = status_line.split(None, 2)
    if len(words) < 2 or words[0] not in (b"HTTP/1.1", b"HTTP/1.0") or not words[1].isdigit():
        raise ReplicaProtocolError("BadStatusLine")
    keep_alive = words[0] == b"HTTP/1.1" and fields.get(b"connection", b"").lower() != b"close"
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        return int(words[1]), keep_alive, None
    length = fields.get(b"content-length", b"")
    if not length.isdigit() or int(length) > MAX_ANSWER_BYTES:
        raise ReplicaProtocolError("BadContentLength")
    return int(words[1]), keep_alive, int(length)


async def _read_body(reader: asyncio.StreamReader, length: int | None) -> bytes:
    if length is not None:
        return await reader.readexactly(length)
    chunks: list[bytes] = []
    size = 0
    while True:
        line = await reader.readline()
        try:
            chunk = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ReplicaProtocolError("BadChunk") from None
        size += chunk
        if size > MAX_ANSWER_BYTES:
            raise ReplicaProtocolError("AnswerTooLarge")
        if chunk == 0:
            await _read_fields(reader)  # the trailer, usually empty
            return b"".join(chunks)
        chunks.append(await reader.readexactly(chunk))
        await reader.readexactly(2)
