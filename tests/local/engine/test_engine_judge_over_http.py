"""An LLM judge reached as a deployed service (``judge_url``), over real HTTP on 127.0.0.1: the evaluation
job sends each filled prompt in the chat shape a replica answers, with the platform's token and nothing
else, and scores the replies; a broken judge is counted or refused, never silently scored as good."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.local.engine import evaluators, judge
from runner.testing.serving import serve_app

ROWS = [
    {"prompt": "2+2=?", "output": "4", "response": "4"},
    {"prompt": "3+3=?", "output": "7", "response": "6"},
    {"prompt": "5+5=?", "output": "10", "response": None},
    {"prompt": "1+1=?", "output": "2"},
]


@dataclass
class Judge:
    """A chat service in a replica's shape that answers from a list and remembers what it was sent."""

    replies: list[str]
    status: int = 200
    seen: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    async def chat(self, request: Request) -> JSONResponse:
        self.seen.append(await request.json())
        self.tokens.append(request.headers.get("authorization", ""))
        if self.status != 200:
            return JSONResponse({"error": {"message": "overloaded"}}, self.status)
        text = self.replies[(len(self.seen) - 1) % len(self.replies)]
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": text}}]})


@pytest.fixture
def judge_service() -> Iterator[tuple[str, Judge]]:
    state = Judge(["8", "no idea", "-3", "12"])
    app = Starlette(routes=[Route("/v1/chat/completions", state.chat, methods=["POST"])])
    with serve_app(app) as url:
        yield f"{url}/v1/chat/completions", state


def test_a_judge_service_scores_each_answer_and_counts_the_replies_without_a_score(
    judge_service: tuple[str, Judge], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, service = judge_service
    monkeypatch.setenv("QFRUN_LOCAL_TOKEN", "platform-token-for-judges")
    metrics = evaluators.apply_evaluators(
        ROWS,
        [
            {
                "kind": "llm_judge",
                "judge_url": url,
                "prompt": "Q {question} A {answer} R {reference}",
                "max_score": 10,
            }
        ],
    )
    # 8, none (0, counted), -3 clamped to 0, 12 clamped to 10: a mean of 4.5 out of 10
    assert metrics == {"judge_score": 0.45, "judge_score_raw": 4.5, "judge_unparsed": 1.0}
    assert [body["messages"][0]["content"] for body in service.seen] == [
        "Q 2+2=? A 4 R 4",
        "Q 3+3=? A 7 R 6",
        "Q 5+5=? A 10 R ",
        "Q 1+1=? A 2 R ",
    ]
    assert {(body["temperature"], body["max_tokens"]) for body in service.seen} == {(0, 4)}
    assert set(service.tokens) == {"Bearer platform-token-for-judges"}


def test_the_default_prompt_is_used_when_the_evaluator_names_none(
    judge_service: tuple[str, Judge], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, service = judge_service
    monkeypatch.setenv("QFRUN_LOCAL_TOKEN", "t-0123456789")
    evaluators.apply_evaluators(ROWS[:1], [{"kind": "llm_judge", "judge_url": url}])
    assert service.seen[0]["messages"][0]["content"] == "Question: 2+2=?\nAnswer: 4\nScore:"


def test_a_job_handed_no_token_sends_no_authorization_rather_than_an_empty_one(
    judge_service: tuple[str, Judge], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, service = judge_service
    monkeypatch.delenv("QFRUN_LOCAL_TOKEN", raising=False)
    evaluators.apply_evaluators(ROWS[:1], [{"kind": "llm_judge", "judge_url": url}])
    assert service.tokens == [""]  # a replica answers 401 to that, which names the problem


def test_a_judge_service_that_refuses_fails_the_evaluation_instead_of_scoring_zero(
    judge_service: tuple[str, Judge], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, service = judge_service
    monkeypatch.setenv("QFRUN_LOCAL_TOKEN", "t-0123456789")
    service.status = 503
    with pytest.raises(httpx.HTTPStatusError, match="503"):
        evaluators.apply_evaluators(ROWS, [{"kind": "llm_judge", "judge_url": url}])
    assert len(service.seen) == 1  # the first refusal ends it


def test_a_judge_that_cannot_be_reached_fails_the_evaluation() -> None:
    with pytest.raises(httpx.ConnectError):
        evaluators.apply_evaluators(ROWS, [{"kind": "llm_judge", "judge_url": "http://127.0.0.1:9/v1/chat"}])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_score": 0}, "The judge's max_score must be more than 0, not 0."),
        ({"max_score": -1.5}, "The judge's max_score must be more than 0, not -1.5."),
        ({"rows": []}, "There are no result rows for the judge to score."),
        (
            {"prompt_template": "Rate {question}"},
            "must contain {answer}, or the judge never sees the answer.",
        ),
    ],
)
def test_a_judge_that_cannot_score_says_why_before_asking(arguments: dict[str, Any], message: str) -> None:
    asked: list[str] = []
    options = {"rows": ROWS, **arguments}
    with pytest.raises(ValueError, match=r"judge|rows") as caught:
        judge.judge_scores(asked.append, **options)  # type: ignore[arg-type]
    assert message in str(caught.value)
    assert asked == []


@pytest.mark.parametrize(
    ("reply", "max_score", "score"),
    [
        ("7/10", 10, 7.0),
        ("score: 3", 5, 3.0),
        ("99", 5, 5.0),
        ("-1", 5, 0.0),
        ("", 5, None),
        ("ten", 5, None),
    ],
)
def test_a_reply_scores_its_first_integer_within_the_range(
    reply: str, max_score: float, score: float | None
) -> None:
    assert judge.parse_score(reply, max_score) == score


def test_a_template_keeps_braces_that_are_not_its_placeholders() -> None:
    filled = judge.fill(
        '{"q": "{question}", "other": "{name}"} -> {answer}', {"prompt": "1+1", "output": "2"}
    )
    assert filled == '{"q": "1+1", "other": "{name}"} -> 2'


def test_a_custom_evaluator_returning_booleans_is_refused_as_not_numbers() -> None:
    source = "def score(rows):\n    return {'all_right': True}\n"
    with pytest.raises(ValueError, match="must return a dict of numbers"):
        evaluators.apply_evaluators(ROWS, [{"kind": "custom", "function": "mine:score", "source": source}])


def test_a_custom_module_never_replaces_a_module_the_worker_uses() -> None:
    import json
    import sys

    scorer = evaluators.load_custom("json:score", "def score(rows):\n    return {'n': float(len(rows))}\n")
    assert scorer(ROWS) == {"n": 4.0}
    assert sys.modules["json"] is json
    assert json.dumps([1]) == "[1]"
