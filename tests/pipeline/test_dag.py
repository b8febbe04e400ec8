"""The stage graph: stable order, dbt-style selection, unknown stages and cycles."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import main
from runner.errors import UsageError
from runner.pipeline import dag
from runner.testing.pipelines import write

# a -> b -> d, a -> c -> d, e alone; c is declared before b, so c comes first wherever both could.
DEPENDENCIES = {"a": [], "c": ["a"], "b": ["a"], "e": [], "d": ["b", "c"]}


@pytest.fixture
def graph() -> dag.nx.DiGraph[str]:
    return dag.build(DEPENDENCIES)


def test_topological_order_breaks_ties_by_declaration(graph: dag.nx.DiGraph[str]) -> None:
    assert dag.topological(graph) == ["a", "c", "b", "e", "d"]


def test_topological_order_is_the_same_every_time() -> None:
    orders = {tuple(dag.topological(dag.build(DEPENDENCIES))) for _ in range(20)}
    assert len(orders) == 1


def test_edges_run_upstream_to_downstream_and_ignore_unknown_and_self(graph: dag.nx.DiGraph[str]) -> None:
    built = dag.build({"a": ["a", "ghost"], "b": ["a"]})
    assert set(built.edges) == {("a", "b")}
    assert dag.upstream(graph, "d") == ["c", "b"]


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        ((), {"a", "b", "c", "d", "e"}),
        (("b",), {"b"}),
        (("+b",), {"a", "b"}),
        (("b+",), {"b", "d"}),
        (("+b+",), {"a", "b", "d"}),
        (("+d",), {"a", "b", "c", "d"}),
        (("b,e",), {"b", "e"}),
        (("b, c+",), {"b", "c", "d"}),
        (("b", "e"), {"b", "e"}),
    ],
)
def test_select_follows_dbt_selectors(
    graph: dag.nx.DiGraph[str], selectors: tuple[str, ...], expected: set[str]
) -> None:
    assert dag.select(graph, selectors) == expected


def test_select_of_an_unknown_stage_is_a_usage_error_with_a_hint(graph: dag.nx.DiGraph[str]) -> None:
    with pytest.raises(
        UsageError, match=r"--select \+dd: the pipeline has no stage 'dd'; did you mean 'd'\?"
    ):
        dag.select(graph, ["+dd"])
    assert UsageError.exit_code == 2


def test_unknown_stage_without_a_close_name_points_to_qfrun_graph(graph: dag.nx.DiGraph[str]) -> None:
    with pytest.raises(UsageError, match="qfrun graph"):
        dag.select(graph, ["zzzzzz"])


def test_downstream_of_includes_the_stage_and_its_descendants(graph: dag.nx.DiGraph[str]) -> None:
    assert dag.downstream_of(graph, ["c"], "--from") == {"c", "d"}
    with pytest.raises(UsageError, match="--from"):
        dag.downstream_of(graph, ["x"], "--from")


def test_a_dag_has_no_cycles(graph: dag.nx.DiGraph[str]) -> None:
    assert dag.cycles(graph) == []


def test_cycles_are_reported_once_each_starting_at_the_first_declared_stage() -> None:
    built = dag.build({"x": ["z"], "y": ["x"], "z": ["y"], "p": ["q"], "q": ["p"], "free": []})
    assert dag.cycles(built) == [["x", "y", "z"], ["p", "q"]]


def test_unknown_select_through_the_cli_exits_2_with_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    with pytest.raises(SystemExit) as caught:
        main(["plan", str(path), "--select", "base_evl"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "did you mean 'base_eval'?" in err
    assert "Traceback" not in err


def test_unknown_force_stage_through_the_cli_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    with pytest.raises(SystemExit) as caught:
        main(["plan", str(path), "--force", "nothing_like_it"])
    assert caught.value.code == 2
    assert "--force" in capsys.readouterr().err


def test_topological_order_is_networkx_lexicographical_order_by_declaration() -> None:
    import random

    import networkx as nx

    for seed in range(200):
        rng = random.Random(seed)
        names = [f"s{index}_{rng.randrange(100)}" for index in range(rng.randrange(1, 40))]
        rng.shuffle(names)  # declaration order is not name order
        dependencies = {
            name: [other for other in names if other != name and rng.random() < 0.08] for name in names
        }
        graph = dag.build(dependencies)
        order = {node: index for index, node in enumerate(graph)}
        try:
            expected = list(nx.lexicographical_topological_sort(graph, key=order.__getitem__))
        except nx.NetworkXUnfeasible:
            with pytest.raises(nx.NetworkXUnfeasible):
                dag.topological(graph)
        else:
            assert dag.topological(graph) == expected
