"""The local ``DescribeEvalResults`` answer as the client reads it: names mapped back to qfrun's, and every
malformed field one sentence that names it (the platform is another program: its answers are checked)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from runner.platform import wire
from runner.platform.protocol import SampleRecord

GOOD = {
    "modelId": "amv-a",
    "index": 2,
    "prompt": "2+2=?",
    "prediction": "5",
    "completion": "4",
    "metrics": {"bleu4": 0.1, wire.SATISFACTION_WIRE: 3, "avgJudgeScore": 0.2, "label": "text"},
    "judgeReason": "off by one",
    "passed": False,
}


def test_a_record_comes_back_with_qfruns_metric_names_and_numbers_only() -> None:
    records, total = wire.eval_results({"results": [GOOD], "totalCount": 7})
    assert total == 7
    assert records == [
        SampleRecord(
            "amv-a",
            2,
            "2+2=?",
            "4",
            "5",
            {"bleu": 0.1, "satisfaction": 3.0, "judge_score": 0.2},
            "off by one",
            False,
        )
    ]


def test_the_local_platform_writes_what_the_client_reads() -> None:
    record = {"index": 1, "input": "q", "expected": "a", "output": "a", "reason": "fine"}
    entry = wire.result_record("amv-a", record, {"bleu": 1.0}, True)
    assert entry["metrics"] == {"bleu4": 1.0}
    (back,), _ = wire.eval_results({"results": [entry], "totalCount": 1})
    assert (back.input, back.expected, back.output, back.reason, back.passed) == ("q", "a", "a", "fine", True)


@pytest.mark.parametrize(
    ("result", "words"),
    [
        ([], "'result' should be an object"),
        ({"totalCount": 1}, "'result.results' should be an array"),
        ({"results": [], "totalCount": -1}, "'result.totalCount' should be a whole number"),
        ({"results": [], "totalCount": True}, "'result.totalCount' should be a whole number"),
        ({"results": [{**GOOD, "index": 0}], "totalCount": 1}, "'result.results[0].index' should be"),
        ({"results": [{**GOOD, "passed": "no"}], "totalCount": 1}, "'result.results[0].passed' should be"),
        ({"results": [{**GOOD, "metrics": []}], "totalCount": 1}, "'result.results[0].metrics' should be"),
        ({"results": [{**GOOD, "modelId": ""}], "totalCount": 1}, "'result.results[0].modelId' should be"),
    ],
)
def test_a_malformed_answer_is_one_sentence_naming_the_field(result: Any, words: str) -> None:
    with pytest.raises(wire.WireError, match=re.escape(words)):
        wire.eval_results(result)
