"""``qfrun graph``: the stage graph as Mermaid (renders in GitHub markdown) or Graphviz dot.

The members of a matrix stage are drawn inside one box named after it (a Mermaid subgraph, a dot cluster).
"""

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
    for index, (family, members) in enumerate(dag.families(graph).items()):
        lines.append(f'    subgraph m{index}["{_mermaid_text(f"{family} (matrix of {len(members)})")}"]')
        lines += [f"        {ids[member]}" for member in members if member in ids]
        lines.append("    end")
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
    for family, members in dag.families(graph).items():  # "cluster" is how dot names a boxed subgraph
        lines.append(f"    subgraph {json.dumps('cluster_' + family)} {{")
        lines.append(f"        label={json.dumps(f'{family} (matrix of {len(members)})')}; style=dashed;")
        lines += [f"        {json.dumps(member)};" for member in members]
        lines.append("    }")
    lines += [f"    {json.dumps(a)} -> {json.dumps(b)};" for a, b in graph.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return re.sub(r'["]', "#quot;", text)
