"""uvicorn's h11 protocol with joined writes: a response leaves in one write, and nothing is lost on close."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from uvicorn.server import ServerState

from runner.local.one_write import JOIN_BYTES, JoinedWrites, OneWriteH11Protocol
from runner.testing.serving import serve_app


class _Recording(asyncio.Transport):
    """A transport that keeps what the protocol writes, one entry per write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


APP = Starlette(routes=[Route("/", _hello)])


def _serve_one(request: bytes) -> _Recording:
    async def go() -> _Recording:
        config = uvicorn.Config(APP, http=OneWriteH11Protocol, lifespan="off", log_level="warning")
        config.load()
        protocol = OneWriteH11Protocol(config, ServerState(), app_state={}, _loop=asyncio.get_running_loop())
        transport = _Recording()
        protocol.connection_made(transport)
        protocol.data_received(request)
        for _ in range(100):  # until the app has answered and the joined write has left
            await asyncio.sleep(0)
            if transport.writes and transport.writes[-1].endswith(b"}"):
                break
        return transport

    return asyncio.run(go())


def test_a_response_head_and_body_leave_in_one_write() -> None:
    transport = _serve_one(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body == b'{"hello":"world"}'
    assert not transport.closed


def test_a_response_that_closes_the_connection_is_written_before_the_close() -> None:
    transport = _serve_one(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert len(transport.writes) == 1
    assert transport.writes[0].endswith(b'{"hello":"world"}')
    assert transport.closed


def test_a_server_with_the_protocol_answers_a_real_client_on_one_connection() -> None:
    with serve_app(APP, http=OneWriteH11Protocol) as url, httpx.Client(base_url=url) as client:
        assert [client.get("/").json() for _ in range(3)] == [{"hello": "world"}] * 3


def test_writes_that_reach_the_join_limit_leave_at_once_in_order() -> None:
    async def go() -> list[bytes]:
        transport = _Recording()
        joined = JoinedWrites(transport, asyncio.get_running_loop())
        joined.write(b"head")
        joined.write(b"x" * JOIN_BYTES)
        sent_at_once = list(transport.writes)
        joined.write(b"tail")
        await asyncio.sleep(0)
        return [*sent_at_once, b"|", *transport.writes[len(sent_at_once) :]]

    assert asyncio.run(go()) == [b"head" + b"x" * JOIN_BYTES, b"|", b"tail"]
