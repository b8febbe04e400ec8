"""``qfrun graph``: the stage graph as Mermaid (renders in GitHub markdown) or Graphviz dot."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import networkx as nx

from runner.pipeline import dag

# One fill colour per recorded status, the same in both formats (green done, red failed, yellow skipped,
# blue in flight, purple waiting for people, grey pending).
FILLS = {
    "succeeded": "#d4edda",
    "failed": "#f8d7da",
    "skipped": "#fff3cd",
    "waiting": "#e2d5f0",
    "submitted": "#cce5ff",
    "running": "#cce5ff",
    "pending": "#e2e3e5",
}


def as_mermaid(
    graph: nx.DiGraph[str], types: Mapping[str, str], statuses: Mapping[str, str] | None = None
) -> str:
    ids = {stage_id: f"s{index}" for index, stage_id in enumerate(graph)}  # mermaid ids must be plain
    lines = ["flowchart LR"]
    for stage_id in dag.topological(graph):
        label = f"{stage_id}<br/>{types.get(stage_id, '')}"
        if statuses and stage_id in statuses:
            label += f"<br/><i>{statuses[stage_id]}</i>"
        lines.append(f'    {ids[stage_id]}["{_mermaid_text(label)}"]')
    lines += [f"    {ids[a]} --> {ids[b]}" for a, b in graph.edges]
    if statuses:
        for status, style in FILLS.items():
            members = [ids[s] for s, value in statuses.items() if value == status and s in ids]
            if members:
                lines.append(f"    classDef {status} fill:{style}")
                lines.append(f"    class {','.join(members)} {status}")
    return "\n".join(lines) + "\n"


def as_dot(
    graph: nx.DiGraph[str], types: Mapping[str, str], statuses: Mapping[str, str] | None = None
) -> str:
    lines = ["digraph pipeline {", "    rankdir=LR;", "    node [shape=box, style=rounded];"]
    for stage_id in dag.topological(graph):
        label = f"{stage_id}\\n{types.get(stage_id, '')}"
        if statuses and stage_id in statuses:
            label += f"\\n{statuses[stage_id]}"
        fill = FILLS.get(statuses.get(stage_id, "")) if statuses else None
        style = f', style="rounded,filled", fillcolor="{fill}"' if fill else ""
        quoted = json.dumps(label).replace(chr(92) * 2, chr(92))
        lines.append(f"    {json.dumps(stage_id)} [label={quoted}{style}];")
    lines += [f"    {json.dumps(a)} -> {json.dumps(b)};" for a, b in graph.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return re.sub(r'["]', "#quot;", text)
