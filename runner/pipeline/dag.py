"""The stage graph: edges, cycles, order and selection (``--select``/``--only``, ``--from``).

networkx does the graph work; this module adds the pipeline's meaning: stage ids in declaration order break
ties so that every listing is stable, and selectors follow dbt's spelling (``x``, ``+x``, ``x+``, ``+x+``).
A matrix stage's id selects all of its members (the graph keeps the families, runner.pipeline.matrix); a
member's id selects that member.
"""

from __future__ import annotations

import graphlib
import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from runner.errors import UsageError

if TYPE_CHECKING:
    import networkx as nx


def build(
    dependencies: Mapping[str, Iterable[str]], families: Mapping[str, Sequence[str]] | None = None
) -> nx.DiGraph[str]:
    """A graph with an edge upstream -> downstream for every dependency; nodes in declaration order.

    ``families`` (matrix stage -> member ids) is kept as the graph's attribute: selectors and renderers
    read it there, so every function that takes the graph knows the families.
    """
    import networkx as nx  # here, not at the top: validate needs no graph library (see has_cycle)

    graph: nx.DiGraph[str] = nx.DiGraph(families=dict(families or {}))
    graph.add_nodes_from(dependencies)
    for stage_id, upstream in dependencies.items():
        graph.add_edges_from(
            (name, stage_id) for name in upstream if name in dependencies and name != stage_id
        )
    return graph


def has_cycle(dependencies: Mapping[str, Iterable[str]]) -> bool:
    """Whether the stages depend on each other in a circle.

    The standard library's graphlib answers this without importing networkx (which costs more than the rest
    of ``qfrun validate`` together); networkx is loaded only to describe the cycles of a file that has one.
    """
    try:
        graphlib.TopologicalSorter(
            {s: [u for u in up if u in dependencies] for s, up in dependencies.items()}
        ).prepare()
    except graphlib.CycleError:
        return True
    return False


def cycles(graph: nx.DiGraph[str]) -> list[list[str]]:
    """Each cycle once, as the stages in it starting from the first declared, or [] for a DAG."""
    import networkx as nx

    if nx.is_directed_acyclic_graph(graph):
        return []
    order = {node: index for index, node in enumerate(graph)}
    found = []
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1 or any(graph.has_edge(n, n) for n in component):
            start = min(component, key=order.__getitem__)
            cycle = [u for u, _ in nx.find_cycle(graph.subgraph(component), source=start)]
            found.append(cycle)
    return sorted(found, key=lambda cycle: order[cycle[0]])


def topological(graph: nx.DiGraph[str]) -> list[str]:
    """Stages in dependency order, ties broken by declaration order: networkx's
    ``lexicographical_topological_sort`` keyed on the declaration index, written out on integers (a plan
    and a run each ask for it, and the generic version was a sixth of a plan's time)."""
    nodes = list(graph)
    index = {node: position for position, node in enumerate(nodes)}
    waiting = [0] * len(nodes)  # upstream stages not yet placed
    for position, node in enumerate(nodes):
        waiting[position] = graph.in_degree(node)
    ready = [position for position, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    found: list[str] = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        found.append(node)
        for successor in graph.successors(node):
            position = index[successor]
            waiting[position] -= 1
            if waiting[position] == 0:
                heapq.heappush(ready, position)
    if len(found) != len(nodes):
        import networkx as nx

        raise nx.NetworkXUnfeasible("Graph contains a cycle or graph changed during iteration")
    return found


def upstream(graph: nx.DiGraph[str], stage_id: str) -> list[str]:
    return sorted(graph.predecessors(stage_id), key=list(graph).index)


def select(graph: nx.DiGraph[str], selectors: Sequence[str]) -> set[str]:
    """The stages named by dbt-style selectors; all stages when there are none."""
    import networkx as nx

    if not selectors:
        return set(graph)
    chosen: set[str] = set()
    for raw in selectors:
        for selector in _split(raw):
            with_up, with_down = selector.startswith("+"), selector.endswith("+")
            name = selector.strip("+")
            named = stages_named(graph, name, f"--select {selector}")
            chosen |= set(named)
            for stage in named:
                if with_up:
                    chosen |= nx.ancestors(graph, stage)
                if with_down:
                    chosen |= nx.descendants(graph, stage)
    return chosen


def _split(raw: str) -> list[str]:
    """The selectors of one comma-separated option; ``w4@dataset=eval,scheme=x`` is one member's id (a
    part with '=' and no '@' continues the id before it: declared stage ids hold neither)."""
    parts: list[str] = []
    for part in (part.strip() for part in raw.split(",")):
        if parts and "=" in part and "@" not in part and "@" in parts[-1]:
            parts[-1] += "," + part
        elif part:
            parts.append(part)
    return parts


def families(graph: nx.DiGraph[str]) -> dict[str, list[str]]:
    """The graph's matrix families: stage id -> member ids in order."""
    found: dict[str, list[str]] = graph.graph.get("families", {})
    return found


def stages_named(graph: nx.DiGraph[str], name: str, option: str) -> list[str]:
    """The stage ``name``, or every member of the matrix stage ``name``; a UsageError when neither."""
    members = families(graph).get(name)
    if members:
        return list(members)
    check_stage(graph, name, option)
    return [name]


def downstream_of(graph: nx.DiGraph[str], names: Iterable[str], option: str) -> set[str]:
    """The named stages and everything that depends on them (``--from``)."""
    import networkx as nx

    chosen: set[str] = set()
    for name in names:
        for stage in stages_named(graph, name, option):
            chosen |= {stage} | nx.descendants(graph, stage)
    return chosen


def check_stage(graph: nx.DiGraph[str], name: str, option: str) -> None:
    if name not in graph:
        import difflib

        close = difflib.get_close_matches(name, [*map(str, graph), *families(graph)], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; `qfrun graph` lists the stages."
        raise UsageError(f"{option}: the pipeline has no stage {name!r}{hint}")
