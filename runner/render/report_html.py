"""The report as one self-contained HTML page: inline CSS and SVG, no script, no network.

Charts are drawn as SVG here rather than with a charting library so the page opens anywhere (an air-gapped
machine, a CI artifact viewer) and stays small.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

COLORS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "skipped": "#f9a825",
    "waiting": "#6a1b9a",  # for people: a manual evaluation's scores
    "running": "#1565c0",
    "submitted": "#1565c0",
    "pending": "#757575",
    "never run": "#9e9e9e",
}
SERIES = ("#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#5d4037", "#ad1457")

STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
  padding: 0 1rem; color: #212121 }
h1 { font-size: 1.6rem; margin-bottom: .2rem }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd }
.meta { color: #616161 }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #eee; vertical-align: top }
th { background: #fafafa }
.pill { display: inline-block; padding: 0 .5rem; border-radius: 1rem; color: #fff; font-size: .85rem }
code, pre { font-family: ui-monospace, Menlo, monospace; font-size: .85rem }
pre { background: #f5f5f5; padding: .6rem; overflow-x: auto }
svg text { font: 12px system-ui, sans-serif }
.err { color: #c62828 }
td code, td:nth-child(4) { white-space: nowrap }
"""


def as_html(report: Mapping[str, Any]) -> str:
    run = report.get("run") or {}
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>qfrun report: {escape(report['pipeline'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(report['pipeline'])}</h1>",
        f"<p class='meta'>{escape(report['path'])} on {escape(str(report['platform']))}"
        + (
            f" · run {escape(run['run_id'])}: <b>{escape(run['status'])}</b>, "
            f"started {escape(run['started_at'])}"
            if run
            else " · no run yet"
        )
        + f" · generated {escape(report['generated_at'])}</p>",
        "<h2>Stages</h2>",
        _dag(report["stages"], report["edges"]),
        _stage_table(report["stages"]),
    ]
    if len(report["evaluations"]) > 1:
        parts += ["<h2>Metrics across models</h2>", _metric_chart(report["comparison"])]
    for evaluation in report["evaluations"]:
        parts.append(f"<h2>Evaluation: {escape(evaluation['stage'])}</h2>")
        parts.append(_metric_chart(evaluation))
    if report["models"]:
        parts += ["<h2>Model versions</h2>", _size_chart(report["models"])]
    for service in report["services"]:
        parts.append(f"<h2>Service: {escape(service['stage'])}</h2>")
        smoke = service.get("smoke_test") or {}
        parts.append(
            f"<p>URL suffix <code>{escape(str(service['url_suffix']))}</code>, "
            f"{service.get('replicas')} replica(s) of "
            f"{escape(str(service.get('resource_type') or 'any compute'))}"
            f"{', ' + escape(service['billing']) if service.get('billing') else ''}; "
            f"smoke test {smoke.get('passed', 0)}/{smoke.get('total', 0)} passed.</p>"
        )
        if service.get("curl"):
            parts.append(f"<p>Call it:</p><pre>{escape(service['curl'])}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _pill(status: str) -> str:
    return f"<span class='pill' style='background:{COLORS.get(status, '#757575')}'>{escape(status)}</span>"


def _stage_table(stages: list[Mapping[str, Any]]) -> str:
    rows = [
        "<table><tr><th>stage</th><th>type</th><th>status</th><th>time</th><th>task</th><th>detail</th></tr>"
    ]
    first: dict[str | None, str] = {}  # each matrix's first member, under which a row names the matrix
    for stage in stages:
        first.setdefault(stage.get("family"), stage["id"])
    for stage in stages:
        family = stage.get("family")
        if family and first[family] == stage["id"]:
            count = sum(1 for other in stages if other.get("family") == family)
            rows.append(f"<tr class='family'><th colspan='6'>{escape(family)}: matrix of {count}</th></tr>")
        seconds = f"{stage['seconds']:.0f} s" if stage.get("seconds") is not None else ""
        detail = stage.get("error") or stage.get("reason") or _outputs_line(stage.get("outputs") or {})
        css = " class='err'" if stage.get("error") else ""
        rows.append(
            f"<tr><td><code>{escape(stage['id'])}</code></td><td>{escape(stage['type'])}</td>"
            f"<td>{_pill(stage['status'])}</td><td>{seconds}</td>"
            f"<td><code>{escape(str(stage.get('task_id') or ''))}</code></td>"
            f"<td{css}>{escape(detail)}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


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


def _dag(stages: list[Mapping[str, Any]], edges: list[list[str]]) -> str:
    """The graph in layers (a stage sits one column right of its deepest upstream)."""
    depth: dict[str, int] = {}
    for stage in stages:  # topological order
        depth[stage["id"]] = max((depth[u] + 1 for u in stage["upstream"] if u in depth), default=0)
    columns: dict[int, list[str]] = {}
    for stage in stages:
        columns.setdefault(depth[stage["id"]], []).append(stage["id"])
    if len(stages) > 200:
        return f"<p>The graph has {len(stages)} stages; `qfrun graph` prints it as Mermaid or dot.</p>"
    box_w, box_h, gap_x, gap_y = 150, 44, 60, 16
    height = max(len(c) for c in columns.values()) * (box_h + gap_y) + gap_y if columns else box_h
    width = len(columns) * (box_w + gap_x) + gap_x
    where: dict[str, tuple[int, int]] = {}
    for column, ids in columns.items():
        for row, stage_id in enumerate(ids):
            where[stage_id] = (gap_x + column * (box_w + gap_x), gap_y + row * (box_h + gap_y))
    status = {stage["id"]: stage for stage in stages}
    svg = [
        f"<svg role='img' aria-label='stage graph' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'>",
        "<defs><marker id='a' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='6' markerHeight='6' "
        "orient='auto'><path d='M0,0L10,5L0,10z' fill='#9e9e9e'/></marker></defs>",
    ]
    for source, target in edges:
        if source in where and target in where:
            (x1, y1), (x2, y2) = where[source], where[target]
            svg.append(
                f"<line x1='{x1 + box_w}' y1='{y1 + box_h / 2}' x2='{x2}' y2='{y2 + box_h / 2}' "
                "stroke='#9e9e9e' marker-end='url(#a)'/>"
            )
    for stage_id, (x, y) in where.items():
        color = COLORS.get(status[stage_id]["status"], "#757575")
        svg.append(
            f"<rect x='{x}' y='{y}' width='{box_w}' height='{box_h}' rx='6' fill='#fff' stroke='{color}' "
            "stroke-width='2'/>"
        )
        svg.append(f"<text x='{x + 8}' y='{y + 18}' font-weight='600'>{escape(stage_id[:20])}</text>")
        label = f"{status[stage_id]['type']} · {status[stage_id]['status']}"
        svg.append(f"<text x='{x + 8}' y='{y + 35}' fill='{color}'>{escape(label)}</text>")
    svg.append("</svg>")
    return "\n".join(svg)


def _metric_chart(evaluation: Mapping[str, Any]) -> str:
    """Grouped bars: one group per metric, one bar per model (base vs compressed side by side)."""
    metrics: Mapping[str, Mapping[str, float]] = evaluation["metrics"]
    models = sorted({m for values in metrics.values() for m in values})
    if not metrics:
        return "<p>No metrics were recorded.</p>"
    bar, gap, top, chart_h = 44, 40, 20, 180
    group_w = len(models) * bar + gap
    width = max(360, len(metrics) * group_w + 60)
    scale = max([1.0] + [v for values in metrics.values() for v in values.values()])
    svg = [
        f"<svg role='img' aria-label='metrics of {escape(evaluation['stage'])}' width='{width}' "
        f"height='{chart_h + top + 70}'>",
        f"<line x1='40' y1='{top + chart_h}' x2='{width}' y2='{top + chart_h}' stroke='#bdbdbd'/>",
    ]
    for index, (name, values) in enumerate(sorted(metrics.items())):
        x0 = 50 + index * group_w
        for slot, model in enumerate(models):
            if model not in values:
                continue
            value = values[model]
            h = chart_h * value / scale
            x, y = x0 + slot * bar, top + chart_h - h
            svg.append(
                f"<rect x='{x}' y='{y:.1f}' width='{bar - 4}' height='{h:.1f}' "
                f"fill='{SERIES[slot % len(SERIES)]}'><title>{escape(model)}: {value:.4g}</title></rect>"
            )
            svg.append(
                f"<text x='{x + (bar - 4) / 2}' y='{y - 4:.1f}' text-anchor='middle'>{value:.2f}</text>"
            )
        svg.append(
            f"<text x='{x0 + len(models) * bar / 2}' y='{top + chart_h + 18}' text-anchor='middle'>"
            f"{escape(name)}</text>"
        )
    legend_y = top + chart_h + 44
    for slot, model in enumerate(models):
        x = 50 + slot * 130
        svg.append(
            f"<rect x='{x}' y='{legend_y - 10}' width='12' height='12' fill='{SERIES[slot % len(SERIES)]}'/>"
        )
        samples = (evaluation.get("samples") or {}).get(model)
        label = f"{model} (n={samples})" if samples else model
        svg.append(f"<text x='{x + 16}' y='{legend_y}'>{escape(label)}</text>")
    svg.append("</svg>")
    return "\n".join(svg)


def _size_chart(models: list[Mapping[str, Any]]) -> str:
    sized = [m for m in models if isinstance(m.get("size_bytes"), int | float)]
    rows = ["<table><tr><th>stage</th><th>version</th><th>scheme</th><th>size</th><th></th></tr>"]
    largest = max((m["size_bytes"] for m in sized), default=1) or 1
    for model in models:
        size = model.get("size_bytes")
        bar = ""
        if isinstance(size, int | float):
            bar = (
                f"<svg width='220' height='14'><rect width='{220 * size / largest:.0f}' height='14' "
                f"fill='#1565c0'/></svg>"
            )
        shown = f"{size / 1e6:.2f} MB" if isinstance(size, int | float) else ""
        rows.append(
            f"<tr><td><code>{escape(model['stage'])}</code></td><td>{escape(str(model['version_id']))}</td>"
            f"<td>{escape(str(model.get('scheme') or ''))}</td><td>{shown}</td><td>{bar}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)
