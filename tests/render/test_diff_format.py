"""``qfrun diff``'s formats: text for the terminal, Markdown within one PR comment, JSON for tools."""

from __future__ import annotations

import json

from runner.render.diff import MARKDOWN_LIMIT, as_json, as_markdown, as_text
from runner.run.compare import Comparison, GateChange, MetricDelta, StageChange

DIFF = Comparison(
    "demo",
    "main",
    "run r2",
    (
        StageChange("base", "model", "unchanged", ("succeeded", "succeeded")),
        StageChange(
            "base_eval",
            "evaluate",
            "changed",
            ("succeeded", "succeeded"),
            inputs=("params.max_output_tokens: 5 -> 3",),
            metrics=(
                MetricDelta("accuracy", "base", 0.9, 0.85),
                MetricDelta("similarity", "base", 0.5, 0.5),
            ),
        ),
        StageChange(
            "serve",
            "deploy",
            "changed",
            ("succeeded", "skipped"),
            service=(("status", "succeeded", "skipped"),),
            gate=GateChange("${{ stages.base_eval.outputs.metrics.accuracy >= 0.88 }}", True, False),
        ),
    ),
)


def test_text_lists_what_changed_and_hides_what_did_not() -> None:
    text = as_text(DIFF)
    assert text.splitlines()[0] == "Changes in demo from main to run r2: 2 changed, 1 unchanged."
    assert "because params.max_output_tokens: 5 -> 3" in text
    assert "accuracy of base: 0.9 -> 0.85 (-0.05)" in text
    assert "similarity" not in text  # unchanged metrics only with -v
    assert "holds it back now" in text
    assert "service status: succeeded -> skipped" in text
    assert "= 1 stage unchanged (-v lists them)" in text
    assert "similarity of base: 0.5 -> 0.5" in as_text(DIFF, verbose=True)


def test_json_carries_every_metric_with_its_delta() -> None:
    data = json.loads(as_json(DIFF))
    assert data["qfrun_diff"] == 1
    eval_stage = data["stages"][1]
    assert [m["name"] for m in eval_stage["metrics"]] == ["accuracy", "similarity"]
    assert eval_stage["metrics"][0]["delta"] == -0.05
    assert data["stages"][2]["gate"]["after"] is False


def test_markdown_tables_escape_what_the_pipeline_wrote() -> None:
    text = as_markdown(DIFF)
    assert "| `base_eval` | accuracy | `base` | 0.9 | 0.85 | -0.05 |" in text
    assert "accuracy \\>= 0.88 }} lets it run before, holds it back now" in text  # a literal '>', never HTML
    hostile = Comparison("demo", "a", "b", (StageChange("x", "infer", "changed", ("a", "b"), ("<b>@all",)),))
    assert "\\<b\\>@\u200ball" in as_markdown(hostile)


def test_markdown_of_thousands_of_changed_stages_fits_one_comment_and_says_what_it_left_out() -> None:
    stages = tuple(
        StageChange(
            f"stage_{index:05d}",
            "evaluate",
            "changed",
            ("succeeded", "failed"),
            inputs=(f"params.seed: {index} -> {index + 1}",),
            metrics=(MetricDelta("accuracy", f"model_{index}", 0.5, 0.25),),
        )
        for index in range(5_000)
    )
    text = as_markdown(Comparison("big", "main", "now", stages))
    assert len(text) <= MARKDOWN_LIMIT
    assert "5000 changed" in text
    assert "more rows._" in text
    assert "run `qfrun diff`" in text
    assert "| `stage_00000` | accuracy |" in text  # both tables keep their first rows
    assert "| ~ | `stage_00000` |" in text
