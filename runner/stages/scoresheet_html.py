"""A small scoring form beside the scoring sheet: one self-contained HTML file that opens offline.

It shows every answer with a number field per dimension, loads a sheet (the CSV, perhaps half filled by
someone else) and saves the scores as that CSV, to be committed in place of the exported one. Nothing is
fetched from anywhere (no CDN; the Content-Security-Policy forbids it), and every text from the samples and
the model outputs reaches the page as data, set with ``textContent``, never as markup.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence

from runner.stages.scoresheet import FIXED_COLUMNS, Answer, Scale

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>Scoring sheet: __TITLE__</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: .3rem .5rem; vertical-align: top; text-align: left; }
td.text { white-space: pre-wrap; max-width: 28rem; }
input[type=number] { width: 4rem; }
input.bad { background: #fdd; }
#status { margin: .5rem 0; color: #555; }
</style>
</head>
<body>
<h1>Scoring sheet: __TITLE__</h1>
<p>Score every answer from __LOW__ to __HIGH__ on each dimension, then <b>Save CSV</b> and commit the file
as <code>__CSV__</code>. <b>Load CSV</b> continues a sheet someone has started.</p>
<dl id="dimensions"></dl>
<p><label>Load CSV <input type="file" id="load" accept=".csv,text/csv"></label>
<button id="save">Save CSV</button></p>
<div id="status"></div>
<table><thead><tr id="head"></tr></thead><tbody id="rows"></tbody></table>
<script type="application/json" id="sheet">__DATA__</script>
<script>
"use strict";
const sheet = JSON.parse(document.getElementById("sheet").textContent);
const fixed = sheet.fixed, dims = sheet.dimensions.map(d => d.name);
const status = document.getElementById("status");
const cell = (tag, text, cls) => { const e = document.createElement(tag); e.textContent = text;
  if (cls) e.className = cls; return e; };
for (const d of sheet.dimensions) {
  document.getElementById("dimensions").append(cell("dt", d.name), cell("dd", d.description || ""));
}
const head = document.getElementById("head");
for (const name of [...fixed, ...dims]) head.append(cell("th", name));
const inputs = new Map();
const body = document.getElementById("rows");
for (const row of sheet.rows) {
  const tr = document.createElement("tr");
  tr.append(cell("td", row.model), cell("td", String(row.sample)), cell("td", row.input, "text"),
    cell("td", row.expected, "text"), cell("td", row.output, "text"));
  const fields = {};
  for (const name of dims) {
    const input = document.createElement("input");
    input.type = "number"; input.min = sheet.low; input.max = sheet.high; input.step = 1;
    input.addEventListener("input", () => check(input));
    fields[name] = input;
    const td = document.createElement("td"); td.append(input); tr.append(td);
  }
  inputs.set(row.model + "\\u0000" + row.sample, { row, fields });
  body.append(tr);
}
function check(input) {
  const v = input.value.trim(), n = Number(v);
  const ok = v === "" || (Number.isInteger(n) && n >= sheet.low && n <= sheet.high);
  input.classList.toggle("bad", !ok);
  return ok;
}
function parseCsv(text) {
  const rows = []; let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\\n" || c === "\\r") {
      if (c === "\\r" && text[i + 1] === "\\n") i++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += c;
  }
  if (field !== "" || row.length) { row.push(field); rows.push(row); }
  return rows;
}
const quote = v => /[",\\r\\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
document.getElementById("load").addEventListener("change", async event => {
  const file = event.target.files[0];
  if (!file) return;
  const rows = parseCsv((await file.text()).replace(/^\\ufeff/, ""));
  const header = rows.shift() || [];
  let filled = 0;
  for (const r of rows) {
    const entry = inputs.get(r[header.indexOf("model")] + "\\u0000" + r[header.indexOf("sample")]);
    if (!entry) continue;
    for (const name of dims) {
      const at = header.indexOf(name);
      if (at < 0 || r[at] === undefined) continue;
      entry.fields[name].value = r[at].trim();
      check(entry.fields[name]);
    }
    filled++;
  }
  status.textContent = "Loaded " + filled + " rows from " + file.name + ".";
});
document.getElementById("save").addEventListener("click", () => {
  const lines = [[...fixed, ...dims].map(quote).join(",")];
  let bad = 0;
  for (const { row, fields } of inputs.values()) {
    const scores = dims.map(name => { if (!check(fields[name])) bad++; return fields[name].value.trim(); });
    lines.push([row.model, String(row.sample), row.input, row.expected, row.output, ...scores]
      .map(quote).join(","));
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([lines.join("\\n") + "\\n"], { type: "text/csv" }));
  link.download = sheet.file;
  link.click();
  status.textContent = bad
    ? bad + " scores are outside " + sheet.low + ".." + sheet.high + "; fix them before committing."
    : "Saved " + sheet.file + ".";
});
</script>
</body>
</html>
"""


def render(
    title: str,
    csv_name: str,
    answers: Sequence[Answer],
    dimensions: Sequence[Mapping[str, str]],
    scale: Scale,
) -> str:
    """The form's HTML for these answers; ``dimensions`` are ``{name, description}``."""
    data = {
        "file": csv_name.rsplit("/", 1)[-1],
        "fixed": list(FIXED_COLUMNS),
        "dimensions": [{"name": d["name"], "description": d.get("description", "")} for d in dimensions],
        "low": scale.low,
        "high": scale.high,
        "rows": [
            {
                "model": a.model,
                "sample": a.sample,
                "input": a.input,
                "expected": a.expected,
                "output": a.output,
            }
            for a in answers
        ],
    }
    values = {
        "TITLE": html.escape(title),
        "CSV": html.escape(csv_name),
        "LOW": str(scale.low),
        "HIGH": str(scale.high),
        "DATA": _script_json(data),
    }
    # One pass, so that a value containing a placeholder's name is never replaced in turn.
    return re.sub(r"__(TITLE|CSV|LOW|HIGH|DATA)__", lambda match: values[match.group(1)], _PAGE)


def _script_json(value: object) -> str:
    """JSON that cannot end its ``<script>`` element or open a comment there: ``<``, ``>`` and ``&`` are
    written as escapes, and so are the two line separators JavaScript once took for line ends."""
    text = json.dumps(value, ensure_ascii=False)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text
