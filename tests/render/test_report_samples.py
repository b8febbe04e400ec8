"""The report's per-sample results: the records file an evaluate stage keeps (bounded, whole), the tables
the report groups from it (each sample side by side across models), the HTML viewer read with lxml and its
filter/sort/page logic run in a JavaScript engine (QuickJS: no browser installs on this machine), and the
Markdown failure summary."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import lxml.html
import pytest

from runner.errors import PlatformServerError
from runner.platform.protocol import SampleRecord
from runner.render import samples
from runner.render.plan import escape_markdown
from runner.render.report import as_markdown
from runner.render.report_html import as_html
from runner.stages import eval_samples
from runner.testing.sample_viewer import (
    REF,
    Context,
    Platform,
    drawn,
    kept,
    mounted,
    report_with,
    stage,
    view,
)

quickjs = pytest.importorskip("quickjs")  # the dev extra has it; the viewer's logic is tested where it is

HOSTILE = "</script><script>alert(1)</script><!--"


def records(models: Sequence[str], count: int) -> list[SampleRecord]:
    """``count`` samples per model: every third answer wrong, the last model wrong more often."""
    made = []
    for position, version in enumerate(models):
        for index in range(1, count + 1):
            right = index % (3 - position if position < 2 else 2) != 0
            made.append(
                SampleRecord(
                    version_id=version,
                    index=index,
                    input=f"{index}+{index}=?" if index != 2 else HOSTILE,
                    expected=str(2 * index),
                    output=str(2 * index) if right else "0",
                    metrics={"accuracy": 1.0 if right else 0.0, "similarity": (index % 10) / 10},
                    reason="looks right" if right else "",
                    passed=right,
                )
            )
    return made


def test_the_stage_keeps_every_record_once_under_the_pipeline_and_stage(tmp_path: Path) -> None:
    ctx = Context(tmp_path, Platform(records(["amv-a", "amv-b"], 6)))
    outputs = eval_samples.keep_samples(ctx, REF, {"amv-a": "base"})  # type: ignore[arg-type]
    assert outputs == {"samples_file": ".qfrun/results/demo/review/samples.jsonl"}
    written = outputs["samples_file"]
    lines = [json.loads(line) for line in (tmp_path / written).read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 12
    assert lines[0] == {
        "model": "base",  # the stage the user wrote, not the version id
        "version_id": "amv-a",
        "index": 1,
        "passed": True,
        "metrics": {"accuracy": 1.0, "similarity": 0.1},
        "input": "1+1=?",
        "expected": "2",
        "output": "2",
        "reason": "looks right",
    }
    assert lines[6]["model"] == "amv-b"  # a version no stage names keeps its id
    assert ctx.lines == [f"kept 12 per-sample records (5 failed) in {written}"]
    assert [p.name for p in (tmp_path / written).parent.iterdir()] == ["samples.jsonl"]  # no temporary left


def test_the_records_file_is_bounded_in_count_and_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eval_samples, "MAX_RECORDS", 3)
    long = SampleRecord("amv-a", 1, "x" * 5_000, "y", "z", {}, "", None)
    ctx = Context(tmp_path, Platform([long, *records(["amv-a"], 5)]))
    outputs = eval_samples.keep_samples(ctx, REF, {})  # type: ignore[arg-type]
    assert outputs["samples_truncated"] is True
    lines = [json.loads(line) for line in (tmp_path / outputs["samples_file"]).read_text().splitlines()]
    assert len(lines) == 3
    assert len(lines[0]["input"]) == eval_samples.MAX_TEXT_CHARS
    assert lines[0]["truncated"] is True
    assert "truncated" not in lines[1]
    assert ctx.lines[-1].endswith("(0 failed, the first of more than 3) in " + outputs["samples_file"])
    (table,) = samples.sample_tables([stage(outputs["samples_file"], samples_truncated=True)], tmp_path)
    assert (table["left_out"], table["cut"]) == (True, True)
    page = as_html(report_with([table]))  # type: ignore[arg-type]
    assert "the first kept: the records file is bounded" in page
    assert f"long texts cut at {eval_samples.MAX_TEXT_CHARS} characters" in page


def test_the_records_file_is_bounded_in_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_samples, "MAX_FILE_BYTES", 600)
    outputs = eval_samples.keep_samples(Context(tmp_path, Platform(records(["amv-a"], 20))), REF, {})  # type: ignore[arg-type]
    written = tmp_path / outputs["samples_file"]
    assert 0 < written.stat().st_size <= 600
    assert outputs["samples_truncated"] is True


def test_a_platform_without_records_leaves_the_stage_its_metrics(tmp_path: Path) -> None:
    assert eval_samples.keep_samples(Context(tmp_path, Platform(None)), REF, {}) == {}  # type: ignore[arg-type]
    failing = Context(tmp_path, Platform(error=PlatformServerError("gone", platform="local", status=400)))
    assert eval_samples.keep_samples(failing, REF, {}) == {}  # type: ignore[arg-type]
    assert failing.lines[0].startswith("kept no per-sample records: ")
    assert not (tmp_path / ".qfrun").exists()


def test_the_table_puts_each_sample_side_by_side_across_the_models(tmp_path: Path) -> None:
    written = kept(tmp_path, records(["amv-a", "amv-b"], 6))
    (table,) = samples.sample_tables([stage(written), stage(None, "other")], tmp_path)
    assert (table["stage"], table["models"], table["metrics"]) == (
        "review",
        ["base", "w4"],
        ["accuracy", "similarity"],
    )
    assert (table["total"], table["failed"], table["left_out"], table["cut"], table["note"]) == (
        6,
        {"base": 2, "w4": 3},
        False,
        False,
        "",
    )
    third = table["rows"][2]
    assert (third["index"], third["input"], third["expected"]) == (3, "3+3=?", "6")
    assert {model: answer["output"] for model, answer in third["answers"].items()} == {"base": "0", "w4": "6"}


@pytest.mark.parametrize(
    ("content", "written", "words"),
    [
        (None, "../outside.jsonl", "is outside the pipeline's folder"),
        (None, "missing.jsonl", "cannot be shown"),
        ('{"model": "a"}\n', "bad.jsonl", "line 1 is not a sample record"),
        ('{"model": "a", "index": 1, "metrics": {"x": "high"}}\n', "bad.jsonl", "line 1 is not a sample"),
        ('{"model": "a", "index": true, "metrics": {}}\n', "bad.jsonl", "line 1 is not a sample"),
        ("not json\n", "bad.jsonl", "cannot be shown"),
    ],
)
def test_a_records_file_that_cannot_be_read_is_a_note_not_a_failure(
    tmp_path: Path, content: str | None, written: str, words: str
) -> None:
    folder = tmp_path / "repo"
    folder.mkdir()
    (tmp_path / "outside.jsonl").write_text('{"model": "a", "index": 1}\n', encoding="utf-8")
    if content is not None:
        (folder / written).write_text(content, encoding="utf-8")
    (table,) = samples.sample_tables([stage(written)], folder)
    assert words in table["note"]
    assert table["rows"] == []


def test_the_page_embeds_the_data_once_as_inert_json_and_draws_it_with_its_own_script(tmp_path: Path) -> None:
    written = kept(tmp_path, records(["amv-a", "amv-b"], 60))
    tables = samples.sample_tables([stage(written)], tmp_path)
    page = as_html(report_with(tables))  # type: ignore[arg-type]
    tree = lxml.html.fromstring(page)
    (data,) = tree.xpath('//script[@id="qf-samples"]')
    assert data.get("type") == "application/json"
    assert json.loads(data.text) == tables  # every sample once, exactly as the report holds it
    assert HOSTILE not in page  # the sample's markup stays text inside the JSON
    assert not tree.xpath("//script[contains(., 'alert(1)') and not(@id)]")
    scripts = tree.xpath("//script")
    assert len(scripts) == 2  # the data and the viewer
    assert not any(s.get("src") for s in scripts)  # both inline
    assert "http" not in scripts[1].text  # nothing fetched: the page opens offline
    (viewer,) = tree.xpath('//div[@id="qf-samples-0"]')
    assert viewer.xpath('.//input[@class="qf-failures"]')
    assert viewer.xpath('.//select[@class="qf-sort"]/option/@value') == ["", "accuracy", "similarity"]
    assert viewer.xpath('.//table[@class="sample-table"]//th/text()') == [
        "#",
        "input",
        "expected",
        "base",
        "w4",
    ]
    assert "base: 20 failed, w4: 30 failed" in " ".join(tree.xpath("//p[@class='meta']//text()")[-1].split())


def test_a_page_without_records_has_no_viewer() -> None:
    page = as_html(report_with([]))  # type: ignore[arg-type]
    assert "<script" not in page


def test_the_viewer_pages_filters_to_failures_and_sorts_by_a_metric_of_a_model(tmp_path: Path) -> None:
    written = kept(tmp_path, records(["amv-a", "amv-b"], 120))
    (table,) = samples.sample_tables([stage(written)], tmp_path)

    first = view(table)
    assert (first["total"], first["pages"], first["page"]) == (120, 3, 0)
    assert [row["index"] for row in first["rows"]] == list(range(1, 51))
    last = view(table, page=99)  # past the end: the last page
    assert (last["page"], [row["index"] for row in last["rows"]][:2]) == (2, [101, 102])

    failures = view(table, failuresOnly=True, pageSize=1000)
    failing = [row["index"] for row in failures["rows"]]
    assert failing == [i for i in range(1, 121) if i % 3 == 0 or i % 2 == 0]  # either model wrong
    assert failures["total"] == len(failing)

    by_similarity = view(table, sortMetric="similarity", sortModel="w4", descending=True, pageSize=1000)
    values = [row["answers"]["w4"]["metrics"]["similarity"] for row in by_similarity["rows"]]
    assert values == sorted(values, reverse=True)
    ties = [
        row["index"] for row in by_similarity["rows"] if row["answers"]["w4"]["metrics"]["similarity"] == 0.9
    ]
    assert ties == sorted(ties)  # equal values keep the dataset's order


def test_samples_without_the_sorted_metric_go_last_either_way(tmp_path: Path) -> None:
    answer = [
        SampleRecord("amv-a", 1, "q", "a", "a", {}, "", None),
        SampleRecord("amv-a", 2, "q", "a", "a", {"accuracy": 0.0}, "", False),
        SampleRecord("amv-a", 3, "q", "a", "a", {"accuracy": 1.0}, "", True),
    ]
    (table,) = samples.sample_tables([stage(kept(tmp_path, answer))], tmp_path)
    for descending, order in ((False, [2, 3, 1]), (True, [3, 2, 1])):
        shown = view(table, sortMetric="accuracy", descending=descending)
        assert [row["index"] for row in shown["rows"]] == order


def test_the_markdown_summary_counts_failures_and_quotes_the_first_few(tmp_path: Path) -> None:
    written = kept(tmp_path, records(["amv-a", "amv-b"], 30))
    tables = samples.sample_tables([stage(written)], tmp_path)
    text = as_markdown(report_with(tables))  # type: ignore[arg-type]
    assert "**Failures in review** of 30 samples: `base` 10, `w4` 15" in text
    quoted = [line for line in text.splitlines() if line.startswith("- #")]
    assert len(quoted) == samples.FAILURES_SHOWN
    assert quoted[0] == "- #2 `w4`: " + escape_markdown(HOSTILE) + " → 0 (expected 4)"
    assert "<script>" not in text


def test_a_note_stands_in_the_markdown_for_records_it_cannot_read(tmp_path: Path) -> None:
    tables = samples.sample_tables([stage("../x.jsonl")], tmp_path)
    assert "is outside the pipeline's folder" in as_markdown(report_with(tables))  # type: ignore[arg-type]


def test_the_viewer_draws_a_page_as_text_and_its_controls_page_filter_and_sort(tmp_path: Path) -> None:
    written = kept(tmp_path, records(["amv-a", "amv-b"], 120))
    tables = samples.sample_tables([stage(written)], tmp_path)
    context = mounted(tables)
    rows = drawn(context)
    assert len(rows) == 50
    assert rows[1][:3] == ["2", HOSTILE, "4"]  # the sample's markup is a cell's text, nothing more
    assert rows[1][3].startswith("4accuracy 1.00, similarity 0.200 · judge: looks right")
    assert rows[1][4].startswith("0accuracy 0.00")
    assert context.eval("controls['.qf-page'].textContent") == "120 samples · page 1 of 3"
    assert context.eval("controls.tbody.children[1].children[4].className") == "text fail"

    context.eval("controls['.qf-next'].fire('click'); controls['.qf-next'].fire('click')")
    context.eval("controls['.qf-next'].fire('click')")  # past the last page: stays there
    assert context.eval("controls['.qf-page'].textContent") == "120 samples · page 3 of 3"
    assert drawn(context)[0][0] == "101"

    context.eval("controls['.qf-failures'].checked = true; controls['.qf-failures'].fire('change')")
    assert context.eval("controls['.qf-page'].textContent") == "80 samples · page 1 of 2"  # back to page 1
    context.eval("controls['.qf-sort'].value = 'similarity'; controls['.qf-sort'].fire('change')")
    context.eval("controls['.qf-desc'].checked = true; controls['.qf-desc'].fire('change')")
    context.eval("controls['.qf-model'].value = 'w4'; controls['.qf-model'].fire('change')")
    first = drawn(context)[0]
    assert "similarity 0.900" in first[4]
    context.eval("controls['.qf-prev'].fire('click')")  # before the first page: stays there
    assert context.eval("controls['.qf-page'].textContent") == "80 samples · page 1 of 2"
