"""A replica's app called in-process (ASGI, no port) on the demo model: request parsing refuses every bad
body with a sentence naming the field and never raises anything else, concurrent requests are batched by
their parameters, and a generation that fails is each waiting request's 500, not a hung request."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow  # imports the model runtime

pytest.importorskip("torch")

from runner.local.access import Gate  # noqa: E402
from runner.local.engine import serve  # noqa: E402
from runner.local.engine.inference import Generation, InferenceParams  # noqa: E402
from runner.testing.in_process import in_process_app  # noqa: E402

TOKEN = "replica-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ASK = {"messages": [{"role": "user", "content": "23+45=?"}], "max_tokens": 5}

VALUES = st.none() | st.booleans() | st.integers(-5, 10**12) | st.floats() | st.text(max_size=5)
MESSAGE = st.fixed_dictionaries(
    {},
    optional={"role": st.sampled_from(["user", "system", "assistant", "tool", 3]), "content": VALUES},
)
BODY = (
    st.fixed_dictionaries(
        {},
        optional={
            "messages": st.lists(MESSAGE, max_size=3) | VALUES,
            "temperature": VALUES,
            "top_p": VALUES,
            "top_k": VALUES,
            "seed": VALUES,
            "max_tokens": VALUES,
            "max_completion_tokens": VALUES,
            "stream": VALUES,
        },
    )
    | VALUES
    | st.lists(VALUES, max_size=2)
)


@settings(max_examples=300, deadline=None)
@given(body=BODY)
def test_any_body_is_parsed_or_refused_with_a_sentence_never_another_error(body: Any) -> None:
    try:
        messages, params = serve.parse_chat(body)
    except serve.RequestError as error:
        refusal: serve.RequestError | None = error
    else:
        refusal = None
        assert any(m["role"] == "user" for m in messages)
        params.check()  # what parse_chat returns is always within bounds
    if refusal is not None:
        assert str(refusal).endswith("."), str(refusal)
        assert 400 <= refusal.status < 500


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"messages": ASK["messages"], "stream": True}, "stream", "Streaming is not supported"),
        ({"messages": ASK["messages"], "seed": -1}, "seed", "'seed' must be between 0 and"),
        ({"messages": ASK["messages"], "temperature": 2.5}, "temperature", "between 0 and 2, not 2.5"),
        ({"messages": ASK["messages"], "top_k": 1.5}, "top_k", "'top_k' must be a integer"),
        ({"messages": ASK["messages"], "max_tokens": True}, "max_tokens", "'max_tokens' must be a integer"),
        ({"messages": ASK["messages"], "top_p": float("inf")}, "top_p", "'top_p' must be a number"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages", "has no user message"),
        (
            {"messages": [{"role": "user", "content": 5}]},
            "messages[0]",
            "messages[0].content must be a string",
        ),
        ({"messages": []}, "messages", "'messages' must be a non-empty list"),
    ],
)
def test_each_refusal_names_its_field(body: dict[str, Any], param: str, message: str) -> None:
    with pytest.raises(serve.RequestError) as caught:
        serve.parse_chat(body)
    assert caught.value.param == param
    assert message in str(caught.value)


def test_max_completion_tokens_is_read_like_max_tokens() -> None:
    _, params = serve.parse_chat({"messages": ASK["messages"], "max_completion_tokens": 7, "seed": 3})
    assert (params.max_output_tokens, params.seed) == (7, 3)


@pytest.fixture
def replica(adder: Any) -> Iterator[httpx.Client]:
    app = serve.create_app(adder, "adder", max_batch=8, gate=Gate(TOKEN, None))
    with in_process_app(app) as client:
        yield client


def test_a_chat_in_process_answers_in_openai_shape(replica: httpx.Client) -> None:
    answer = replica.post("/v1/chat/completions", json=ASK, headers=AUTH)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "68"}
    assert body["model"] == "adder"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    cards = replica.get("/v1/models", headers=AUTH).json()["data"]
    assert [card["id"] for card in cards] == ["adder"]


def test_requests_without_the_token_and_paths_not_served_get_error_bodies(replica: httpx.Client) -> None:
    refused = replica.post("/v1/chat/completions", json=ASK)
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"
    assert replica.get("/v1/models").status_code == 401
    missing = replica.get("/v2/nothing", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "GET /v2/nothing is not served here (HTTP 404)."
    wrong = replica.get("/v1/chat/completions", headers=AUTH)
    assert wrong.status_code == 405
    assert wrong.json()["error"]["type"] == "invalid_request_error"


def test_a_body_that_is_not_json_is_a_400_naming_why(replica: httpx.Client) -> None:
    answer = replica.post(
        "/v1/chat/completions", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("The request body is not valid JSON (")


def test_a_failed_generation_is_a_500_for_the_request_and_the_replica_keeps_serving(
    replica: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> list[Generation]:
        raise RuntimeError("the kernel fell over")

    monkeypatch.setattr(serve, "generate", broken)
    failed = replica.post("/v1/chat/completions", json=ASK, headers=AUTH)
    assert failed.status_code == 500
    assert failed.json()["error"] == {
        "message": "Generation failed: the kernel fell over.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    monkeypatch.undo()
    assert replica.post("/v1/chat/completions", json=ASK, headers=AUTH).status_code == 200
    assert replica.get("/healthz").json()["status"] == "ok"


def test_concurrent_requests_are_batched_by_their_parameters(adder: Any) -> None:
    calls: list[tuple[int, InferenceParams]] = []

    def recorded(model: Any, prompts: list[Any], params: InferenceParams) -> list[Generation]:
        calls.append((len(prompts), params))
        return [Generation(text=f"{len(prompts)}", prompt_tokens=1, completion_tokens=1) for _ in prompts]

    async def scenario() -> list[Generation]:
        batcher = serve.Batcher(adder, window_s=0.2, max_batch=8)
        runner = asyncio.create_task(batcher.run())
        greedy, sampled = InferenceParams(max_output_tokens=3), InferenceParams(temperature=0.5, seed=1)
        try:
            return list(
                await asyncio.gather(
                    *[batcher.submit([{"role": "user", "content": str(n)}], greedy) for n in range(3)],
                    *[batcher.submit([{"role": "user", "content": str(n)}], sampled) for n in range(2)],
                )
            )
        finally:
            runner.cancel()

    original = serve.generate
    serve.generate = recorded  # type: ignore[assignment]
    try:
        answers = asyncio.run(scenario())
    finally:
        serve.generate = original  # type: ignore[assignment]
    assert sorted(size for size, _ in calls) == [2, 3]  # one batch per set of parameters
    assert [a.text for a in answers] == ["3", "3", "3", "2", "2"]


def test_a_batch_never_holds_more_than_its_maximum(adder: Any) -> None:
    sizes: list[int] = []

    def recorded(model: Any, prompts: list[Any], params: InferenceParams) -> list[Generation]:
        sizes.append(len(prompts))
        return [Generation(text="x", prompt_tokens=1, completion_tokens=1) for _ in prompts]

    async def scenario() -> None:
        batcher = serve.Batcher(adder, window_s=0.2, max_batch=2)
        runner = asyncio.create_task(batcher.run())
        try:
            await asyncio.gather(
                *[batcher.submit([{"role": "user", "content": "q"}], InferenceParams()) for _ in range(5)]
            )
        finally:
            runner.cancel()

    original = serve.generate
    serve.generate = recorded  # type: ignore[assignment]
    try:
        asyncio.run(scenario())
    finally:
        serve.generate = original  # type: ignore[assignment]
    assert sum(sizes) == 5
    assert max(sizes) == 2


def test_a_replica_without_credentials_in_its_environment_refuses_to_start() -> None:
    with pytest.raises(Exception, match="never serves without them"):
        serve.replica_gate({})
    gate = serve.replica_gate({"QFRUN_LOCAL_TOKEN": " tok-123456 "})
    assert gate.token == "tok-123456"
