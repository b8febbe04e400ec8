"""Benchmark items in the report's sample viewer: each is its own sample beside the dataset's (a benchmark's
item 1 is not the dataset's sample 1), named by its benchmark, and the viewer shows one benchmark's items
alone; the Markdown summary names the benchmark of a failing item."""

from __future__ import annotations

from pathlib import Path

import lxml.html
import pytest

from runner.platform.protocol import SampleRecord
from runner.render import samples
from runner.render.report import as_markdown
from runner.render.report_html import as_html
from runner.testing.sample_viewer import drawn, kept, mounted, report_with, stage, view

quickjs = pytest.importorskip("quickjs")


def answers(version: str) -> list[SampleRecord]:
    """Two dataset samples and three items of two benchmarks, every item 1 wrong."""
    made = [
        SampleRecord(version, 1, "1+1=?", "2", "2", {"accuracy": 1.0}, "", True),
        SampleRecord(version, 2, "2+2=?", "4", "4", {"accuracy": 1.0}, "", True),
    ]
    for name, count in (("arith_gen", 2), ("arith_mc", 1)):
        for index in range(1, count + 1):
            right = index != 1
            metric = {f"{name}_score": 1.0 if right else 0.0}
            made.append(
                SampleRecord(version, index, f"Q{index}", "A", "A" if right else "B", metric, "", right, name)
            )
    return made


@pytest.fixture
def table(tmp_path: Path) -> samples.SampleTable:
    written = kept(tmp_path, answers("amv-a") + answers("amv-b"))
    (found,) = samples.sample_tables([stage(written)], tmp_path)
    return found


def test_benchmark_items_are_samples_of_their_own_after_the_datasets(table: samples.SampleTable) -> None:
    assert [(row["benchmark"], row["index"]) for row in table["rows"]] == [
        ("", 1),
        ("", 2),
        ("arith_gen", 1),
        ("arith_gen", 2),
        ("arith_mc", 1),
    ]
    assert table["benchmarks"] == ["arith_gen", "arith_mc"]
    assert (table["total"], table["failed"]) == (5, {"base": 2, "w4": 2})
    assert set(table["rows"][2]["answers"]) == {"base", "w4"}  # side by side across the models


@pytest.mark.parametrize(
    ("benchmark", "shown"),
    [
        ("*", [("", 1), ("", 2), ("arith_gen", 1), ("arith_gen", 2), ("arith_mc", 1)]),
        ("", [("", 1), ("", 2)]),
        ("arith_gen", [("arith_gen", 1), ("arith_gen", 2)]),
        ("mmlu", []),
    ],
)
def test_the_viewer_shows_every_sample_the_datasets_or_one_benchmarks(
    table: samples.SampleTable, benchmark: str, shown: list[tuple[str, int]]
) -> None:
    found = view(table, benchmark=benchmark)
    assert [(row["benchmark"], row["index"]) for row in found["rows"]] == shown
    failures = view(table, benchmark=benchmark, failuresOnly=True)
    assert [(row["benchmark"], row["index"]) for row in failures["rows"]] == [
        key for key in shown if key[1] == 1 and key[0]
    ]


def test_equal_values_keep_the_tables_order_across_benchmarks(table: samples.SampleTable) -> None:
    rows = view(table, sortMetric="arith_gen_score")["rows"]
    assert [(row["benchmark"], row["index"]) for row in rows] == [
        ("arith_gen", 1),
        ("arith_gen", 2),
        ("", 1),  # samples without the metric last, in the table's order
        ("", 2),
        ("arith_mc", 1),
    ]


def test_the_page_offers_the_choice_only_with_benchmark_items(
    tmp_path: Path, table: samples.SampleTable
) -> None:
    tree = lxml.html.fromstring(as_html(report_with([table])))  # type: ignore[arg-type]
    options = tree.xpath('//div[@id="qf-samples-0"]//select[@class="qf-benchmark"]/option/@value')
    assert options == ["*", "", "arith_gen", "arith_mc"]
    (tmp_path / "plain").mkdir()
    plain = kept(tmp_path / "plain", answers("amv-a")[:2])
    tables = samples.sample_tables([stage(plain)], tmp_path / "plain")
    tree = lxml.html.fromstring(as_html(report_with(tables)))  # type: ignore[arg-type]
    assert not tree.xpath('//select[@class="qf-benchmark"]')


def test_the_drawn_table_names_each_items_benchmark_and_the_choice_filters_it(
    table: samples.SampleTable,
) -> None:
    context = mounted([table], ".qf-benchmark")
    assert [row[0] for row in drawn(context)] == ["1", "2", "arith_gen #1", "arith_gen #2", "arith_mc #1"]
    context.eval("controls['.qf-benchmark'].value = 'arith_mc'; controls['.qf-benchmark'].fire('change')")
    assert [row[0] for row in drawn(context)] == ["arith_mc #1"]
    assert context.eval("controls['.qf-page'].textContent") == "1 samples · page 1 of 1"


def test_the_markdown_summary_names_the_benchmark_of_a_failing_item(table: samples.SampleTable) -> None:
    text = as_markdown(report_with([table]))  # type: ignore[arg-type]
    quoted = [line for line in text.splitlines() if line.startswith("- ")]
    assert quoted[:2] == [
        "- arith_gen #1 `base`: Q1 → B (expected A)",
        "- arith_gen #1 `w4`: Q1 → B (expected A)",
    ]


@pytest.mark.slow  # a browser start costs about a second
def test_a_browser_shows_one_benchmarks_items_when_the_reader_picks_it(
    tmp_path: Path, table: samples.SampleTable
) -> None:
    from runner.render.report import write_reports
    from runner.testing.browser import chromium_or_skip, visit

    written = write_reports(report_with([table]), tmp_path / "report")  # type: ignore[arg-type]
    html = next(path for path in written if path.suffix == ".html")
    with chromium_or_skip() as browser:
        seen = visit(browser, html)
        page = seen.page
        page.wait_for_selector("#qf-samples-0 tbody tr")
        rows = page.locator("#qf-samples-0 tbody tr")
        assert rows.count() == 5
        page.select_option("#qf-samples-0 .qf-benchmark", "arith_gen")
        assert [rows.nth(n).locator("td").first.inner_text() for n in range(rows.count())] == [
            "arith_gen #1",
            "arith_gen #2",
        ]
        page.check("#qf-samples-0 .qf-failures")
        assert rows.count() == 1
        page.select_option("#qf-samples-0 .qf-benchmark", "")
        assert rows.count() == 0  # the dataset's samples all passed
        assert seen.errors == []
