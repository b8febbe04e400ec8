"""Manual evaluation without a platform: the pipeline checks, the scoring sheet and its form, and what the
executor does while a task waits for people (on the fake platform, which, like Qianfan, has people score in
a console). The whole path over the real local platform is tests/local/test_local_manual_eval.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import PipelineError
from runner.pipeline.spec import load_pipeline
from runner.platform.protocol import TaskStatus
from runner.render.graph import as_mermaid
from runner.run.executor import SKIPPED, SUCCEEDED, WAITING
from runner.stages import scoresheet, scoresheet_html
from runner.stages.scoresheet import Answer, Scale, SheetError
from runner.state.file import StageStatus
from runner.testing.fake_platform import FakePlatform, Script
from runner.testing.pipelines import outcomes, run, write

PIPELINE = """\
version: 1
name: people
datasets:
  qa: {{path: qa.jsonl}}
stages:
  base:
    type: model
    version_id: amv-base
  review:
    type: evaluate
    models: [base]
    dataset: qa
    evaluators:
      - kind: manual
{manual}
  gated:
    type: model
    version_id: amv-next
    if: ${{{{ stages.review.outputs.metrics.satisfaction >= 4 }}}}
"""


def pipeline_with(tmp_path: Path, manual: str) -> Path:
    return write(tmp_path, PIPELINE.format(manual=manual))


def issues(tmp_path: Path, manual: str) -> list[str]:
    with pytest.raises(PipelineError) as caught:
        load_pipeline(pipeline_with(tmp_path, manual))
    return str(caught.value).splitlines()


def test_more_than_four_dimensions_are_refused_where_they_are_written(tmp_path: Path) -> None:
    names = "\n".join(f"          - {{name: d{n}}}" for n in range(5))
    found = issues(tmp_path, "        dimensions:\n" + names)
    assert any(
        line.endswith(
            "pipeline.yaml:16:11: stages.review.evaluators[0].dimensions: has 5 entries; "
            "at most 4 are allowed."
        )
        for line in found
    ), found


def test_dimension_names_must_be_new_metrics_and_unique(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        "        dimensions: [{name: satisfaction}, {name: tone}, {name: tone}, {name: accuracy}]",
    )
    assert any(
        ":15:29: stages.review.evaluators.0.dimensions.0.name: 'satisfaction' is already a metric" in line
        for line in found
    ), found
    assert any("dimensions.2.name: the dimension 'tone' is named twice." in line for line in found)
    assert any("dimensions.3.name: 'accuracy' is already a metric" in line for line in found)


def test_the_score_range_must_run_upwards(tmp_path: Path) -> None:
    found = issues(tmp_path, "        scale: {min: 5, max: 1}")
    assert any(
        line.endswith(
            ":15:16: stages.review.evaluators.0.scale: the lowest score (5) must be below the highest (1)."
        )
        for line in found
    ), found


def test_the_scoring_sheet_stays_inside_the_repository(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    found = issues(tmp_path / "repo", "        sheet: ../elsewhere/review.csv")
    assert any(
        "stages.review.evaluators.0.sheet: ../elsewhere/review.csv resolves to" in line
        and "(qfrun writes scoring sheets only there)" in line
        for line in found
    ), found


def test_a_stage_takes_one_manual_evaluator(tmp_path: Path) -> None:
    found = issues(tmp_path, "        sheet: a.csv\n      - {kind: manual}")
    assert any("stages.review.evaluators.1: a stage takes one manual evaluator" in line for line in found)


ANSWERS = [
    Answer("base", 1, "2+3=?", "5", "5"),
    Answer("base", 2, "say\n<b>hi</b>", "hi", 'multi\nline, "quoted"'),
]
DIMS = ["satisfaction", "tone"]
SCALE = Scale(1, 5)


def sheet_with(tmp_path: Path, scores: list[tuple[str, str]], rows: list[Answer] = ANSWERS) -> Path:
    """A sheet as exported, then filled in the way a spreadsheet saves it."""
    path = tmp_path / "scores" / "review.csv"
    text = scoresheet.render(rows, DIMS)
    lines = text.splitlines(keepends=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    filled = [lines[0]]
    records = scoresheet.render([], DIMS)  # the header alone
    assert records == lines[0]
    body = text[len(lines[0]) :]
    # put each row's scores into its two empty trailing cells
    parts = body.split(",,\n")
    assert len(parts) == len(rows) + 1
    assert parts[-1] == ""
    for part, (first, second) in zip(parts[:-1], scores, strict=True):
        filled.append(f"{part},{first},{second}\n")
    path.write_text("".join(filled), encoding="utf-8")
    return path


def read(path: Path) -> dict[tuple[str, int], dict[str, int]] | None:
    return scoresheet.read(path, "scores/review.csv", ANSWERS, DIMS, SCALE)


def test_an_exported_sheet_has_the_answers_and_empty_score_columns_and_reads_as_not_started(
    tmp_path: Path,
) -> None:
    path = sheet_with(tmp_path, [("", ""), ("", "")])
    assert path.read_text().splitlines()[0] == "model,sample,input,expected,output,satisfaction,tone"
    assert read(path) is None


def test_a_filled_sheet_reads_as_whole_scores_by_answer(tmp_path: Path) -> None:
    path = sheet_with(tmp_path, [("5", "4"), ("2.0", "1")])
    assert read(path) == {
        ("base", 1): {"satisfaction": 5, "tone": 4},
        ("base", 2): {"satisfaction": 2, "tone": 1},
    }


def test_a_sheet_saved_with_a_byte_order_mark_reads_the_same(tmp_path: Path) -> None:
    path = sheet_with(tmp_path, [("5", "4"), ("3", "3")])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read(path) is not None


def test_scores_out_of_range_and_blanks_are_named_by_line_and_row(tmp_path: Path) -> None:
    path = sheet_with(tmp_path, [("6", "x"), ("3", "")])
    with pytest.raises(SheetError) as caught:
        read(path)
    # row 2's input and output span lines 3 to 6: its problems point at the line it starts on
    assert str(caught.value).splitlines() == [
        "scores/review.csv:2: row 1: the satisfaction score '6' is not a whole number from 1 to 5.",
        "scores/review.csv:2: row 1: the tone score 'x' is not a whole number from 1 to 5.",
        "scores/review.csv:3: row 2: no tone score.",
    ]


def test_missing_unknown_and_repeated_rows_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "review.csv"
    path.write_text(
        "model,sample,input,expected,output,satisfaction,tone\n"
        "base,1,2+3=?,5,5,4,4\n"
        "base,1,2+3=?,5,5,4,4\n"
        "other,7,x,y,z,4,4\n"
    )
    with pytest.raises(SheetError) as caught:
        read(path)
    assert str(caught.value).splitlines() == [
        "scores/review.csv:3: row 2: model base sample 1 is already on row 1.",
        "scores/review.csv:4: row 3: model 'other' sample '7' is not an answer of this evaluation.",
        "scores/review.csv: there is no row for model base sample 2.",
    ]


def test_an_unknown_dimension_column_is_an_error_on_the_header(tmp_path: Path) -> None:
    path = tmp_path / "review.csv"
    path.write_text("model,sample,input,expected,output,satisfaction,tone,humour\n")
    with pytest.raises(SheetError, match=r"review.csv:1: 'humour' is not a dimension of this evaluation"):
        read(path)


def test_a_sheet_of_an_earlier_run_is_refused_rather_than_scoring_other_answers(tmp_path: Path) -> None:
    path = sheet_with(
        tmp_path, [("5", "5"), ("5", "5")], rows=[ANSWERS[0], Answer("base", 2, "x", "y", "old")]
    )
    with pytest.raises(SheetError, match="row 2: the output is not the one the task has"):
        read(path)


def test_an_existing_sheet_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    assert scoresheet.write_new(path, "first")
    assert not scoresheet.write_new(path, "second")
    assert path.read_text() == "first"


def test_the_form_carries_answers_as_escaped_data_and_fetches_nothing() -> None:
    evil = Answer("base", 1, "</script><script>alert(1)</script>", "&amp;", "<img src=x onerror=alert(2)>")
    page = scoresheet_html.render(
        "__DATA__ <i>", "scores/review.csv", [evil], [{"name": "satisfaction"}], SCALE
    )
    assert "<script>alert(1)" not in page
    assert "<img src=x" not in page
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in page
    assert "Scoring sheet: __DATA__ &lt;i&gt;" in page  # the title is text, and no placeholder twice
    assert "Content-Security-Policy" in page
    assert "default-src 'none'" in page
    assert "http://" not in page
    assert "https://" not in page
    assert "<link" not in page
    assert page.count("<script") == 2  # the data and the code, both inline


def test_while_people_score_the_stage_waits_its_dependents_wait_and_no_task_is_created_twice(
    tmp_path: Path,
) -> None:
    path = pipeline_with(tmp_path, "        dimensions: [{name: tone, description: Polite.}]")
    platform = FakePlatform(scripts={"review": Script(outcome=TaskStatus.AWAITING_SCORES)})
    summary, state, recorder = run(path, platform)
    assert outcomes(summary) == {"base": SUCCEEDED, "review": WAITING, "gated": SKIPPED}
    assert recorder.finished["review"][1] == "waiting for scores in the fake console (task evaluation-1)"
    assert state.stages["review"].status is StageStatus.WAITING
    assert state.runs[-1].status == "waiting"
    assert "waiting for manual scores" in recorder.finished["gated"][1]
    graph = as_mermaid(load_pipeline(path).graph, {}, {"review": "waiting"})
    assert "classDef waiting fill:" in graph  # the graph colours a stage that waits for people

    summary, _, recorder = run(path, platform)  # people are still scoring
    assert outcomes(summary)["review"] == WAITING
    assert ("review", "re-attaching to task evaluation-1") in recorder.logs
    assert len(platform.created_for("review")) == 1

    # people finished in the console: the task computed the metrics, and the gate reads them
    task = platform.data["tasks"]["evaluation-1"]
    metrics = {"satisfaction": 4.5, "tone": 4.0, "manual_avg_score": 4.5, "good_case_proportion": 0.5}
    task["final"] = ["succeeded", "", {"models": {"amv-base": {"metrics": metrics, "samples": 2}}}]
    summary, state, _ = run(path, platform)
    assert outcomes(summary) == {"base": "up to date", "review": SUCCEEDED, "gated": SUCCEEDED}
    assert state.stages["review"].outputs["metrics"] == metrics
    assert len(platform.created_for("review")) == 1
