"""Per-sample records as the evaluation job makes them: each row's own metrics (whose mean is the task's),
the judge's reply as the reason, custom scorers asked row by row, and qfrun's pass rule."""

from __future__ import annotations

import dataclasses
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


def _benchmark(kind: str) -> Any:
    from runner.benchmarks import built_in_text, parse_benchmark

    return parse_benchmark(built_in_text(kind), kind)


def test_a_generation_benchmark_has_one_record_per_item_scored_as_the_benchmark_scores() -> None:
    from runner.benchmarks.scoring import postprocess, score

    gen = _benchmark("arith_gen")
    items = gen.test[:4]
    answers = [f"{items[0]['answer']} is it", "no idea", items[2]["answer"], f"{int(items[3]['answer']) + 1}"]
    records = sample_records.benchmark_records(dataclasses.replace(gen, test=items), answers)
    assert [(r["benchmark"], r["index"], r["output"]) for r in records] == [
        ("arith_gen", n, answer)
        for n, answer in enumerate(answers, start=1)  # the model's own text
    ]
    assert records[0]["input"] == f"Q: {items[0]['question']} A:"
    assert [r["expected"] for r in records] == [row["answer"] for row in items]
    values = [r["metrics"]["arith_gen_exact_match"] for r in records]
    assert values == [1.0, 0.0, 1.0, 0.0]  # first_number takes "68" out of "68 is it"
    whole = score(
        "exact_match", [postprocess("first_number", a) for a in answers], [r["answer"] for r in items]
    )
    assert sum(values) / len(values) == whole  # the same scorer: the mean is the benchmark's metric
    assert [r["passed"] for r in records] == [True, False, True, False]


def test_a_likelihood_item_shows_each_labels_text_and_the_label_chosen() -> None:
    mc = _benchmark("arith_mc")
    item = mc.test[0]
    wrong = next(label for label in "ABCD" if label != item["answer"])
    right, other = sample_records.benchmark_records(
        dataclasses.replace(mc, test=(item, item)), [item["answer"], wrong]
    )
    assert right["input"].splitlines() == [
        f"[{label}] Q: {item['question']} A: {item[label]}" for label in "ABCD"
    ]
    assert (right["expected"], right["output"], right["passed"]) == (item["answer"], item["answer"], True)
    assert (other["output"], other["metrics"], other["passed"]) == (wrong, {"arith_mc_accuracy": 0.0}, False)


def test_a_benchmark_items_metric_decides_though_its_name_is_the_benchmarks() -> None:
    item = {"benchmark": "mine", "index": 1, "metrics": {"mine_contains": 0.0}}
    sample = {"index": 1, "metrics": {"mine_contains": 0.0, "accuracy": 1.0}}  # a custom metric and a rule
    assert sample_records.deciding(item) == [0.0]
    assert sample_records.deciding(sample) == [1.0]
