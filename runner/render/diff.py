"""A comparison of two runs (runner.run.compare) as text, Markdown (a pull-request comment) or JSON."""

from __future__ import annotations

import json
from typing import Any

from runner.pipeline.spec import Pipeline
from runner.render.plan import escape_markdown
from runner.render.report_model import MetricHistory
from runner.run.compare import Comparison, MetricDelta, StageChange, compare, metrics_of
from runner.state import history
from runner.state.file import StateFile

# GitHub refuses comments longer than this; a larger comparison keeps its summary and the first rows.
MARKDOWN_LIMIT = 65_535
MARKS = {"added": "+", "removed": "-", "changed": "~", "unchanged": "="}


def headline(diff: Comparison) -> str:
    counts = {change: sum(1 for s in diff.stages if s.change == change) for change in MARKS}
    shown = ", ".join(f"{count} {change}" for change, count in counts.items() if count)
    return f"Changes in {diff.pipeline} from {diff.before} to {diff.after}: {shown or 'no stages'}."


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def delta(metric: MetricDelta) -> str:
    change = metric.delta
    return "" if change is None else f"{change:+.4g}"


def _value(value: Any) -> str:
    if value in (None, ""):
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _status(stage: StageChange) -> str:
    before, after = stage.status
    if stage.change == "added":
        return f"new, {after}"
    if stage.change == "removed":
        return f"gone (was {before})"
    return after if before == after else f"{before} -> {after}"


def _gate(stage: StageChange) -> str:
    assert stage.gate is not None
    words = {True: "lets it run", False: "holds it back"}
    return f"its if: {stage.gate.condition} {words[stage.gate.before]} before, {words[stage.gate.after]} now"


def as_text(diff: Comparison, *, verbose: bool = False) -> str:
    lines = [headline(diff), ""]
    for stage in diff.stages if verbose else diff.changed:
        lines.append(f"  {MARKS[stage.change]} {stage.stage_id} ({stage.type}): {_status(stage)}")
        lines += [f"      because {reason}" for reason in stage.inputs]
        if stage.gate:
            lines.append(f"      gate: {_gate(stage)}")
        for metric in stage.metrics if verbose else stage.changed_metrics:
            change = f" ({delta(metric)})" if metric.delta else ""
            values = f"{number(metric.before)} -> {number(metric.after)}{change}"
            lines.append(f"      {metric.name} of {metric.model}: {values}")
        lines += [f"      service {key}: {_value(old)} -> {_value(new)}" for key, old, new in stage.service]
    unchanged = len(diff.stages) - len(diff.changed)
    if unchanged and not verbose:
        lines.append(f"  = {unchanged} stage{'s' if unchanged != 1 else ''} unchanged (-v lists them)")
    return "\n".join(lines).rstrip() + "\n"


def as_json(diff: Comparison) -> str:
    return json.dumps(as_data(diff), indent=2, ensure_ascii=False, default=str) + "\n"


def as_data(diff: Comparison) -> dict[str, Any]:
    """The comparison as plain JSON values (``qfrun diff --format json``, the report's ``changes``)."""
    return {
        "qfrun_diff": 1,
        "pipeline": diff.pipeline,
        "before": diff.before,
        "after": diff.after,
        "stages": [
            {
                "id": s.stage_id,
                "type": s.type,
                "change": s.change,
                "status": {"before": s.status[0] or None, "after": s.status[1] or None},
                "inputs": list(s.inputs),
                "metrics": [
                    {"name": m.name, "model": m.model, "before": m.before, "after": m.after, "delta": m.delta}
                    for m in s.metrics
                ],
                "service": [{"field": k, "before": old, "after": new} for k, old, new in s.service],
                "gate": (
                    {"if": s.gate.condition, "before": s.gate.before, "after": s.gate.after}
                    if s.gate
                    else None
                ),
                "family": s.family,
            }
            for s in diff.stages
        ],
    }


def _cell(text: str, width: int = 300) -> str:
    text = escape_markdown(" ".join(str(text).split()))
    return text if len(text) <= width else text[: width - 3] + "..."


def as_markdown(diff: Comparison, *, limit: int = MARKDOWN_LIMIT) -> str:
    """A pull-request comment: the stages that changed, then the metrics with their deltas, then services and
    gates; beyond ``limit`` characters each table keeps its first rows and says how many it left out."""
    head = [
        f"### qfrun diff: `{escape_markdown(diff.pipeline)}`",
        "",
        escape_markdown(headline(diff)),
        "",
    ]
    changed = diff.changed
    stages = ["| | stage | type | status | inputs changed |", "|---|---|---|---|---|"]
    stages += [
        f"| {MARKS[s.change]} | `{s.stage_id}` | {s.type} | {_cell(_status(s))} | "
        f"{_cell('; '.join(s.inputs))} |"
        for s in changed
    ]
    metrics = ["| stage | metric | model | before | after | Δ |", "|---|---|---|---|---|---|"]
    metrics += [
        f"| `{s.stage_id}` | {_cell(m.name)} | `{m.model}` | {number(m.before)} | {number(m.after)} | "
        f"{delta(m)} |"
        for s in changed
        for m in s.changed_metrics
    ]
    gates = [f"- `{s.stage_id}`: {_cell(_gate(s))}" for s in changed if s.gate]
    services = ["| service | field | before | after |", "|---|---|---|---|"]
    services += [
        f"| `{s.stage_id}` | {key} | {_cell(_value(old))} | {_cell(_value(new))} |"
        for s in changed
        for key, old, new in s.service
    ]
    sections = [
        ("**Stages**", stages if changed else []),
        ("**Gates that flipped**", [*gates]),
        ("**Metrics**", metrics if len(metrics) > 2 else []),
        ("**Services**", services if len(services) > 2 else []),
    ]
    unchanged = len(diff.stages) - len(changed)
    tail = [f"{unchanged} stage{'s' if unchanged != 1 else ''} unchanged."] if unchanged else []
    body = [line for title, rows in sections if rows for line in (title, "", *rows, "")]
    full = "\n".join(head + body + tail) + "\n"
    if len(full) <= limit:
        return full
    note = "_The comparison is too large for one comment: each table lists its first rows; run `qfrun diff`._"
    fixed = len("\n".join(head + tail + [note])) + 2
    shown = [(title, rows) for title, rows in sections if rows]
    budget = (limit - fixed - 200) // max(1, len(shown))  # each table gets an equal share
    body = []
    for title, rows in shown:
        kept: list[str] = []
        used = len(title) + 2
        header = 2 if rows[0].startswith("|") else 0
        for row in rows:
            if used + len(row) + 1 > budget - 60 and len(kept) >= header:
                break
            kept.append(row)
            used += len(row) + 1
        left = len(rows) - len(kept)
        body += [title, "", *kept] + (["", f"_... and {left} more rows._"] if left else []) + [""]
    return "\n".join(head + body + tail + ["", note]) + "\n"


def runs_compared(pipeline: Pipeline, state: StateFile) -> tuple[MetricHistory, dict[str, Any] | None]:
    """The report's ``history`` (every kept run's metrics, for the charts) and ``changes`` (this run against
    the previous one, as ``qfrun diff`` shows it with no REF and no committed state)."""
    types = {stage_id: spec.type for stage_id, spec in pipeline.stages.items()}
    current = history.snapshot(state, types)
    entries = history.load(state)
    runs = [entry for entry in entries if entry.get("run_id") != current["run_id"]] + [current]
    series: dict[str, dict[str, list[float | None]]] = {}
    for index, entry in enumerate(runs):
        for stage_id, metrics in metrics_of(pipeline, entry).items():
            for name, values in metrics.items():
                for model, value in values.items():
                    line = series.setdefault(stage_id, {}).setdefault(
                        f"{name} of {model}", [None] * len(runs)
                    )
                    line[index] = value
    earlier = history.previous(entries, current["run_id"])
    changes = None
    if earlier is not None:
        labels = (f"run {earlier['run_id']}", f"run {current['run_id']}")
        changes = as_data(compare(pipeline, earlier, current, labels=labels))
    return {"runs": [str(entry.get("run_id", "")) for entry in runs], "metrics": series}, changes
