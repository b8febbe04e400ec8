"""The chat paths, called in-process: a request reaches a replica only when it is well formed and its service
serves, and whatever the replica answers comes back in the path's own shape (Qianfan v1 or OpenAI).

The replica here is a small ASGI app on the other side of ``forward``'s HTTP client: it answers as the
engine's replica does, or fails in the ways a replica can (no JSON, an error status, no answer at all).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from runner.local.api_services import CHAT_PATH, ChatError, forward, qianfan_reply
from runner.local.replica_http import ReplicaClient
from runner.local.rows import DEPLOYING
from runner.testing.serving import serve_app

if TYPE_CHECKING:
    from conftest import Api

ASK = {"messages": [{"role": "user", "content": "1+1=?"}]}
COMPLETION = {
    "id": "chatcmpl-1",
    "created": 1700000000,
    "choices": [{"message": {"role": "assistant", "content": "2"}, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


def _replica(answer: Response) -> Starlette:
    seen: list[dict[str, Any]] = []

    async def completions(request: Request) -> Response:
        seen.append({"body": await request.json(), "auth": request.headers.get("authorization")})
        return answer

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    app.state.seen = seen
    return app


def _forward(replica: Starlette, request: dict[str, Any]) -> dict[str, Any]:
    async def go(url: str) -> dict[str, Any]:
        client = ReplicaClient(timeout_s=30)
        try:
            return await forward(client, url, request, {"Authorization": "Bearer t"})
        finally:
            await client.aclose()

    with serve_app(replica) as url:
        return asyncio.run(go(url))


def test_forward_posts_the_openai_request_with_the_platforms_credentials() -> None:
    replica = _replica(JSONResponse(COMPLETION))
    assert _forward(replica, {"messages": ASK["messages"]}) == COMPLETION
    assert replica.state.seen == [{"body": {"messages": ASK["messages"]}, "auth": "Bearer t"}]


@pytest.mark.parametrize(
    ("answer", "status", "code", "message"),
    [
        (PlainTextResponse("oops", 500), 502, 336000, "answered 500 without JSON."),
        (JSONResponse({"error": {"message": "prompt too long"}}, 400), 400, 336003, "prompt too long"),
        (JSONResponse({"detail": "busy"}, 503), 503, 336000, "The replica answered 503."),
        (JSONResponse(["not", "an", "object"]), 200, 336000, "The replica answered 200."),
    ],
)
def test_a_replica_that_fails_is_a_chat_error_with_its_status_and_reason(
    answer: Response, status: int, code: int, message: str
) -> None:
    with pytest.raises(ChatError) as caught:
        _forward(_replica(answer), {"messages": ASK["messages"]})
    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.message.endswith(message)


def test_a_replica_that_does_not_answer_is_a_503_naming_it() -> None:
    async def go() -> None:
        # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
        await forward(ReplicaClient(timeout_s=5), "http://127.0.0.1:9", {"messages": []}, {})

    with pytest.raises(ChatError) as caught:
        asyncio.run(go())
    assert caught.value.status == 503
    assert caught.value.message == "The replica at http://127.0.0.1:9 did not answer: ConnectionRefusedError."


def test_an_openai_completion_becomes_the_qianfan_v1_shape() -> None:
    reply = qianfan_reply(COMPLETION, "req-1")
    assert reply == {
        "id": "req-1",
        "object": "chat.completion",
        "created": 1700000000,
        "result": "2",
        "is_truncated": True,
        "need_clear_history": False,
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
    empty = qianfan_reply({}, "req-2")
    assert (empty["result"], empty["is_truncated"], empty["usage"]["total_tokens"]) == ("", False, 0)


def _deploying_service(api: Api, model: Path, suffix: str) -> str:
    """A service row as CreateService leaves it while its replicas load (written to the store directly, so
    no replica process starts)."""
    version = api.call("model", "ImportLocalModel", {"name": "m", "path": str(model)})["modelId"]
    store = api.app.state.context.store
    service = store.create_service(
        service_id="svco-waiting", name="waiting", endpoint_suffix=suffix, model_version_id=version, params={}
    )
    store.update_service(service.id, status=DEPLOYING)
    return str(service.id)


def test_a_service_still_deploying_answers_503_on_both_chat_paths(
    asgi_api: Api, tmp_path: Path, fake_model: Callable[[Path], Path]
) -> None:
    service_id = _deploying_service(asgi_api, fake_model(tmp_path / "m"), "adder")
    qianfan = asgi_api.post(CHAT_PATH + "adder", ASK)
    assert qianfan.status_code == 503
    assert qianfan.json()["error_code"] == 336100
    assert qianfan.json()["error_msg"] == f"The service {service_id} for endpoint 'adder' is Deploying."
    assert qianfan.json()["id"] == qianfan.headers["X-Bce-Request-Id"]
    openai = asgi_api.post("/v1/chat/completions", {**ASK, "model": "adder"})
    assert openai.status_code == 503
    assert openai.json()["error"]["type"] == "server_error"
    assert openai.headers["X-Bce-Request-Id"].startswith("chatcmpl-")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({**ASK}, "needs 'model': a service's endpoint suffix."),
        ({**ASK, "model": ""}, "needs 'model': a service's endpoint suffix."),
        ({"model": "adder", "messages": []}, "'messages' must be a non-empty array."),
        ({"model": "adder", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0] needs a role"),
        ({"model": "adder", "messages": [{"role": "user", "content": 3}]}, "messages[0] needs a role"),
    ],
)
def test_an_openai_chat_that_is_malformed_is_an_invalid_request_error(
    asgi_api: Api, body: dict[str, Any], fragment: str
) -> None:
    response = asgi_api.post("/v1/chat/completions", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == 336003
    assert fragment in error["message"]


def test_chat_refuses_a_caller_without_credentials_in_each_shape(asgi_api: Api) -> None:
    qianfan = asgi_api.post(CHAT_PATH + "adder", ASK, token="")
    assert (qianfan.status_code, qianfan.json()["error_code"]) == (401, 13)
    openai = asgi_api.post("/v1/chat/completions", {**ASK, "model": "adder"}, token="")
    assert openai.status_code == 401
    assert openai.json()["error"]["type"] == "invalid_request_error"
    form = asgi_api.post(CHAT_PATH + "adder", content=b"x", headers={"Content-Type": "text/plain"})
    assert (form.status_code, form.json()["error_code"]) == (415, 336003)
    openai_form = asgi_api.post("/v1/chat/completions", content=b"x", headers={"Content-Type": "text/plain"})
    assert openai_form.status_code == 415
    assert "must be JSON" in openai_form.json()["error"]["message"]
