"""Per-sample records of an evaluation: for each result row, what was asked (``input``), the reference
(``expected``), the model's answer (``output``), each metric of that one row, the judge's reply (``reason``)
and whether the sample passed.

A row's rule metric is the corpus metric over that row alone (runner.local.engine.metrics), so the mean of
``accuracy`` over the records is the task's ``accuracy``; BLEU and ROUGE-L of one row are sentence scores. A
custom scorer is asked about each row on its own too; a scorer that cannot score one row (a corpus statistic)
leaves that row's records without its metrics rather than failing the evaluation that already has its totals.

An ``opencompass`` evaluator adds one record per benchmark item, named by its benchmark (``benchmark``: the
abbr) and numbered from 1 within it: the prompt as rendered (a likelihood item: each label's text, one line
each), the reference, the model's answer (its generated text, or the label it found likeliest) and the
benchmark's metric of that item alone (1 or 0, scored by the same code as the benchmark: its mean over the
items is the benchmark's metric).

``passed`` is qfrun's rule, the same on the platform and in the report: a sample fails when any of its
deciding metrics, scaled to 0..1, is below ``PASS_MARK``; it is None when no metric decides (custom only). A
benchmark item's metric always decides: the item is right or wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runner.benchmarks import Benchmark
from runner.benchmarks.scoring import postprocess, prompts, score
from runner.vocabulary import RULE_METRICS

PASS_MARK = 0.5
# Metrics in 0..1 that say whether one answer is right: the rule metrics and the judge's normalised score.
# Manual dimensions decide too, scaled by their score range (runner.local.kinds.evaluation).
DECIDING = frozenset({*RULE_METRICS, "judge_score"})
Scorer = Callable[[list[dict[str, Any]]], Any]


def new_records(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One record per row, numbered from 1 as the dataset's samples are, with no metric yet."""
    return [
        {
            "index": position,
            "input": str(row.get("prompt") or ""),
            "expected": str(row.get("response") or ""),
            "output": str(row.get("output") or ""),
            "metrics": {},
        }
        for position, row in enumerate(rows, start=1)
    ]


def add_rule_metrics(records: list[dict[str, Any]], rows: Sequence[dict[str, Any]], names: list[str]) -> None:
    from runner.local.engine.metrics import score

    for record, row in zip(records, rows, strict=True):
        record["metrics"].update(score([row], names))


def add_judgements(
    records: list[dict[str, Any]], judged: Sequence[tuple[float | None, str]], max_score: float
) -> None:
    """The judge's score of each answer (normalised as the task's ``judge_score``, and raw) and its reply."""
    for record, (value, reply) in zip(records, judged, strict=True):
        raw = value or 0.0  # an unparsed reply scores 0, as in the task's mean (runner.local.engine.judge)
        record["metrics"]["judge_score"] = round(raw / max_score, 6)
        record["metrics"]["judge_score_raw"] = raw
        record["reason"] = reply


def add_custom_metrics(records: list[dict[str, Any]], rows: Sequence[dict[str, Any]], scorer: Scorer) -> None:
    for record, row in zip(records, rows, strict=True):
        try:
            result = scorer([row])
        except Exception:  # noqa: BLE001 - a corpus-only scorer: the row keeps its other metrics (module doc)
            continue
        if isinstance(result, dict):
            record["metrics"].update(
                {
                    str(name): float(value)
                    for name, value in result.items()
                    if isinstance(value, int | float) and not isinstance(value, bool)
                }
            )


def benchmark_records(benchmark: Benchmark, answers: Sequence[str]) -> list[dict[str, Any]]:
    """One decided record per test item of ``benchmark``, from the model's raw ``answers`` in item order."""
    records: list[dict[str, Any]] = []
    for position, (row, answer) in enumerate(zip(benchmark.test, answers, strict=True), start=1):
        reference = row[benchmark.output_column]
        rendered = prompts(benchmark, row)
        shown = (
            "\n".join(f"[{label}] {text}" for label, text in rendered.items())
            if isinstance(rendered, dict)
            else rendered
        )
        right = score(benchmark.metric, [postprocess(benchmark.postprocessor, answer)], [reference])
        records.append(
            {
                "benchmark": benchmark.abbr,
                "index": position,
                "input": shown,
                "expected": reference,
                "output": answer,
                "metrics": {benchmark.metric_name: right},
            }
        )
    decide(records)
    return records


def deciding(record: Mapping[str, Any]) -> list[float]:
    """The metrics of a record that decide whether it passed, each in 0..1: the rule metrics and the judge's
    score; all of a benchmark item's (its benchmark's metric)."""
    metrics: Mapping[str, Any] = record["metrics"]
    benchmark = bool(record.get("benchmark"))
    return [float(value) for name, value in metrics.items() if benchmark or name in DECIDING]


def scaled_pass(values: Sequence[float]) -> bool | None:
    """Whether every deciding value (already in 0..1) reaches ``PASS_MARK``; None when there is none."""
    return all(value >= PASS_MARK for value in values) if values else None


def decide(records: list[dict[str, Any]]) -> None:
    for record in records:
        record["passed"] = scaled_pass(deciding(record))
