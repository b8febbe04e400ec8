"""The report's per-sample tables: each evaluate stage's records (runner.stages.eval_samples) grouped by
sample, every model's answer side by side, as the HTML viewer and the Markdown failure summary read them. A
sample is the dataset's (by index) or an OpenCompass benchmark's item (by benchmark and index): the viewer
can show one benchmark's items alone.

The records are read from the file the stage's outputs name, relative to the pipeline's folder and never
outside it (a state file edited by hand cannot make the report read another file); a file that is missing,
too large or not what qfrun wrote leaves the stage without a table and says why.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any, TypedDict

from markupsafe import Markup

from runner.files import PathRefused, read_regular
from runner.stages.eval_samples import MAX_FILE_BYTES

FAILURES_SHOWN = 3  # the Markdown summary's failing samples per stage
MARKDOWN_TEXT = 80  # characters of each text a Markdown line quotes


class Answer(TypedDict):
    output: str
    metrics: dict[str, float]
    reason: str
    passed: bool | None


class SampleRow(TypedDict):
    benchmark: str  # "" for the dataset's samples
    index: int
    input: str
    expected: str
    answers: dict[str, Answer]  # model stage -> its answer to this sample


class SampleTable(TypedDict):
    stage: str
    models: list[str]
    metrics: list[str]
    benchmarks: list[str]  # the benchmarks with items in the table, in the order of their first record
    total: int  # samples (rows), not answers
    left_out: bool  # the stage kept only the first records (runner.stages.eval_samples)
    cut: bool  # some texts were cut short
    failed: dict[str, int]  # model stage -> answers that failed
    rows: list[SampleRow]
    note: str  # why there is no row, when there is none


def sample_tables(stages: Iterable[Mapping[str, Any]], folder: Path) -> list[SampleTable]:
    """A table for each evaluate stage whose outputs name a records file under ``folder``."""
    tables = []
    for stage in stages:
        outputs = stage.get("outputs") or {}
        written = outputs.get("samples_file")
        if stage.get("type") == "evaluate" and isinstance(written, str):
            tables.append(_table(str(stage["id"]), folder, written, outputs.get("samples_truncated") is True))
    return tables


def _table(stage_id: str, folder: Path, written: str, left_out: bool) -> SampleTable:
    table: SampleTable = {
        "stage": stage_id,
        "models": [],
        "metrics": [],
        "benchmarks": [],
        "total": 0,
        "left_out": left_out,
        "cut": False,
        "failed": {},
        "rows": [],
        "note": "",
    }
    try:
        records = _read(folder, written)
    except (PathRefused, OSError, ValueError) as error:
        table["note"] = f"the samples in {written} cannot be shown: {error}"
        return table
    rows: dict[tuple[str, int], SampleRow] = {}
    metrics: dict[str, None] = {}
    benchmarks: dict[str, None] = {}
    for record in records:
        model = str(record["model"])
        if model not in table["failed"]:
            table["models"].append(model)
            table["failed"][model] = 0
        benchmark = str(record.get("benchmark") or "")
        if benchmark:
            benchmarks[benchmark] = None
        row = rows.setdefault(
            (benchmark, int(record["index"])),
            {
                "benchmark": benchmark,
                "index": int(record["index"]),
                "input": str(record.get("input") or ""),
                "expected": str(record.get("expected") or ""),
                "answers": {},
            },
        )
        values = {str(k): float(v) for k, v in (record.get("metrics") or {}).items()}
        metrics.update(dict.fromkeys(values))
        passed = record.get("passed")
        row["answers"][model] = {
            "output": str(record.get("output") or ""),
            "metrics": values,
            "reason": str(record.get("reason") or ""),
            "passed": passed if isinstance(passed, bool) else None,
        }
        table["failed"][model] += passed is False
        table["cut"] = table["cut"] or bool(record.get("truncated"))
    table["rows"] = [rows[key] for key in sorted(rows)]  # the dataset's samples, then each benchmark's
    table["metrics"] = list(metrics)
    table["benchmarks"] = list(benchmarks)
    table["total"] = len(table["rows"])
    return table


def _read(folder: Path, written: str) -> list[dict[str, Any]]:
    root = folder.resolve()
    path = (root / written).resolve()
    if not path.is_relative_to(root):
        raise PathRefused(f"{written} is outside the pipeline's folder")
    records = []
    for number, line in enumerate(read_regular(path, MAX_FILE_BYTES).decode("utf-8").splitlines(), 1):
        record = json.loads(line)
        if not _is_record(record):
            raise ValueError(f"line {number} is not a sample record")
        records.append(record)
    return records


def _is_record(record: Any) -> bool:
    """The shape runner.stages.eval_samples writes: a model, a whole index, and metrics that are numbers."""
    if not isinstance(record, dict) or "model" not in record:
        return False
    index, metrics = record.get("index"), record.get("metrics")
    return (
        isinstance(index, int)
        and not isinstance(index, bool)
        and isinstance(metrics, dict)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values())
    )


def embedded_json(tables: Sequence[SampleTable]) -> Markup:
    """The tables as JSON to put inside ``<script type="application/json">``: ``<``, ``>`` and ``&`` as
    escapes, so no text in a sample can close the element (``</script>``) or open a comment."""
    text = json.dumps(tables, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    # U+2028/2029 are line ends to old JavaScript parsers; as escapes they are text everywhere
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


@functools.cache
def viewer_script() -> Markup:
    """templates/samples.js as it is: read here rather than included by Jinja, so that JavaScript's braces
    are never taken for template syntax."""
    text = (files("runner.render") / "templates" / "samples.js").read_text(encoding="utf-8")
    if "</" in text:  # would end the script element early
        raise ValueError("samples.js must not contain '</'")
    return Markup(text)


def failures_markdown(tables: Sequence[SampleTable], escape: Any) -> list[str]:
    """Per stage, how many answers failed and the first few, one short line each (``escape``: Markdown)."""
    lines: list[str] = []
    for table in tables:
        if table["note"]:
            lines += [f"**{table['stage']}**: {escape(table['note'])}", ""]
            continue
        counts = ", ".join(f"`{model}` {table['failed'][model]}" for model in table["models"])
        lines += [f"**Failures in {table['stage']}** of {table['total']} samples: {counts}", ""]
        shown = 0
        for row in table["rows"]:
            for model, answer in row["answers"].items():
                if answer["passed"] is False and shown < FAILURES_SHOWN:
                    shown += 1
                    lines.append(
                        f"- {_sample_name(row)} `{model}`: {escape(_short(row['input']))} → "
                        f"{escape(_short(answer['output']))} (expected {escape(_short(row['expected']))})"
                    )
        if shown:
            lines.append("")
    return lines


def _sample_name(row: SampleRow) -> str:
    """``#3`` for the dataset's third sample, ``arith_mc #3`` for a benchmark's third item."""
    return f"{row['benchmark']} #{row['index']}" if row["benchmark"] else f"#{row['index']}"


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MARKDOWN_TEXT else flat[: MARKDOWN_TEXT - 1] + "…"
