"""A replica's batching as a client meets it: uvicorn on a loopback port, real connections.

Concurrent greedy chats with their own token limits get the answers they get one at a time; a full queue is
a 429 with Retry-After while the queued chats are still answered; a client that hangs up before its batch
starts is dropped without disturbing the chats around it."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow  # imports the model runtime

pytest.importorskip("torch")

from runner.local.access import Gate  # noqa: E402
from runner.local.engine import serve  # noqa: E402
from runner.testing.held_generate import HeldGenerate  # noqa: E402
from runner.testing.serving import serve_app  # noqa: E402

TOKEN = "replica-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def chat(question: str, **settings: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}], **settings}


@pytest.fixture
def replica(adder: Any) -> Iterator[Callable[..., str]]:
    """A function that starts a replica with the given create_app options and returns its URL."""
    with ExitStack() as stack:
        yield lambda **options: stack.enter_context(
            serve_app(serve.create_app(adder, "adder", gate=Gate(TOKEN, None), **options))
        )


def _waiting(client: httpx.Client) -> int:
    return int(client.get("/healthz").json()["waiting"])


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_concurrent_greedy_chats_get_the_answers_they_get_one_at_a_time(
    replica: Callable[..., str], eval_rows: list[dict[str, Any]]
) -> None:
    url = replica()
    bodies = [chat(row["prompt"], max_tokens=1 + index % 5) for index, row in enumerate(eval_rows[:24])]
    bodies[5]["stop"] = ["0", "9"]
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:

        def ask(body: dict[str, Any]) -> tuple[str, str, int]:
            answer = client.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200, answer.text
            data = answer.json()
            choice = data["choices"][0]
            return choice["message"]["content"], choice["finish_reason"], data["usage"]["completion_tokens"]

        alone = [ask(body) for body in bodies]
        before = client.get("/healthz").json()
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(ask, bodies))
        after = client.get("/healthz").json()
    assert together == alone
    assert after["chats"] - before["chats"] == len(bodies)


def test_a_full_queue_is_a_429_with_retry_after_and_the_queued_chats_are_still_answered(
    replica: Callable[..., str], held: HeldGenerate
) -> None:
    url = replica(max_batch=1, max_waiting=1)
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client, ThreadPoolExecutor(2) as pool:
        running = pool.submit(client.post, "/v1/chat/completions", json=chat("a"))
        assert held.entered.wait(20)
        queued = pool.submit(client.post, "/v1/chat/completions", json=chat("b"))
        _wait_for(lambda: _waiting(client) == 1, '"b" to queue')
        refused = client.post("/v1/chat/completions", json=chat("c"))
        held.release.set()
        answers = [future.result().json()["choices"][0]["message"]["content"] for future in (running, queued)]
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["error"] == {
        "message": "The service has 1 chats waiting already; try again shortly.",
        "type": "rate_limit_error",
        "param": None,
        "code": None,
    }
    assert answers == ["a", "b"]
    assert "c" not in [question for batch in held.batches for question in batch]


def test_a_client_that_hangs_up_before_its_batch_is_dropped_and_the_others_are_answered(
    replica: Callable[..., str], held: HeldGenerate
) -> None:
    url = replica()
    port = int(url.rsplit(":", 1)[1])
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client, ThreadPoolExecutor(2) as pool:
        running = pool.submit(client.post, "/v1/chat/completions", json=chat("a"))
        assert held.entered.wait(20)
        body = b'{"messages": [{"role": "user", "content": "gone"}]}'
        with socket.create_connection(("127.0.0.1", port)) as leaving:
            leaving.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            _wait_for(lambda: len(held.batches) == 1 and _waiting(client) == 1, "the chat to queue")
        _wait_for(lambda: client.get("/healthz").json()["dropped"] == 1, "the replica to drop the chat")
        stays = pool.submit(client.post, "/v1/chat/completions", json=chat("stays"))
        held.release.set()
        answers = [future.result().json()["choices"][0]["message"]["content"] for future in (running, stays)]
    assert answers == ["a", "stays"]
    assert held.batches == [["a"], ["stays"]]
