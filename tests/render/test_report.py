"""Reports: JSON as the source, markdown that fits a comment, and a self-contained HTML page."""

from __future__ import annotations

import json
from pathlib import Path

from runner.cli import main
from runner.pipeline.spec import load_pipeline
from runner.render.report import as_markdown, build_report, write_reports
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import run, write


def test_the_report_carries_statuses_metrics_model_sizes_and_the_service(tmp_path: Path) -> None:
    path = write(tmp_path)
    _, state, _ = run(path, FakePlatform())
    report = build_report(load_pipeline(path), state)
    assert [s["status"] for s in report["stages"]] == ["succeeded"] * 5
    assert report["evaluations"] == [
        {"stage": "base_eval", "metrics": {"accuracy": {"base_infer": 0.9}}, "samples": {"base_infer": 10}}
    ]
    assert {m["stage"]: m["size_bytes"] for m in report["models"]} == {"base": 1000, "w4": 300}
    (service,) = report["services"]
    assert service["url_suffix"] == "demo_w4"
    assert service["resource_type"] == "GPU-1-1"
    assert service["billing"] == "prepaid for 3 months (until 2030-01-01T00:00:00Z)"
    assert service["curl"].startswith("curl -s http://fake/chat/demo_w4 ")


def test_the_html_page_is_self_contained_and_shows_every_stage(tmp_path: Path) -> None:
    path = write(tmp_path)
    _, state, _ = run(path, FakePlatform())
    html_path = next(
        p
        for p in write_reports(build_report(load_pipeline(path), state), tmp_path / "out")
        if p.suffix == ".html"
    )
    html = html_path.read_text()
    assert "<script" not in html
    assert "src=" not in html  # nothing fetched from anywhere
    assert "http" not in html.replace("http://fake/", "")  # no page elsewhere: a local run links nowhere
    for stage in ("base", "base_infer", "base_eval", "w4", "serve"):
        assert f"<code>{stage}</code></a>" in html
    assert 'aria-label="metrics of base_eval"' in html


def test_a_failed_stage_shows_its_error_in_every_format(tmp_path: Path) -> None:
    path = write(tmp_path)
    _, state, _ = run(path, FakePlatform(replies={"demo_w4": "no idea"}))
    report = build_report(load_pipeline(path), state)
    serve = next(s for s in report["stages"] if s["id"] == "serve")
    assert serve["status"] == "failed"
    assert "smoke test 1 of 1 failed" in as_markdown(report)


def test_markdown_of_a_huge_report_fits_one_comment(tmp_path: Path) -> None:
    stages = [
        {"id": f"s{i}", "type": "infer", "status": "failed", "seconds": 1.0, "error": "x" * 150, "reason": ""}
        for i in range(5000)
    ]
    report = {
        "pipeline": "big",
        "run": None,
        "evaluations": [],
        "models": [],
        "services": [],
        "stages": stages,
    }
    text = as_markdown(report)
    assert len(text) <= 65_535
    assert "too large for one comment" in text


def test_qfrun_report_writes_html_markdown_and_json(tmp_path: Path, capsys: object) -> None:
    path = write(tmp_path)
    run(path, FakePlatform())
    main(["report", str(path), "--out", str(tmp_path / "r")])
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["report.html", "report.json", "report.md"]
    assert json.loads((tmp_path / "r" / "report.json").read_text())["pipeline"] == "demo"
