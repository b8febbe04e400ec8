"""The scoring form's own code, run in Node with a small stand-in for the page: it loads a half-filled sheet,
takes the rest of the scores, and saves a CSV that the runner reads back as the complete scores."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.stages import scoresheet, scoresheet_html
from runner.stages.scoresheet import Answer, Scale

NODE = shutil.which("node")

# Just enough of a DOM for the form: elements with children, text, values, classes and listeners; a file
# input whose file the test names; a download link whose Blob the test captures.
HARNESS = r"""
const fs = require("fs");
const [page, loadPath, typed] = process.argv.slice(1);  // node -e: no script path in argv
const html = fs.readFileSync(page, "utf8");
const scripts = [...html.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)].map(m => m[1]);
const all = [];
function element(tag, id) {
  const e = { tag, id, children: [], textContent: "", value: "", className: "", listeners: {},
    classList: { set: new Set(), toggle(name, on) { on ? this.set.add(name) : this.set.delete(name); } },
    append(...kids) { this.children.push(...kids); },
    addEventListener(type, fn) { this.listeners[type] = fn; },
    click() { if (this.listeners.click) this.listeners.click(); if (this.download) link = this; } };
  all.push(e);
  return e;
}
const ids = {};
for (const id of ["dimensions", "load", "save", "status", "head", "rows"]) ids[id] = element("x", id);
ids.sheet = element("script", "sheet"); ids.sheet.textContent = scripts[0];
global.document = { getElementById: id => ids[id], createElement: tag => element(tag) };
let blob = null, link = null;
global.Blob = class { constructor(parts) { this.text = parts.join(""); } };
global.URL = { createObjectURL: b => { blob = b; return "blob:1"; } };
function saved() { process.stdout.write(JSON.stringify({ file: link.download, csv: blob.text,
  status: ids.status.textContent, bad: all.filter(e => e.classList.set.has("bad")).length })); }
eval(scripts[1]);
(async () => {
  const text = fs.readFileSync(loadPath, "utf8");
  await ids.load.listeners.change({ target: { files: [{ name: "half.csv", text: async () => text }] } });
  const inputs = all.filter(e => e.tag === "input");
  for (const [index, value] of JSON.parse(typed)) { inputs[index].value = value;
    inputs[index].listeners.input(); }
  ids.save.click();
  saved();
})();
"""

ANSWERS = [
    Answer("base", 1, "2+3=?", "5", "5"),
    Answer("base", 2, 'a "quoted", comma\nand a new line', "x", "</script> y"),
]
DIMS = [{"name": "satisfaction", "description": "overall"}, {"name": "tone", "description": "polite"}]
SCALE = Scale(1, 5)


@pytest.mark.skipif(NODE is None, reason="the form's code runs in Node, which this machine lacks")
def test_the_form_loads_a_half_filled_sheet_and_saves_one_the_runner_accepts(tmp_path: Path) -> None:
    page = tmp_path / "review.html"
    page.write_text(scoresheet_html.render("review", "scores/review.csv", ANSWERS, DIMS, SCALE))
    half = tmp_path / "half.csv"  # someone scored the first answer already
    exported = scoresheet.render(ANSWERS, ["satisfaction", "tone"])
    half.write_text(exported.replace("5,5,,\n", "5,5,4,3\n", 1), encoding="utf-8")
    typed = [[2, "2"], [3, "5"]]  # the second answer's two fields (fields 0 and 1 belong to the first)
    assert NODE is not None
    result = subprocess.run(
        [NODE, "-e", HARNESS, str(page), str(half), json.dumps(typed)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    saved = json.loads(result.stdout)
    assert saved["file"] == "review.csv"
    assert saved["bad"] == 0
    assert saved["status"] == "Saved review.csv."
    sheet = tmp_path / "review.csv"
    sheet.write_text(saved["csv"], encoding="utf-8")
    scores = scoresheet.read(sheet, "review.csv", ANSWERS, ["satisfaction", "tone"], SCALE)
    assert scores == {
        ("base", 1): {"satisfaction": 4, "tone": 3},
        ("base", 2): {"satisfaction": 2, "tone": 5},
    }


@pytest.mark.skipif(NODE is None, reason="the form's code runs in Node, which this machine lacks")
def test_the_form_marks_a_score_outside_the_range_and_says_so_when_saving(tmp_path: Path) -> None:
    page = tmp_path / "review.html"
    page.write_text(scoresheet_html.render("review", "scores/review.csv", ANSWERS, DIMS, SCALE))
    half = tmp_path / "half.csv"
    half.write_text(scoresheet.render(ANSWERS, ["satisfaction", "tone"]), encoding="utf-8")
    assert NODE is not None
    result = subprocess.run(
        [NODE, "-e", HARNESS, str(page), str(half), json.dumps([[0, "9"], [1, "2.5"]])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    saved = json.loads(result.stdout)
    assert saved["bad"] == 2
    assert re.fullmatch(r"2 scores are outside 1\.\.5; fix them before committing\.", saved["status"])
