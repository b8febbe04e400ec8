"""``qfrun graph``: Mermaid and dot contain every stage and edge; ``--status`` colours stages by state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.cli import main
from runner.platform.protocol import TaskStatus
from runner.testing.fake_platform import FakePlatform, Script
from runner.testing.pipelines import run, write

EDGES = {
    ("base", "base_infer"),
    ("base", "w4"),
    ("base_infer", "base_eval"),
    ("base_eval", "serve"),
    ("w4", "serve"),
}
STAGES = {
    "base": "model",
    "base_infer": "infer",
    "base_eval": "evaluate",
    "w4": "compress",
    "serve": "deploy",
}


def graph(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    try:
        main(["graph", *args])
    except SystemExit as stop:
        pytest.fail(f"qfrun graph exited {stop.code}: {capsys.readouterr().err}")
    return capsys.readouterr().out


def mermaid_nodes(text: str) -> dict[str, str]:
    """Mermaid node id -> its label."""
    return dict(re.findall(r'^\s+(s\d+)\["(.*)"\]$', text, re.MULTILINE))


def test_mermaid_contains_every_stage_and_edge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = graph(capsys, str(write(tmp_path)))
    assert text.startswith("flowchart LR\n")
    nodes = mermaid_nodes(text)
    names = {node: label.split("<br/>")[0] for node, label in nodes.items()}
    assert sorted(names.values()) == sorted(STAGES)
    for node, label in nodes.items():
        assert label == f"{names[node]}<br/>{STAGES[names[node]]}"
    edges = {(names[a], names[b]) for a, b in re.findall(r"^\s+(s\d+) --> (s\d+)$", text, re.MULTILINE)}
    assert edges == EDGES
    assert "classDef" not in text  # no colours without --status


def test_dot_contains_every_stage_and_edge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = graph(capsys, str(write(tmp_path)), "--format", "dot")
    assert text.startswith("digraph pipeline {")
    assert text.rstrip().endswith("}")
    labels = dict(re.findall(r'^\s+"(\w+)" \[label="([^"]*)"\];$', text, re.MULTILINE))
    assert labels == {stage: f"{stage}\\n{kind}" for stage, kind in STAGES.items()}
    assert set(re.findall(r'^\s+"(\w+)" -> "(\w+)";$', text, re.MULTILINE)) == EDGES


@pytest.fixture
def after_failed_run(tmp_path: Path) -> Path:
    path = write(tmp_path)
    platform = FakePlatform(scripts={"w4": Script(outcome=TaskStatus.FAILED, message="out of memory")})
    run(path, platform, keep_going=True)
    return path


def test_mermaid_status_labels_and_colours_each_stage_by_state(
    after_failed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = graph(capsys, str(after_failed_run), "--status")
    nodes = {label.split("<br/>")[0]: node for node, label in mermaid_nodes(text).items()}
    assert "w4<br/>compress<br/><i>failed</i>" in text
    classes = dict(
        (name, set(members.split(","))) for members, name in re.findall(r"class (\S+) (\w+)", text)
    )
    assert classes["succeeded"] == {nodes["base"], nodes["base_infer"], nodes["base_eval"]}
    assert classes["failed"] == {nodes["w4"]}
    assert classes["skipped"] == {nodes["serve"]}
    assert re.search(r"classDef failed fill:#\w+", text)


def test_dot_status_fills_each_stage_by_state(
    after_failed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = graph(capsys, str(after_failed_run), "--format", "dot", "--status")
    fills = dict(
        re.findall(r'^\s+"(\w+)" \[label="[^"]*", style="rounded,filled", fillcolor="(#\w+)"\];$', text, re.M)
    )
    assert set(fills) == set(STAGES)
    assert fills["w4"] != fills["base"] != fills["serve"]
    assert fills["base"] == fills["base_infer"] == fills["base_eval"]
    assert '"w4" [label="w4\\ncompress\\nfailed"' in text


def test_state_option_colours_from_that_state_file(
    after_failed_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = graph(capsys, str(after_failed_run), "--state", str(tmp_path / "empty.state.json"))
    assert "classDef" not in text
    assert "<i>" not in text


def test_needs_and_expression_references_are_edges_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "version: 1\nname: edges\nstages:\n"
        "  a: {type: model, version_id: amv-1}\n"
        "  b: {type: model, version_id: amv-2, needs: [a]}\n"
        "  c: {type: model, version_id: '${{ stages.b.outputs.version_id }}'}\n",
    )
    text = graph(capsys, str(path), "--format", "dot")
    assert set(re.findall(r'^\s+"(\w+)" -> "(\w+)";$', text, re.MULTILINE)) == {("a", "b"), ("b", "c")}
