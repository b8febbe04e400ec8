"""The HTML report's structure, parsed with lxml's HTML parser (test_report_browser.py opens it in Chromium):
escaped text, one colour per model in every chart, charts with axes and values, sizes in binary units, links
to the pipeline's lines and to Qianfan's console."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import lxml.html
import pytest

from runner.pipeline.spec import load_pipeline
from runner.render import charts
from runner.render.console import (
    EVALUATION_PAGE,
    MANUAL_EVALUATION_PAGE,
    MODELS_PAGE,
    SERVICES_PAGE,
    console_link,
)
from runner.render.report import as_markdown, build_report, write_reports
from runner.render.report_html import as_html
from runner.render.units import size_text
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import DEMO, run, write

SCRIPT = "<script>alert('x')</script>"
MiB = 1024 * 1024


def _report(**changes: Any) -> dict[str, Any]:
    """A report as build_report writes it: three models, two evaluations, a service."""

    def stage(sid: str, kind: str, upstream: list[str], **more: Any) -> dict[str, Any]:
        return {
            "id": sid,
            "type": kind,
            "line": 10,
            "status": "succeeded",
            "attempt": 1,
            "task_id": None,
            "console": None,
            "started_at": "",
            "finished_at": "",
            "seconds": 3.0,
            "error": "",
            "reason": "",
            "outputs": {},
            "upstream": upstream,
            **more,
        }

    report: dict[str, Any] = {
        "qfrun_report": 1,
        "pipeline": "demo",
        "path": "pipeline.yaml",
        "platform": "local",
        "generated_at": "2026-12-07T00:00:00Z",
        "run": None,
        "stages": [
            stage("base", "model", []),
            stage("base_infer", "infer", ["base"]),
            stage("base_eval", "evaluate", ["base_infer"]),
            stage("w8", "compress", ["base"]),
            stage("w4", "compress", ["base"]),
            stage("compressed_eval", "evaluate", ["w8", "w4"]),
        ],
        "edges": [
            ["base", "base_infer"],
            ["base_infer", "base_eval"],
            ["base", "w8"],
            ["base", "w4"],
            ["w8", "compressed_eval"],
            ["w4", "compressed_eval"],
        ],
        "evaluations": [
            {
                "stage": "base_eval",
                "metrics": {"accuracy": {"base_infer": 0.9}},
                "samples": {"base_infer": 200},
            },
            {
                "stage": "compressed_eval",
                "metrics": {"accuracy": {"w8": 0.9, "w4": 0.85}, "similarity": {"w8": 0.95, "w4": 0.93}},
                "samples": {"w8": 200, "w4": 200},
            },
        ],
        "models": [
            {
                "stage": "base",
                "version_id": "amv-1",
                "size_bytes": 8 * MiB,
                "scheme": "source",
                "source": None,
            },
            {
                "stage": "w8",
                "version_id": "amv-2",
                "size_bytes": 4 * MiB,
                "scheme": "W8A16",
                "source": "base",
            },
            {
                "stage": "w4",
                "version_id": "amv-3",
                "size_bytes": 3 * MiB // 2,
                "scheme": "W4A16",
                "source": "base",
            },
        ],
        "services": [],
    }
    report["comparison"] = {
        "stage": "all evaluations",
        "metrics": {
            "accuracy": {"base_infer": 0.9, "w8": 0.9, "w4": 0.85},
            "similarity": {"w8": 0.95, "w4": 0.93},
        },
        "samples": {"base_infer": 200, "w8": 200, "w4": 200},
    }
    report.update(changes)
    return report


def _charts(page: lxml.html.HtmlElement) -> dict[str, Any]:
    return {svg.get("aria-label"): svg for svg in page.iter("svg")}


def _bar_colours(svg: Any) -> dict[str, str]:
    """Each bar's series (from its tooltip, ``w4: 0.85``) and its fill."""
    return {rect.findtext("title").split(":")[0]: rect.get("fill") for rect in svg.iter("rect") if len(rect)}


def test_every_string_stays_text_even_a_stage_id_and_a_model_name_holding_a_script() -> None:
    report = _report()
    hostile = copy.deepcopy(report)
    for stage in hostile["stages"]:
        stage["id"] = stage["id"] + SCRIPT
        stage["upstream"] = [u + SCRIPT for u in stage["upstream"]]
        stage["error"] = SCRIPT
    hostile["edges"] = [[s + SCRIPT, t + SCRIPT] for s, t in report["edges"]]
    for model in hostile["models"]:
        model["stage"] += SCRIPT
        model["version_id"] += SCRIPT
        model["scheme"] = SCRIPT
    for evaluation in [*hostile["evaluations"], hostile["comparison"]]:
        evaluation["stage"] += SCRIPT
        evaluation["metrics"] = {
            name + SCRIPT: {model + SCRIPT: value for model, value in values.items()}
            for name, values in evaluation["metrics"].items()
        }
        evaluation["samples"] = {model + SCRIPT: n for model, n in evaluation["samples"].items()}
    hostile["pipeline"] = hostile["path"] = SCRIPT
    hostile["services"] = [
        {
            "stage": SCRIPT,
            "url_suffix": SCRIPT,
            "url": SCRIPT,
            "replicas": 1,
            "resource_type": SCRIPT,
            "billing": SCRIPT,
            "smoke_test": {"passed": 1, "total": 1},
            "curl": SCRIPT,
            "console": None,
        }
    ]

    html = as_html(hostile)
    page = lxml.html.document_fromstring(html)
    assert page.xpath("//script") == []
    assert not [name for element in page.iter() for name in element.attrib if name.startswith("on")]
    assert "<script>" not in html
    text = page.text_content()
    assert text.count(SCRIPT) >= 30  # shown, as text: ids, models, metrics, errors, the service
    assert f"base_infer{SCRIPT}: 0.9" in [t.text for t in page.iter("title")]  # in a chart's tooltip too
    # a link's address is percent-encoded: a pipeline path cannot leave its attribute or become a scheme
    assert all(href.startswith("%3Cscript%3E") for href in page.xpath("//a/@href"))


def test_a_model_keeps_its_colour_in_every_chart_and_table_of_the_report() -> None:
    page = lxml.html.document_fromstring(as_html(_report()))
    found = _charts(page)
    base_eval = _bar_colours(found["metrics of base_eval"])
    compressed = _bar_colours(found["metrics of compressed_eval"])
    across = _bar_colours(found["metrics of all evaluations"])
    sizes = _bar_colours(found["model sizes"])
    # base is scored through its infer stage: its bars take base's colour
    assert base_eval["base_infer"] == across["base_infer"] == sizes["base"]
    assert compressed["w8"] == across["w8"] == sizes["w8"]
    assert compressed["w4"] == across["w4"] == sizes["w4"]
    assert len({sizes["base"], sizes["w8"], sizes["w4"]}) == 3
    swatches = {
        row.xpath("string(td[1])").strip(): row.xpath("td[1]/span/@style")[0]
        for row in page.xpath("//h2[.='Model versions']/following-sibling::table[1]//tr[td]")
    }
    assert swatches == {model: f"background:{colour}" for model, colour in sizes.items()}


def test_the_colours_follow_the_pipeline_so_a_report_rendered_twice_is_the_same() -> None:
    colours = charts.model_colours(_report())
    assert colours == charts.model_colours(_report())
    assert [colours[m] for m in ("base", "w8", "w4")] == list(charts.PALETTE[:3])
    assert list(colours) == ["base", "base_infer", "w8", "w4"]  # the order every chart shows them in
    chart = charts.metric_chart(_report()["comparison"], colours)
    assert chart is not None
    assert [entry.text for entry in chart.legend] == ["base_infer (n=200)", "w8 (n=200)", "w4 (n=200)"]
    assert [bar.title for bar in chart.bars][:3] == ["base_infer: 0.9", "w8: 0.9", "w4: 0.85"]


def test_charts_have_a_value_axis_with_ticks_its_unit_and_the_value_of_each_bar() -> None:
    found = _charts(lxml.html.document_fromstring(as_html(_report())))
    metric = [t.text_content() for t in found["metrics of compressed_eval"].iter("text")]
    assert {"0", "0.2", "0.4", "0.6", "0.8", "1"} <= set(metric)  # the score axis
    assert "score" in metric
    assert {"0.9", "0.85", "0.95", "0.93"} <= set(metric)  # each bar's value
    assert {"accuracy", "similarity", "w8 (n=200)", "w4 (n=200)"} <= set(metric)
    sizes = [t.text_content() for t in found["model sizes"].iter("text")]
    assert {"0", "2", "4", "6", "8"} <= set(sizes)
    assert "size (MiB)" in sizes
    assert {"8.0 MiB", "4.0 MiB", "1.5 MiB"} <= set(sizes)
    assert {"base", "w8", "w4"} <= set(sizes)


@pytest.mark.parametrize(
    ("largest", "ticks"),
    [
        (0.9, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (1.0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (37.2, [0, 10, 20, 30, 40]),
        (8.0, [0, 2, 4, 6, 8]),
        (0.0, [0, 1]),
        (12.0, [0, 2.5, 5, 7.5, 10, 12.5]),
    ],
)
def test_axis_ticks_are_round_numbers_from_zero_to_at_least_the_largest_value(
    largest: float, ticks: list[float]
) -> None:
    assert charts.nice_ticks(largest) == ticks


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (3 * MiB // 2, "1.5 MiB"),
        (5 * 1024**3, "5.0 GiB"),
        (None, ""),
        ("big", ""),
    ],
)
def test_sizes_are_written_in_binary_units_named_as_such(size: Any, text: str) -> None:
    assert size_text(size) == text


def test_the_markdown_and_the_html_report_write_a_size_the_same_way() -> None:
    report = _report()
    html = lxml.html.document_fromstring(as_html(report)).text_content()
    markdown = as_markdown(report)
    for shown in ("8.0 MiB", "4.0 MiB", "1.5 MiB"):
        assert shown in markdown
        assert shown in html
    assert " MB" not in markdown + html


def test_each_stage_links_to_its_line_in_the_pipeline_file_relative_to_the_page(tmp_path: Path) -> None:
    path = write(tmp_path)
    _, state, _ = run(path, FakePlatform())
    folder = tmp_path / ".qfrun" / "reports" / "demo"
    html_path = next(
        p for p in write_reports(build_report(load_pipeline(path), state), folder) if p.suffix == ".html"
    )
    page = lxml.html.document_fromstring(html_path.read_text())
    lines = path.read_text().splitlines()
    links = {a.text_content(): a.get("href") for a in page.xpath("//table//a")}
    assert set(links) == {"base", "base_infer", "base_eval", "w4", "serve"}
    for stage_id, href in links.items():
        target, _, line = href.partition("#L")
        assert target == "../../../pipeline.yaml"
        assert Path(os.path.normpath(folder / unquote(target))) == path
        assert lines[int(line) - 1] == f"  {stage_id}:"
    graph = {a.text_content(): a.get("href") for a in _charts(page)["stage graph"].iter("a")}
    assert graph == links  # the boxes of the graph link the same lines


def test_on_qianfan_each_task_and_the_service_link_to_their_console_pages(tmp_path: Path) -> None:
    path = write(tmp_path, DEMO.replace("name: demo\n", "name: demo\nplatform: qianfan\n"))
    _, state, _ = run(path, FakePlatform())
    report = build_report(load_pipeline(path), state)
    page = lxml.html.document_fromstring(as_html(report))
    consoles = {
        row.xpath("string(td[1])"): row.xpath("td[5]/a/@href")
        for row in page.xpath("//h2[.='Stages']/following-sibling::table[1]//tr[td]")
    }
    evaluation = next(s["task_id"] for s in report["stages"] if s["id"] == "base_eval")
    assert consoles == {
        "base": [],  # a version named in the pipeline: no task, nothing created on the platform
        "base_infer": [],  # Qianfan documents no page for a batch inference task
        "base_eval": [EVALUATION_PAGE.format(task_id=evaluation)],
        "w4": [MODELS_PAGE],  # no page for one compression task: the list its version joins
        "serve": [SERVICES_PAGE],
    }
    assert page.xpath("//h2[starts-with(., 'Service')]/following-sibling::p[1]/a/@href") == [SERVICES_PAGE]


def test_on_the_local_platform_nothing_links_to_a_console(tmp_path: Path) -> None:
    path = write(tmp_path)
    _, state, _ = run(path, FakePlatform())
    report = build_report(load_pipeline(path), state)
    assert [s["console"] for s in report["stages"]] == [None] * 5
    assert all("#L" in href for href in lxml.html.document_fromstring(as_html(report)).xpath("//a/@href"))


def test_an_evaluation_scored_by_people_links_to_its_scoring_page_and_an_odd_id_stays_one_path_segment() -> (
    None
):
    manual = {"evaluators": [{"kind": "rule", "accuracy": True}, {"kind": "manual", "dimensions": ["x"]}]}
    task = {"kind": "evaluation", "task_id": "ame-1"}
    assert console_link("qianfan", task, manual) == MANUAL_EVALUATION_PAGE.format(task_id="ame-1")
    odd = {"kind": "evaluation", "task_id": "../../x?y#z"}
    assert console_link("qianfan", odd, {}) == EVALUATION_PAGE.format(task_id="..%2F..%2Fx%3Fy%23z")
    assert console_link("local", task, {}) is None
    assert console_link("qianfan", {"kind": "batch_inference", "task_id": "infer-1"}, {}) is None
    assert console_link("qianfan", {}, {}) is None
