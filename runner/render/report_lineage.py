"""The report's sections on where models came from: training curves, before/after, lineage (Markdown and
the HTML page's context for templates/lineage.html.j2).

Kept apart from report.py and report_html.py so that the sections other parts of the report grow stay
separate; the data comes from runner.render.lineage and runner.render.training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.render import charts
from runner.render.lineage import children, detail_lines, node_line
from runner.render.plan import escape_markdown
from runner.render.report_model import Gain, LineageNode, Report
from runner.render.training import SERIES, summary_text


def delta_text(gain: Gain) -> str:
    return f"{gain['delta']:+.4g}" if gain["delta"] else "±0"


def lineage_markdown(report: Report) -> list[str]:
    """The training summaries, the before/after table and the lineage as a nested list."""
    lines: list[str] = []
    training = report.get("training") or []
    if training:
        lines += ["**Training**", ""]
        lines += [f"- `{t['stage']}`: {summary_text(t)}" for t in training]
        lines.append("")
    found = report.get("gains") or []
    if found:
        lines += [
            "**Before and after**",
            "",
            "| model | from | evaluation | metric | before | after | change |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| `{g['model']}` | `{g['source']}` | {escape_markdown(g['evaluation'])} | "
            f"{escape_markdown(g['metric'])} | {g['before']:.4g} | {g['after']:.4g} | {delta_text(g)} |"
            for g in found
        ]
        lines.append("")
    nodes = report.get("lineage") or []
    if nodes:
        roots, below = children(nodes)
        lines += ["**Lineage**", ""]

        def walk(node: LineageNode, depth: int) -> None:
            pad = "  " * depth
            lines.append(f"{pad}- {escape_markdown(node_line(node))}")
            lines.extend(f"{pad}  - {escape_markdown(text)}" for text in detail_lines(node))
            for child in below.get(node["stage"], []):
                walk(child, depth + 1)

        for root in roots:
            walk(root, 0)
        lines.append("")
    return lines


def lineage_context(report: Report, colours: Mapping[str, str]) -> dict[str, Any]:
    """What templates/lineage.html.j2 draws: a loss chart per training, the gains, the lineage tree."""
    nodes = report.get("lineage") or []
    roots, below = children(nodes)

    def tree(node: LineageNode) -> dict[str, Any]:
        return {
            **node,
            "line": node_line(node),
            "details": list(detail_lines(node)),
            "colour": colours.get(node["stage"], ""),
            "children": [tree(child) for child in below.get(node["stage"], [])],
        }

    return {
        "trainings": [
            {
                "stage": t["stage"],
                "summary": summary_text(t),
                "chart": charts.loss_chart(
                    t["stage"], t["curves"], SERIES, colours.get(t["stage"], charts.PALETTE[0])
                ),
            }
            for t in report.get("training") or []
        ],
        "gains": [{**g, "change": delta_text(g)} for g in report.get("gains") or []],
        "lineage": [tree(root) for root in roots],
    }
