"""Text a pipeline controls stays text: in the Markdown plan (the pull-request comment), the Markdown report
and the HTML report, a tag, a link, an image or a script from any pipeline-controlled string is shown, never
acted on. Stage ids and the pipeline's name are constrained by the schema; everything else is free text:
names, descriptions, variables, smoke-test prompts and expectations, and what comes back from the platform
(model outputs, dataset rows quoted in an error, metric names a custom scorer chose)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from runner.pipeline.spec import load_pipeline
from runner.platform.protocol import TaskStatus
from runner.render.plan import as_markdown as plan_markdown
from runner.render.report import as_markdown as report_markdown
from runner.render.report import build_report
from runner.render.report_html import as_html
from runner.run.plan import make_plan
from runner.state.file import StateFile
from runner.testing.fake_platform import FakePlatform, Script
from runner.testing.pipelines import run, write

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>[link](https://evil.example)@org/all"
QUOTED = HOSTILE.replace("\\", "\\\\").replace('"', '\\"')

PIPELINE = f"""\
version: 1
name: inert
description: "{QUOTED}"
vars:
  note: "{QUOTED}"
datasets:
  qa: {{path: qa.jsonl}}
stages:
  base:
    type: model
    description: "{QUOTED}"
    version_id: amv-base
  base_infer:
    type: infer
    description: "{QUOTED}"
    model: base
    dataset: qa
    params: {{temperature: 0.1}}
  base_eval:
    type: evaluate
    infer: [base_infer]
    evaluators: [{{kind: rule, accuracy: true}}]
  serve:
    type: deploy
    model: base
    service:
      name: "<i>[a](b)@org</i>"  # at most 20 characters
      url_suffix: inert
      replicas: 1
      billing: {{payment: postpaid, charge: tokens}}
      resource_type: GPU-1-1
    smoke_test:
      - messages: [{{role: user, content: "${{{{ vars.note }}}}"}}]
        expect: {{contains: "<b>5</b>"}}
  gated:
    type: deploy
    model: base
    if: "${{{{ vars.note == '<img src=y>' }}}}"
    service:
      name: gated
      url_suffix: gated
      replicas: 1
      billing: {{payment: postpaid, charge: tokens}}
      resource_type: GPU-1-1
"""


def _outside_code_fences(markdown: str) -> str:
    """The Markdown with fenced blocks removed: inside a fence (longer than any backtick run in it, see
    planformat._fence) nothing renders, so only the rest can act."""
    return re.sub(r"^(`{3,})json\n.*?^\1$", "", markdown, flags=re.S | re.M)


def _active_markdown(markdown: str) -> list[str]:
    """Unescaped characters that would open a tag, a link or an image, and unbroken mentions."""
    text = _outside_code_fences(markdown)
    for own in (
        "<details><summary>Resolved parameters</summary>",
        "</details>",
    ):  # qfrun's, not the pipeline's
        text = text.replace(own, "")
    return re.findall(r"(?<!\\)[<\[]", text) + re.findall(r"@org", text)


def test_text_from_a_pipeline_is_inert_in_the_markdown_plan_and_the_html_and_markdown_report(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, PIPELINE)
    platform = FakePlatform(
        scripts={
            # the platform quotes a dataset row back in its message; a custom scorer names its own metrics
            "base_infer": Script(outcome=TaskStatus.SUCCEEDED),
            "base_eval": Script(
                result={"models": {"amv-base": {"metrics": {HOSTILE: 0.5, "accuracy": 0.9}, "samples": 2}}}
            ),
        },
        replies={"inert": HOSTILE + " (a model's answer)"},
    )
    pipeline = load_pipeline(path)
    first = plan_markdown(make_plan(pipeline, StateFile.load(tmp_path / "none.json", pipeline.name)))
    _, state, _ = run(path, platform, keep_going=True)
    # the plan after a variable changed: its old and new values are quoted in the reasons
    path.write_text(path.read_text().replace("@org/all", "@org/all!", 1))
    pipeline = load_pipeline(path)
    second = plan_markdown(make_plan(pipeline, StateFile.load(state.path, pipeline.name)))
    for plan in (first, second):
        assert "alert(1)" in plan  # the text is there, to be read ...
        assert "img src=y" in plan
        assert _active_markdown(plan) == []  # ... and cannot act

    report = build_report(pipeline, StateFile.load(state.path, pipeline.name))
    metrics = report["evaluations"][0]["metrics"]
    assert HOSTILE in metrics  # the hostile metric name reached the report
    serve = next(stage for stage in report["stages"] if stage["id"] == "serve")
    assert "alert(2)" in serve["error"]  # the model's answer, quoted by the failed smoke test

    markdown = report_markdown(report)
    assert "alert(1)" in markdown
    assert "alert(2)" in markdown
    assert _active_markdown(markdown) == []

    html = as_html(report)
    assert "alert(1)" in html
    assert "alert(2)" in html
    assert _html_elements(html) <= QFRUN_HTML  # no element or attribute came from the pipeline's text
    # the only links are qfrun's own: to the stages' lines in the pipeline file
    assert {re.sub(r"#L\d+$", "", href) for href in _Elements.links(html)} == {str(path)}


# Every element and attribute the report's own template uses: nothing that runs or fetches.
QFRUN_HTML = {
    *("html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "b", "table", "tr", "th", "td"),
    *(
        "code",
        "pre",
        "span",
        "svg",
        "rect",
        "line",
        "text",
        "g",
        "ul",
        "li",
        "small",
        "path",
        "defs",
        "marker",
        "a",  # links to a stage's line in the pipeline file and to Qianfan's console
        "a[href]",
    ),
}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.add(tag)
        self.found.update(
            f"{tag}[{name}]" for name, _ in attrs if name.startswith("on") or name in ("src", "href")
        )
        self.hrefs += [value or "" for name, value in attrs if name == "href"]

    @staticmethod
    def links(html: str) -> list[str]:
        parser = _Elements()
        parser.feed(html)
        return parser.hrefs


def _html_elements(html: str) -> set[str]:
    """The elements the page holds, and any attribute that would run code or fetch something."""
    parser = _Elements()
    parser.feed(html)
    return parser.found
