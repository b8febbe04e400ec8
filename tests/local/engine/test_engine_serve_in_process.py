"""A replica's app called in-process (ASGI, no port) on the demo model: request parsing refuses every bad
body with a sentence naming the field and never raises anything else, concurrent requests are batched by
their batch key with each chat's own settings, a full queue is refused at once, a chat whose caller went away
is dropped, and a generation that fails is each waiting request's 500, not a hung request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow  # imports the model runtime

pytest.importorskip("torch")

from runner.local.access import Gate  # noqa: E402
from runner.local.engine import batching, serve  # noqa: E402
from runner.local.engine.inference import Generation, InferenceParams  # noqa: E402
from runner.testing.held_generate import HeldGenerate  # noqa: E402
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
            "stop": VALUES | st.lists(st.text(max_size=3) | st.integers(), max_size=5),
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

    monkeypatch.setattr(batching, "generate", broken)
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


def _recording(calls: list[list[InferenceParams]]) -> Any:
    """A stand-in for ``generate`` that records each batch's settings and answers with the batch's size."""

    def recorded(model: Any, prompts: list[Any], params: list[InferenceParams]) -> list[Generation]:
        calls.append(list(params))
        return [Generation(text=f"{len(prompts)}", prompt_tokens=1, completion_tokens=1) for _ in prompts]

    return recorded


@asynccontextmanager
async def batching_loop(batcher: batching.Batcher) -> AsyncIterator[None]:
    """The batcher's loop running for the block."""
    loop = asyncio.create_task(batcher.run())
    try:
        yield
    finally:
        loop.cancel()


def _ask(batcher: batching.Batcher, text: str, params: InferenceParams) -> Any:
    return batcher.submit([{"role": "user", "content": text}], params)


def test_chats_with_different_limits_share_a_batch_and_a_seeded_sampled_chat_runs_alone(
    adder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[InferenceParams]] = []
    monkeypatch.setattr(batching, "generate", _recording(calls))
    short, long = InferenceParams(max_output_tokens=3), InferenceParams(max_output_tokens=9, stop=("x",))
    warm, seeded = InferenceParams(temperature=0.5), InferenceParams(temperature=0.5, seed=1)

    async def scenario() -> list[Generation]:
        batcher = batching.Batcher(adder, window_s=0.2, max_batch=8)
        async with batching_loop(batcher):
            chats = [_ask(batcher, "1", short), _ask(batcher, "2", long), _ask(batcher, "3", warm)]
            return list(await asyncio.gather(*chats, _ask(batcher, "4", seeded)))

    answers = asyncio.run(scenario())
    assert calls == [[short, long, warm], [seeded]]  # each chat keeps its own settings inside the batch
    assert [a.text for a in answers] == ["3", "3", "3", "1"]


def test_a_batch_never_holds_more_than_its_maximum(adder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[InferenceParams]] = []
    monkeypatch.setattr(batching, "generate", _recording(calls))

    async def scenario() -> None:
        batcher = batching.Batcher(adder, window_s=0.2, max_batch=2)
        async with batching_loop(batcher):
            await asyncio.gather(*[_ask(batcher, "q", InferenceParams()) for _ in range(5)])

    asyncio.run(scenario())
    assert sum(len(batch) for batch in calls) == 5
    assert max(len(batch) for batch in calls) == 2


def test_a_lone_chat_starts_at_once_instead_of_waiting_out_the_window(
    adder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batching, "generate", _recording([]))

    async def scenario() -> Generation:
        batcher = batching.Batcher(adder, window_s=30.0)  # a window no test would wait out
        async with batching_loop(batcher):
            return await asyncio.wait_for(_ask(batcher, "q", InferenceParams()), 10)

    assert asyncio.run(scenario()).text == "1"


def test_a_full_queue_refuses_at_once_and_the_queued_chats_are_still_answered(
    adder: Any, held: HeldGenerate
) -> None:
    async def scenario() -> list[str]:
        batcher = batching.Batcher(adder, window_s=0.0, max_batch=1, max_waiting=1)
        async with batching_loop(batcher):
            running = asyncio.ensure_future(_ask(batcher, "a", InferenceParams()))
            await asyncio.to_thread(held.entered.wait, 10)  # "a" is generating
            queued = asyncio.ensure_future(_ask(batcher, "b", InferenceParams()))
            await asyncio.sleep(0)
            with pytest.raises(asyncio.QueueFull):
                await _ask(batcher, "c", InferenceParams())
            held.release.set()
            return [answer.text for answer in await asyncio.gather(running, queued)]

    assert asyncio.run(scenario()) == ["a", "b"]
    assert held.batches == [["a"], ["b"]]


def test_a_chat_whose_caller_went_away_never_takes_a_place_in_a_batch(adder: Any, held: HeldGenerate) -> None:
    async def scenario() -> list[str]:
        batcher = batching.Batcher(adder, window_s=0.0, max_batch=8)
        async with batching_loop(batcher):
            running = asyncio.ensure_future(_ask(batcher, "a", InferenceParams()))
            await asyncio.to_thread(held.entered.wait, 10)
            gone = asyncio.ensure_future(_ask(batcher, "gone", InferenceParams()))
            stays = asyncio.ensure_future(_ask(batcher, "stays", InferenceParams()))
            await asyncio.sleep(0)
            gone.cancel()  # what the route does when the client hangs up
            held.release.set()
            return [answer.text for answer in await asyncio.gather(running, stays)]

    assert asyncio.run(scenario()) == ["a", "stays"]
    assert held.batches == [["a"], ["stays"]]


def test_a_replica_without_credentials_in_its_environment_refuses_to_start() -> None:
    with pytest.raises(Exception, match="never serves without them"):
        serve.replica_gate({})
    gate = serve.replica_gate({"QFRUN_LOCAL_TOKEN": " tok-123456 "})
    assert gate.token == "tok-123456"


@pytest.mark.parametrize(("environ", "threads"), [({}, 1), ({"QFRUN_ENGINE_THREADS": " "}, 1)])
def test_a_replica_runs_torch_on_one_thread_by_default(environ: dict[str, str], threads: int) -> None:
    assert serve.replica_threads(environ) == threads


def test_a_replica_leaves_the_thread_count_to_the_engine_setting_when_one_is_given() -> None:
    assert serve.replica_threads({"QFRUN_ENGINE_THREADS": "2"}) is None
