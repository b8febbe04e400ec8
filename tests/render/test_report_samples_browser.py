"""The report's sample viewer in a real browser (headless Chromium through Playwright): at 10,000 samples of
two models it draws one page of 50 rows without a console error, filters to failures, sorts by a metric of
one model, pages, and a sample holding markup stays text. Skipped where no Chromium is installed
(runner.testing.browser says how to get one)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from runner.platform.protocol import SampleRecord, TaskKind, TaskRef
from runner.render import samples
from runner.render.report import write_reports
from runner.stages import eval_samples
from runner.testing.browser import chromium_or_skip, visit
from runner.testing.reports import bare_report

pytestmark = pytest.mark.slow  # a browser start costs about a second

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"
COUNT = 10_000


class _Platform:
    def eval_samples(
        self, ref: TaskRef, limit: int, export_id: str = "", on_export: Any = None
    ) -> list[SampleRecord]:
        made = []
        for position, version in enumerate(("amv-a", "amv-b")):
            for index in range(1, COUNT + 1):
                right = index % (3 if position == 0 else 2) != 0
                made.append(
                    SampleRecord(
                        version,
                        index,
                        HOSTILE if index == 1 else f"{index}+{index}=?",
                        str(2 * index),
                        str(2 * index) if right else "0",
                        {"accuracy": float(right), "similarity": (index % 100) / 100},
                        "",
                        right,
                    )
                )
        return made[:limit]


class _Context:
    platform = _Platform()
    stage_id = "review"
    pipeline = "demo"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def local_path(self, path: str) -> str:
        return str(self.folder / path)

    def log(self, message: str) -> None:
        pass

    def remembered(self, key: str) -> str:
        return ""

    def remember(self, key: str, value: str) -> None:
        pass


def _page(tmp_path: Path) -> Path:
    ctx = _Context(tmp_path)
    labels = {"amv-a": "base", "amv-b": "w4"}
    outputs = eval_samples.keep_samples(ctx, TaskRef(TaskKind.EVALUATION, "ame-1", "x"), labels)  # type: ignore[arg-type]
    stage = {"id": "review", "type": "evaluate", "outputs": outputs}
    report = bare_report(
        path=str(tmp_path / "pipeline.yaml"), samples=samples.sample_tables([stage], tmp_path)
    )
    written = write_reports(report, tmp_path / "report")  # type: ignore[arg-type]
    return next(path for path in written if path.suffix == ".html")


def test_the_viewer_draws_filters_sorts_and_pages_ten_thousand_samples_in_a_browser(tmp_path: Path) -> None:
    html = _page(tmp_path)
    with chromium_or_skip() as browser:
        started = time.perf_counter()
        seen = visit(browser, html)
        page = seen.page
        page.wait_for_selector("#qf-samples-0 tbody tr")
        opened = time.perf_counter() - started
        assert seen.errors == []
        assert seen.dialogs == []  # the sample's markup never ran
        assert page.locator("img[src=x]").count() == 0
        rows = page.locator("#qf-samples-0 tbody tr")
        assert rows.count() == 50
        assert rows.first.locator("td").nth(1).inner_text() == HOSTILE  # shown as the text it is
        status = page.locator("#qf-samples-0 .qf-page")
        assert status.inner_text() == "10000 samples · page 1 of 200"

        page.check("#qf-samples-0 .qf-failures")
        failing = sum(1 for i in range(1, COUNT + 1) if i % 3 == 0 or i % 2 == 0)
        assert status.inner_text() == f"{failing} samples · page 1 of {-(-failing // 50)}"
        assert rows.first.locator("td").first.inner_text() == "2"

        page.select_option("#qf-samples-0 .qf-sort", "similarity")
        page.select_option("#qf-samples-0 .qf-model", "w4")
        page.check("#qf-samples-0 .qf-desc")
        assert "similarity 0.990" in rows.first.locator("td").nth(4).inner_text()

        page.click("#qf-samples-0 .qf-next")
        assert status.inner_text().endswith("page 2 of 134")
        assert rows.count() == 50
        assert opened < 30  # generous: the figure itself is measured by bench/report_samples.py
