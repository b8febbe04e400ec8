"""The HTML report's size and time with per-sample results (issue 15 item 4): 200 and 10,000 samples, each
answered by two models, as an evaluate stage keeps them (runner.stages.eval_samples).

Measured: report.html's bytes; the time to group the records and render the page (Python); the viewer's
script work in QuickJS (parse the embedded JSON, then the first page, the failures and a sort by a metric);
and, where a Chromium is installed (runner.testing.browser), the time to open the file in headless Chromium
until the first page of samples is drawn.

    PYTHONPATH=. python bench/report_samples.py
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lxml.html
from harness import median_time

from runner.platform.protocol import SampleRecord, TaskKind, TaskRef
from runner.render import samples
from runner.render.report_html import as_html
from runner.stages.eval_samples import keep_samples
from runner.testing.reports import bare_report

SIZES = (200, 10_000)
MODELS = ("amv-base", "amv-w4")


@dataclass
class _Platform:
    answer: list[SampleRecord]

    def eval_samples(self, ref: TaskRef, limit: int) -> list[SampleRecord]:
        return self.answer[:limit]


@dataclass
class _Context:
    folder: Path
    platform: _Platform
    stage_id: str = "review"
    pipeline: str = "bench"

    def local_path(self, path: str) -> str:
        return str(self.folder / path)

    def log(self, message: str) -> None:
        pass


def _records(count: int) -> list[SampleRecord]:
    made = []
    for position, version in enumerate(MODELS):
        for index in range(1, count + 1):
            right = (index * (position + 3)) % 7 != 0
            made.append(
                SampleRecord(
                    version,
                    index,
                    f"Question {index}: what is {index} + {index * 3}? Answer with the number alone.",
                    str(index * 4),
                    str(index * 4) if right else str(index * 4 + 1),
                    {"accuracy": float(right), "similarity": 0.5 + (index % 50) / 100},
                    "",
                    right,
                )
            )
    return made


def measure(count: int, folder: Path) -> dict[str, Any]:
    import quickjs

    ctx = _Context(folder, _Platform(_records(count)))
    written = keep_samples(ctx, TaskRef(TaskKind.EVALUATION, "ame-bench", "bench"), {})["samples_file"]  # type: ignore[arg-type]
    stage = {"id": "review", "type": "evaluate", "outputs": {"samples_file": written}}

    def render() -> str:
        return as_html(
            bare_report(pipeline="bench", path="bench.yaml", samples=samples.sample_tables([stage], folder))
        )  # type: ignore[arg-type]

    seconds = median_time(render, 3)
    page = render()
    data = lxml.html.fromstring(page).xpath('//script[@id="qf-samples"]')[0].text
    viewer = (Path(samples.__file__).parent / "templates" / "samples.js").read_text(encoding="utf-8")

    def open_page() -> None:
        js = quickjs.Context()
        js.eval(viewer)
        js.set("raw", data)
        js.eval(
            "var t = JSON.parse(raw)[0];"
            "qfSamplesView(t, {page: 0, pageSize: 50});"
            "qfSamplesView(t, {failuresOnly: true, page: 0, pageSize: 50});"
            "qfSamplesView(t, {sortMetric: 'similarity', sortModel: t.models[1], descending: true,"
            " page: 0, pageSize: 50});"
        )

    html = folder / "report.html"
    html.write_text(page, encoding="utf-8")
    return {
        "samples": count,
        "records_bytes": (folder / written).stat().st_size,
        "html_bytes": len(page.encode("utf-8")),
        "render_s": seconds,
        "viewer_s": median_time(open_page, 3),
        "browser_s": _browser_open(html),
    }


def _browser_open(html: Path) -> float | None:
    """Median seconds from navigation to the first drawn row in headless Chromium; None without one."""
    from runner.testing.browser import FLAGS, chromium_path

    binary = chromium_path()
    if binary is None:
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=list(FLAGS))
        try:

            def open_once() -> None:
                page = browser.new_context(offline=True).new_page()
                page.goto(html.resolve().as_uri())
                page.wait_for_selector("#qf-samples-0 tbody tr")
                page.context.close()

            open_once()  # the first page a browser opens also pays for its start
            return median_time(open_once, 3)
        finally:
            browser.close()


def _ms(seconds: float | None) -> str:
    return "no Chromium" if seconds is None else f"{seconds * 1000:.0f} ms"


def main() -> None:
    print("| samples, models | samples.jsonl | report.html | render | viewer (QuickJS) | open (Chromium) |")
    print("|---|---|---|---|---|---|")
    for count in SIZES:
        with tempfile.TemporaryDirectory() as folder:
            row = measure(count, Path(folder))
        print(
            f"| {row['samples']:,}, {len(MODELS)} | {row['records_bytes'] / 1e6:.2f} MB "
            f"| {row['html_bytes'] / 1e6:.2f} MB | {row['render_s'] * 1000:.0f} ms "
            f"| {row['viewer_s'] * 1000:.0f} ms "
            f"| {_ms(row['browser_s'])} |"
        )
    print(f"\nPython {sys.version.split()[0]}; medians of 3.")


if __name__ == "__main__":
    main()
