"""The report as one self-contained HTML page: inline CSS and SVG, no network; the one script is the
sample viewer's (runner.render.samples, templates/samples.js), inline with its data.

The page is a Jinja2 template (runner/render/templates/report.html.j2, shipped inside the package) with
autoescaping on, so every string from the pipeline or the platform is text, never markup. Charts are laid
out in runner.render.charts and drawn as SVG by the template rather than by a charting library, so the page
opens anywhere (an air-gapped machine, a CI artifact viewer) and stays small.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from runner.render import charts
from runner.render.diff import number
from runner.render.report_lineage import lineage_context
from runner.render.report_model import Report, StageRow
from runner.render.samples import embedded_json, viewer_script
from runner.render.units import size_text
from runner.stages.eval_samples import MAX_TEXT_CHARS


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("runner.render", "templates"),
        autoescape=True,  # every {{ }} is escaped, in text and in attributes alike
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the tests rather than printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def as_html(report: Report, *, folder: Path | None = None) -> str:
    """The page for ``report``; ``folder`` is where it will be written, so that links to the pipeline file
    are relative to it (the page and the repository move together, in a CI artifact or a checkout)."""
    hrefs = {
        stage["id"]: source_href(report["path"], stage["line"], folder)
        for stage in report["stages"]
        if stage.get("line")
    }
    colours = charts.model_colours(report)
    headers = _family_headers(report["stages"])
    consoles = {stage["id"]: stage.get("console") for stage in report["stages"]}
    evaluations = [(e["stage"], charts.metric_chart(e, colours)) for e in report["evaluations"]]
    context = {
        "report": report,
        "run": report.get("run") or {},
        "graph": charts.stage_graph(report["stages"], report["edges"], hrefs),
        "stages": [
            {
                **stage,
                "href": hrefs.get(stage["id"], ""),
                "detail": _detail(stage),
                "family_header": headers.get(stage["id"], ""),
            }
            for stage in report["stages"]
        ],
        "status_colours": charts.STATUS_COLOURS,
        "comparison": charts.metric_chart(report["comparison"], colours)
        if len(report["evaluations"]) > 1
        else None,
        "evaluations": evaluations,
        "models": [
            {**m, "size": size_text(m.get("size_bytes")), "colour": colours.get(m["stage"], "")}
            for m in report["models"]
        ],
        "size_chart": charts.size_chart(report["models"], colours),
        # a service's console page is its deploy stage's (runner.render.console)
        "services": [{**s, "console": consoles.get(s["stage"])} for s in report["services"]],
        "changes": report.get("changes"),
        "change_rows": _change_rows(report.get("changes")),
        "history_charts": _history_charts(report.get("history")),
        "sample_tables": report.get("samples") or [],
        "samples_json": embedded_json(report.get("samples") or []),
        "samples_script": viewer_script(),
        "samples_text_chars": MAX_TEXT_CHARS,
        **lineage_context(report, colours),  # trainings, gains, lineage: templates/lineage.html.j2
    }
    return _environment().get_template("report.html.j2").render(context)


def source_href(pipeline_path: str, line: int, folder: Path | None) -> str:
    """``../../pipelines/quickstart.yaml#L25``: the pipeline file relative to the page, at a line (the
    anchor GitHub, GitLab and most code viewers use). Percent-encoded, so a folder named ``javascript:x``
    stays a path."""
    path = Path(pipeline_path)
    if folder is not None:
        path = Path(os.path.relpath(path.resolve(), folder.resolve()))
    return f"{quote(path.as_posix())}#L{line}"


def _family_headers(stages: Sequence[StageRow]) -> dict[str, str]:
    """``{first member id: "compress: matrix of 4"}``: the row that names a matrix, above its first member."""
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for stage in stages:
        family = stage.get("family")
        if family:
            counts[family] = counts.get(family, 0) + 1
            first.setdefault(family, stage["id"])
    return {member: f"{family}: matrix of {counts[family]}" for family, member in first.items()}


def _detail(stage: Mapping[str, Any]) -> str:
    return str(stage.get("error") or stage.get("reason") or _outputs_line(stage.get("outputs") or {}))


def _outputs_line(outputs: Mapping[str, Any]) -> str:
    shown = []
    for key in ("version_id", "result_dataset_id", "rows", "scheme", "url_suffix"):
        if outputs.get(key) not in (None, ""):
            shown.append(f"{key} {outputs[key]}")
    metrics = outputs.get("metrics")
    if isinstance(metrics, Mapping) and metrics:
        shown += [f"{name} {value:.3g}" for name, value in metrics.items() if isinstance(value, int | float)]
    elif isinstance(outputs.get("models"), Mapping):  # several models scored: one group per model
        for model, result in outputs["models"].items():
            values = (result or {}).get("metrics") or {}
            scores = ", ".join(f"{k} {v:.3g}" for k, v in values.items() if isinstance(v, int | float))
            shown.append(f"{model}: {scores}")
    return "; ".join(shown) if outputs.get("models") and not outputs.get("metrics") else ", ".join(shown)


def _history_charts(kept: Mapping[str, Any] | None) -> list[charts.LineChart]:
    """One chart per evaluation stage with metrics in at least two kept runs (runner.state.history)."""
    if not kept:
        return []
    drawn = (charts.history_chart(stage, kept["runs"], series) for stage, series in kept["metrics"].items())
    return [chart for chart in drawn if chart is not None]


def _change_rows(changes: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The stages that changed since the previous run, each cell as one line of text (``qfrun diff``'s)."""
    rows = []
    for stage in (changes or {}).get("stages", []):
        if stage["change"] == "unchanged":
            continue
        status = stage["status"]
        metrics = [
            f"{m['name']} of {m['model']}: {number(m['before'])} → {number(m['after'])}"
            + (f" ({m['delta']:+.4g})" if m["delta"] else "")
            for m in stage["metrics"]
            if m["before"] != m["after"]
        ]
        service = [
            f"{s['field']}: {s['before'] or '(none)'} → {s['after'] or '(none)'}" for s in stage["service"]
        ]
        gate = stage.get("gate")
        rows.append(
            {
                "id": stage["id"],
                "change": stage["change"],
                "status": status["after"]
                if status["before"] == status["after"]
                else f"{status['before'] or '(none)'} → {status['after'] or '(none)'}",
                "inputs": "; ".join(stage["inputs"]),
                "metrics": "; ".join(metrics),
                "service": "; ".join(service),
                "gate": (
                    f"if: {gate['if']} was {str(gate['before']).lower()}, now {str(gate['after']).lower()}"
                    if gate
                    else ""
                ),
            }
        )
    return rows
