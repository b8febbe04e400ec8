"""Limits hold while a request streams: an oversized body is cut off as it arrives, and a chat that would
hold a service too long (a huge prompt, too many generated tokens) is refused before it reaches a replica,
each in the route's documented error envelope."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.local.api_services import ChatError, chat_request, forward
from runner.local.app import MAX_BODY_BYTES, create_app
from runner.local.bodies import CHAT_BODY_BYTES
from runner.local.chat_limits import DEFAULT_PROMPT_CHARS, MAX_OUTPUT_TOKENS
from runner.local.home import Home
from runner.local.replica_http import ReplicaClient
from runner.testing.serving import serve_app

TOKEN = "limits-token"
CHAT = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/adder"
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Starlette:
    return create_app(Home(tmp_path_factory.mktemp("limits") / "home"), TOKEN)


def _call(
    app: Starlette, path: str, headers: dict[str, str], chunks: Iterator[bytes]
) -> tuple[int, Any, int]:
    """POST ``chunks`` straight through ASGI; the status, the JSON answer and how many chunks were read."""
    read = 0
    answer: list[bytes] = []
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        chunk = next(chunks, None)
        read += chunk is not None
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            answer.append(message.get("body", b""))

    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path.split("?")[0],
        "raw_path": path.split("?")[0].encode(),
        "query_string": path.partition("?")[2].encode(),
        "headers": [(b"host", b"127.0.0.1:8765"), *raw_headers],
        "server": ("127.0.0.1", 8765),
        "client": ("127.0.0.1", 5000),
    }
    asyncio.run(app(scope, receive, send))
    return status[0], json.loads(b"".join(answer)), read


def _endless() -> Iterator[bytes]:
    block = b" " * CHUNK
    while True:
        yield block


AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def test_a_chat_body_without_a_length_is_cut_off_at_the_limit_while_it_streams(app: Starlette) -> None:
    status, body, read = _call(app, CHAT, AUTH, _endless())
    assert status == 413
    assert body["error_code"] == 336003
    assert f"larger than the limit of {CHAT_BODY_BYTES} bytes" in body["error_msg"]
    assert read == CHAT_BODY_BYTES // CHUNK + 1  # not one chunk more than it takes to pass the limit


def test_a_declared_length_over_the_limit_is_refused_before_a_byte_is_read(app: Starlette) -> None:
    headers = {**AUTH, "Content-Length": str(MAX_BODY_BYTES + 1)}
    path = "/v2/dataset?Action=ImportLocalDataset"
    status, body, read = _call(app, path, headers, _endless())
    assert (status, body["code"], read) == (413, "InvalidParameter", 0)
    assert set(body) == {"requestId", "code", "message"}
    status, body, read = _call(app, "/wenxinworkshop/dataset/info", headers, _endless())
    assert (status, read) == (200, 0)  # the v1 envelope: HTTP 200, the refusal in the body
    assert body["error_code"] == 336003


class Client:
    """Sync calls through ``httpx.ASGITransport`` (in process, no socket)."""

    def __init__(self, app: Starlette) -> None:
        self.transport = httpx.ASGITransport(app=app)

    def post_raw(self, path: str, raw: bytes) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://127.0.0.1:8765") as c:
                return await c.post(path, content=raw, headers=AUTH)

        return asyncio.run(go())

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.post_raw(path, json.dumps(body).encode())


@pytest.fixture
def client(app: Starlette) -> Client:
    return Client(app)


def _ask(content: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **extra}


def test_a_prompt_over_the_limit_never_reaches_a_service(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = client.post(CHAT, _ask("9" * (DEFAULT_PROMPT_CHARS + 1)))
    assert refused.status_code == 400
    assert refused.json()["error_code"] == 336003
    assert (
        f"the limit is {DEFAULT_PROMPT_CHARS} (QFRUN_LOCAL_MAX_PROMPT_CHARS)" in refused.json()["error_msg"]
    )
    # At the limit the request passes every check and looks for its service, which does not exist.
    assert client.post(CHAT, _ask("9" * DEFAULT_PROMPT_CHARS)).status_code == 404
    monkeypatch.setenv("QFRUN_LOCAL_MAX_PROMPT_CHARS", "10")
    assert client.post(CHAT, _ask("12345+67890=?")).status_code == 400
    many = {"messages": [{"role": "user", "content": "1"}] * 257}
    assert "the limit is 256" in client.post(CHAT, many).json()["error_msg"]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"max_output_tokens": MAX_OUTPUT_TOKENS + 1}, f"between 1 and {MAX_OUTPUT_TOKENS}"),
        ({"max_tokens": 0}, "'max_tokens' must be between 1"),
        ({"max_output_tokens": 2**80}, "not a number of 25 digits"),
        ({"seed": -1}, "'seed' must be between 0 and 4294967295"),
        ({"temperature": 3}, "'temperature' must be between 0 and 2"),
        ({"top_p": 0}, "'top_p' must be between 0 and 1"),
        ({"temperature": "hot"}, "'temperature' must be a number"),
        ({"temperature": 10**400}, "'temperature' must be between 0 and 2"),  # too big for a float
        ({"seed": -(10**400)}, "not a number of 401 digits"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "'stop' must be a list of 1 to 4 strings"),
        ({"stop": ["x" * 21]}, "of 1 to 20 characters"),
        ({"stop": [""]}, "'stop' must be a list"),
        ({"stop": 7}, "not 7"),
    ],
)
def test_generation_settings_out_of_range_are_refused_on_both_chat_paths(
    client: Client, extra: dict[str, Any], fragment: str
) -> None:
    qianfan = client.post(CHAT, _ask("1+1=?", **extra))
    assert qianfan.status_code == 400
    assert fragment in qianfan.json()["error_msg"]
    openai = client.post("/v1/chat/completions", _ask("1+1=?", model="adder", **extra))
    assert openai.status_code == 400
    assert openai.json()["error"]["type"] == "invalid_request_error"
    assert fragment in openai.json()["error"]["message"]


def test_nan_infinity_and_deep_nesting_are_not_json(client: Client) -> None:
    for raw in (b'{"messages": [], "temperature": NaN}', b'{"a": -Infinity}', b"[" * 100 + b"]" * 100):
        response = client.post_raw(CHAT, raw)
        assert response.status_code == 400
        assert "not valid JSON" in response.json()["error_msg"]
        console = client.post_raw("/v2/model?Action=DescribeModel", raw)
        assert console.status_code == 400
        assert console.json()["code"] == "InvalidParameter"


def test_stop_strings_pass_to_the_replica_as_a_list() -> None:
    assert chat_request(_ask("1+1=?", stop="5"), "chat")["stop"] == ["5"]
    assert chat_request(_ask("1+1=?", stop=["5", "\n"]), "chat")["stop"] == ["5", "\n"]
    assert "stop" not in chat_request(_ask("1+1=?"), "chat")


def test_a_replica_with_a_full_queue_is_qianfans_qps_limit_error_through_the_platform() -> None:
    async def full(request: Request) -> JSONResponse:
        return JSONResponse({"error": {"message": "The service has 256 chats waiting already."}}, 429)

    busy = Starlette(routes=[Route("/v1/chat/completions", full, methods=["POST"])])

    async def call(url: str) -> None:
        client = ReplicaClient()
        try:
            await forward(client, url, {"messages": []}, {})
        finally:
            await client.aclose()

    with serve_app(busy) as url, pytest.raises(ChatError) as caught:
        asyncio.run(call(url))
    assert (caught.value.status, caught.value.code) == (429, 18)  # the SDK and qfrun retry code 18
    assert caught.value.message == "The service has 256 chats waiting already."
