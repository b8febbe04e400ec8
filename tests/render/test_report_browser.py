"""The HTML report in a real browser (headless Chromium through Playwright): it renders offline without a
console error, a hostile name never runs as script, charts take up space on the page, and the links lead to
the pipeline's lines. Skipped where no Chromium is installed (runner.testing.browser says how to get one)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from runner.pipeline.spec import load_pipeline
from runner.render.report import build_report, write_reports
from runner.testing.browser import chromium_or_skip, visit
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import run, write

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow  # a browser start costs about a second

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@pytest.fixture(scope="module")
def launched() -> Iterator[Browser]:
    """One Chromium start for this file's tests. Not one per session: while Playwright's sync API is open it
    marks the main thread's event loop as running, so another file's test that calls ``asyncio.run`` on the
    same worker would fail; every test in this file drives the browser."""
    with chromium_or_skip() as browser:
        yield browser


@pytest.fixture
def browser(launched: Browser) -> Iterator[Browser]:
    """The file's Chromium; the pages a test opened are closed after it (each ``visit`` is a context of its
    own, so no page, cookie or cache passes from one test to the next)."""
    yield launched
    for context in launched.contexts:
        context.close()


def _report_file(tmp_path: Path, change: Any = None) -> Path:
    path = write(tmp_path)
    _, state, _ = run(path, FakePlatform())
    report = build_report(load_pipeline(path), state)
    if change is not None:
        report = change(copy.deepcopy(report))
    folder = tmp_path / ".qfrun" / "reports" / "demo"
    return next(p for p in write_reports(report, folder) if p.suffix == ".html")


def test_the_report_of_a_run_renders_offline_without_a_console_error(
    tmp_path: Path, browser: Browser
) -> None:
    html = _report_file(tmp_path)
    seen = visit(browser, html)
    page = seen.page
    assert seen.errors == []
    assert page.title()
    charts = page.locator("svg")
    assert charts.count() >= 1
    for index in range(charts.count()):
        box = charts.nth(index).bounding_box()
        assert box is not None
        assert box["width"] > 50
        assert box["height"] > 20  # laid out, not collapsed to nothing
    stage_links = page.locator("table a[href*='#L']")
    assert stage_links.count() == 5
    # Each stage's link leads to the pipeline file beside the report's folders, at the stage's line.
    target = stage_links.first.evaluate("a => a.href")
    assert target.startswith((tmp_path / "pipeline.yaml").as_uri() + "#L")


def test_a_name_holding_markup_is_shown_as_text_and_never_runs(tmp_path: Path, browser: Browser) -> None:
    def poison(report: dict[str, Any]) -> dict[str, Any]:
        for stage in report["stages"]:
            stage["error"] = HOSTILE
            stage["reason"] = HOSTILE
        report["pipeline"] = HOSTILE
        return report

    html = _report_file(tmp_path, poison)
    seen = visit(browser, html)
    assert seen.dialogs == []  # neither the onerror handler nor the script ran
    assert seen.errors == []
    assert HOSTILE in seen.page.inner_text("body")  # shown as the text it is
    assert seen.page.locator("img[src=x]").count() == 0
