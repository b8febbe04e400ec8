"""Per-sample records as the evaluation job makes them: each row's own metrics (whose mean is the task's),
the judge's reply as the reason, custom scorers asked row by row, and qfrun's pass rule."""

from __future__ import annotations

from typing import Any

import pytest

from runner.local.engine import evaluators, sample_records
from runner.local.engine.judge import judge_replies

ROWS = [
    {"prompt": "1+1=?", "response": "2", "output": "2"},
    {"prompt": "2+2=?", "response": "4", "output": "5"},
    {"prompt": "3+3=?", "response": "6", "output": " 6 "},
]
CHECKS = """
def long_answers(rows):
    return {"long": sum(len(row["output"]) > 1 for row in rows) / len(rows)}

def needs_two(rows):
    if len(rows) < 2:
        raise ValueError("a corpus statistic")
    return {"spread": 1.0}

def words(rows):
    return {"label": "not a number", "flag": True, "share": 0.25}
"""


def test_each_record_holds_its_rows_text_and_metrics_whose_mean_is_the_tasks() -> None:
    metrics, records = evaluators.evaluate(ROWS, [{"kind": "rule", "accuracy": True, "exact_match": True}])
    assert [(r["index"], r["input"], r["expected"], r["output"]) for r in records] == [
        (1, "1+1=?", "2", "2"),
        (2, "2+2=?", "4", "5"),
        (3, "3+3=?", "6", " 6 "),
    ]
    assert [r["metrics"]["accuracy"] for r in records] == [1.0, 0.0, 1.0]
    assert sum(r["metrics"]["exact_match"] for r in records) / 3 == pytest.approx(metrics["exact_match"])
    assert [r["passed"] for r in records] == [True, False, True]


def test_a_custom_scorer_is_asked_per_row_and_one_that_needs_the_corpus_leaves_rows_without_it() -> None:
    metrics, records = evaluators.evaluate(
        ROWS,
        [
            {"kind": "custom", "function": "checks:long_answers", "source": CHECKS},
            {"kind": "custom", "function": "checks:needs_two", "source": CHECKS},
        ],
    )
    assert metrics == {"long": pytest.approx(1 / 3), "spread": 1.0}
    assert [r["metrics"] for r in records] == [{"long": 0.0}, {"long": 0.0}, {"long": 1.0}]
    assert {r["passed"] for r in records} == {None}  # a custom metric decides nothing


def test_only_numbers_a_scorer_returns_become_a_rows_metrics() -> None:
    records = sample_records.new_records(ROWS[:1])
    sample_records.add_custom_metrics(records, ROWS[:1], lambda rows: {"a": 1, "b": "x", "c": False})
    sample_records.add_custom_metrics(records, ROWS[:1], lambda rows: ["not", "a", "dict"])
    assert records[0]["metrics"] == {"a": 1.0}


def test_the_judges_reply_is_the_reason_and_an_unparsed_reply_scores_zero() -> None:
    replies = {"2": "9 right", "5": "no idea", " 6 ": "4"}

    def ask(prompt: str) -> str:
        return replies[prompt.split("Answer: ")[1].split("\n")[0]]

    judged = judge_replies(ask, ROWS, max_score=10)
    records = sample_records.new_records(ROWS)
    sample_records.add_judgements(records, judged, 10)
    sample_records.decide(records)
    assert [(r["reason"], r["metrics"]["judge_score"], r["passed"]) for r in records] == [
        ("9 right", 0.9, True),
        ("no idea", 0.0, False),
        ("4", 0.4, False),
    ]


@pytest.mark.parametrize(
    ("values", "passed"),
    [([], None), ([1.0, 0.5], True), ([1.0, 0.49], False), ([0.0], False)],
)
def test_a_sample_passes_when_every_deciding_metric_reaches_the_mark(
    values: list[float], passed: Any
) -> None:
    assert sample_records.scaled_pass(values) is passed
