"""The platform's client for its replicas, against real servers on 127.0.0.1: it reuses one keep-alive
connection for chat after chat, sends a request again on a new connection when the replica had closed the
idle one, reads chunked answers, and names what went wrong when a peer does not speak HTTP/1.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from runner.local.replica_http import ReplicaClient, ReplicaProtocolError, ReplicaUnreachable
from runner.testing.serving import serve_app

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _echo_app(peers: list[tuple[str, int]]) -> Starlette:
    async def echo(request: Request) -> Response:
        assert request.client is not None
        peers.append((request.client.host, request.client.port))
        return JSONResponse({"got": await request.json(), "auth": request.headers.get("authorization")})

    async def chunked(request: Request) -> Response:
        async def parts() -> object:
            yield b'{"answer": '
            yield b'"in parts"}'

        return StreamingResponse(parts(), media_type="application/json")  # type: ignore[arg-type]

    return Starlette(
        routes=[Route("/echo", echo, methods=["POST"]), Route("/chunked", chunked, methods=["POST"])]
    )


async def _posts(url: str, path: str, count: int) -> list[tuple[int, bytes]]:
    client = ReplicaClient(timeout_s=10)
    try:
        answers = []
        for index in range(count):
            answer = await client.post(url, path, json.dumps({"n": index}).encode(), {"Authorization": "t"})
            answers.append((answer.status, answer.body))
        return answers
    finally:
        await client.aclose()


def test_chats_one_after_another_share_one_keep_alive_connection() -> None:
    peers: list[tuple[str, int]] = []
    with serve_app(_echo_app(peers)) as url:
        answers = asyncio.run(_posts(url, "/echo", 3))
    assert [(status, json.loads(body)) for status, body in answers] == [
        (200, {"got": {"n": index}, "auth": "t"}) for index in range(3)
    ]
    assert len(peers) == 3
    assert len(set(peers)) == 1


def test_a_chunked_answer_is_read_whole() -> None:
    with serve_app(_echo_app([])) as url:
        [(status, body)] = asyncio.run(_posts(url, "/chunked", 1))
    assert (status, json.loads(body)) == (200, {"answer": "in parts"})


def _raw_server(handler: Handler) -> Callable[[Callable[[str], Awaitable[object]]], object]:
    """Run ``use(url)`` against an asyncio server answering with ``handler``."""

    def run(use: Callable[[str], Awaitable[object]]) -> object:
        async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            finally:
                writer.close()

        async def go() -> object:
            server = await asyncio.start_server(closing, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            async with server:
                return await use(f"http://127.0.0.1:{port}")

        return asyncio.run(go())

    return run


def test_a_connection_the_replica_closed_while_idle_is_replaced_by_a_new_one() -> None:
    connections: list[int] = []

    async def answer_once_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(7)
        # keep-alive by HTTP/1.1's rules, then closed anyway, as uvicorn closes an idle connection
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    answers = _raw_server(answer_once_then_hang_up)(lambda url: _posts(url, "/", 2))
    assert answers == [(200, b"{}"), (200, b"{}")]
    assert len(connections) == 2


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "BadStatusLine"),
        (b"HTTP/1.1 200 OK\r\n\r\n{}", "BadContentLength"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", "BadChunk"),
    ],
)
def test_an_answer_that_is_not_http_as_a_replica_speaks_it_is_a_protocol_error(
    reply: bytes, error: str
) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    with pytest.raises(ReplicaProtocolError, match=f"^{error}$"):
        _raw_server(answer)(lambda url: _posts(url, "/", 1))


def test_a_replica_that_hangs_up_without_answering_is_unreachable() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    with pytest.raises(ReplicaUnreachable, match=r"^EmptyResponse$"):
        _raw_server(hang_up)(lambda url: _posts(url, "/", 1))


def test_a_replica_that_answers_too_late_is_a_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes

    async def post(url: str) -> object:
        try:
            return await ReplicaClient(timeout_s=0.2).post(url, "/", b"{}", {})
        finally:
            await asyncio.sleep(0.05)  # the server's side sees the close before the loop ends

    with pytest.raises(ReplicaUnreachable, match=r"^TimeoutError$"):
        _raw_server(silent)(post)
