"""The report's sample viewer as its tests drive it: records kept by an evaluate stage's own code into a
folder of the test's, the tables and report around them, and samples.js run in QuickJS (the dev extra), its
pure function and its drawing on the least of a DOM it touches (no browser installs here)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.platform.protocol import SampleRecord, TaskKind, TaskRef
from runner.render import samples
from runner.stages import eval_samples
from runner.testing.reports import bare_report

VIEWER = Path(samples.__file__).parent / "templates" / "samples.js"
REF = TaskRef(TaskKind.EVALUATION, "ame-1", "eval")


def _engine() -> Any:
    """A fresh QuickJS context (imported here: the dev extra has it, and tests skip without it)."""
    import quickjs  # type: ignore[import-untyped]

    return quickjs.Context()


@dataclass
class Platform:
    answer: list[SampleRecord] | None = None
    error: Exception | None = None

    def eval_samples(self, ref: TaskRef, limit: int) -> list[SampleRecord] | None:
        if self.error is not None:
            raise self.error
        return None if self.answer is None else self.answer[:limit]


@dataclass
class Context:
    """The part of a stage's context ``keep_samples`` uses, over a folder of the test's."""

    folder: Path
    platform: Platform
    stage_id: str = "review"
    pipeline: str = "demo"
    lines: list[str] = field(default_factory=list)

    def local_path(self, path: str) -> str:
        return str((self.folder / path).resolve())

    def log(self, message: str) -> None:
        self.lines.append(message)


def kept(tmp_path: Path, answer: list[SampleRecord], labels: dict[str, str] | None = None) -> str:
    ctx = Context(tmp_path, Platform(answer))
    outputs = eval_samples.keep_samples(ctx, REF, labels or {"amv-a": "base", "amv-b": "w4"})  # type: ignore[arg-type]
    return str(outputs["samples_file"])


def stage(written: str | None, sid: str = "review", **more: Any) -> dict[str, Any]:
    return {"id": sid, "type": "evaluate", "outputs": {"samples_file": written, **more} if written else {}}


def report_with(tables: list[samples.SampleTable]) -> dict[str, Any]:
    return bare_report(generated_at="2026-12-07T00:00:00Z", samples=tables)


def view(table: samples.SampleTable, **chosen: Any) -> dict[str, Any]:
    """The viewer's pure function, run by QuickJS over the JSON the page embeds."""
    context = _engine()
    context.eval(VIEWER.read_text(encoding="utf-8"))
    settings = {"failuresOnly": False, "sortMetric": "", "sortModel": "", "descending": False, "page": 0}
    settings.update({"pageSize": 50, **chosen})
    shown = context.eval(f"JSON.stringify(qfSamplesView({json.dumps(table)}, {json.dumps(settings)}))")
    result: dict[str, Any] = json.loads(shown)
    return result


# The least of a DOM that qfSamplesMount touches: elements with children, textContent, classes, listeners.
# No browser installs here, so the drawing code runs against this, in the same engine as the pure logic.
FAKE_DOM = """
function El(tag) { this.tag = tag; this.children = []; this.className = ""; this.listeners = {};
  this.checked = false; this.value = ""; this._text = ""; }
Object.defineProperty(El.prototype, "textContent", {
  get: function () {
    return this._text + this.children.map(function (c) { return c.textContent; }).join(""); },
  set: function (text) { this._text = text; this.children = []; } });
El.prototype.appendChild = function (child) { this.children.push(child); return child; };
El.prototype.addEventListener = function (event, act) { this.listeners[event] = act; };
El.prototype.fire = function (event) { this.listeners[event]({target: this}); };
var controls = {};
[".qf-failures", ".qf-sort", ".qf-model", ".qf-desc", ".qf-prev", ".qf-next", ".qf-page"].forEach(
  function (name) { controls[name] = new El("control"); });
controls["tbody"] = new El("tbody");
var root = new El("div");
root.querySelector = function (selector) { return controls[selector]; };
var loaded = null;
var document = {
  createElement: function (tag) { return new El(tag); },
  addEventListener: function (event, act) { loaded = act; },
  getElementById: function (id) { return id === "qf-samples" ? {textContent: DATA} : root; } };
"""


def mounted(tables: list[samples.SampleTable], *more_controls: str) -> Any:
    """A QuickJS context where the viewer has mounted the first table on the fake DOM, with the controls
    every table has and ``more_controls`` (selectors) that only some have."""
    context = _engine()
    context.set("DATA", json.dumps(tables))
    context.eval(FAKE_DOM)
    for selector in more_controls:
        context.eval(f"controls[{json.dumps(selector)}] = new El('control')")
    context.eval(VIEWER.read_text(encoding="utf-8"))
    context.eval("loaded()")  # DOMContentLoaded
    return context


def drawn(context: Any) -> list[list[str]]:
    """The table body as text: one list of cell texts per row."""
    rows = context.eval(
        "JSON.stringify(controls.tbody.children.map(function (tr) {"
        " return tr.children.map(function (td) { return td.textContent; }); }))"
    )
    return json.loads(rows)  # type: ignore[no-any-return]
