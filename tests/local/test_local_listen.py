"""The servers' listening socket: asyncio turns Nagle off on what it accepts (no 40 ms delayed-ACK stalls)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from runner.local.listen import loopback_listener


async def _accepted_nodelay(sock: socket.socket) -> int:
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    try:
        port = sock.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        value = await asyncio.wait_for(seen, 10)
        writer.close()
        return value
    finally:
        server.close()


def test_connections_accepted_on_the_listener_have_nagle_off() -> None:
    assert asyncio.run(_accepted_nodelay(loopback_listener("127.0.0.1", 0))) != 0


def test_a_plain_stream_socket_would_keep_nagle_on_which_is_why_the_helper_exists() -> None:
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    plain.bind(("127.0.0.1", 0))
    plain.listen()
    assert asyncio.run(_accepted_nodelay(plain)) == 0


def test_a_taken_port_is_an_os_error_for_the_caller_to_word() -> None:
    first = loopback_listener("127.0.0.1", 0)
    try:
        with pytest.raises(OSError, match="in use"):
            # SO_REUSEADDR does not let a second socket listen on a port that one is listening on
            loopback_listener("127.0.0.1", first.getsockname()[1]).close()
    finally:
        first.close()
