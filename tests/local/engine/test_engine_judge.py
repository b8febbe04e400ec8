"""The LLM judge: prompt filling, score parsing, a callable judge and the real grader model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.local.engine.judge import DEFAULT_TEMPLATE, fill, judge_scores, parse_score

ROOT = Path(__file__).resolve().parents[3]
ADDER = ROOT / "models" / "tiny-adder"
GRADER = ROOT / "models" / "tiny-grader"
DATA = ROOT / "data" / "addition"


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_template_fills_question_answer_and_reference_and_keeps_other_braces():
    row = {"prompt": "2+3=?", "output": "5", "response": "5"}
    assert fill(DEFAULT_TEMPLATE, row) == "Question: 2+3=?\nAnswer: 5\nScore:"
    assert fill("{question}|{answer}|{reference}|{other}", row) == "2+3=?|5|5|{other}"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [(" 10", 10.0), ("Score: 7/10", 7.0), ("42", 10.0), ("-3", 0.0), ("none", None)],
)
def test_score_is_first_integer_clamped_to_range(reply, expected):
    assert parse_score(reply, 10) == expected


def test_callable_judge_gives_normalised_and_raw_means():
    rows = [
        {"prompt": "1+1=?", "output": "2"},
        {"prompt": "1+2=?", "output": "4"},
        {"prompt": "x", "output": "?"},
    ]
    replies = iter(["10", "0", "no idea"])
    asked = []

    def ask(prompt):
        asked.append(prompt)
        return next(replies)

    scores = judge_scores(ask, rows, max_score=10)
    assert scores == {
        "judge_score": pytest.approx(1 / 3, abs=1e-6),
        "judge_score_raw": pytest.approx(10 / 3, abs=1e-5),
        "judge_unparsed": 1.0,
    }
    assert asked[0] == "Question: 1+1=?\nAnswer: 2\nScore:"


def test_template_without_answer_is_refused():
    with pytest.raises(ValueError, match=r"must contain \{answer\}"):
        judge_scores(lambda p: "10", [{"prompt": "q", "output": "a"}], "Rate: {question}")


@pytest.mark.slow
def test_grader_model_scores_right_sums_far_above_wrong_ones(eval_rows):
    rows = eval_rows[:40]
    right = [{"prompt": r["prompt"], "output": r["response"]} for r in rows]
    # Clearly wrong sums; the tiny grader is weaker on near misses (see models/tiny-grader/README.md).
    wrong = [
        {"prompt": r["prompt"], "output": str((int(r["response"]) * 7 + 13 + i) % 199)}
        for i, r in enumerate(rows)
        if (int(r["response"]) * 7 + 13 + i) % 199 != int(r["response"])
    ]
    good = judge_scores(GRADER, right)
    bad = judge_scores(GRADER, wrong)
    assert good["judge_unparsed"] == bad["judge_unparsed"] == 0
    assert good["judge_score"] >= 0.85
    assert good["judge_score"] - bad["judge_score"] >= 0.5
