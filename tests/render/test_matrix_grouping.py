"""A matrix's members run as ordinary stages, are recorded under their ids, and are shown grouped under the
matrix's name in the plan, the graph and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.pipeline.spec import load_pipeline
from runner.render import graph as graph_format
from runner.render import plan as plan_format
from runner.render.report import as_markdown, build_report
from runner.render.report_html import as_html
from runner.run.plan import make_plan
from runner.state.file import StateFile
from runner.testing.cli import invoke
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import outcomes, run, state_path, write

MATRIX = """\
version: 1
name: fan
datasets:
  qa: {path: qa.jsonl}
stages:
  base: {type: model, version_id: amv-base}
  compress:
    type: compress
    model: base
    strategy: quantization
    weight: ${{ matrix.weight }}
    matrix: {weight: [W8A16C16, W4A16C16]}
  compare:
    type: evaluate
    models: [base, compress]
    dataset: qa
    evaluators: [{kind: rule, accuracy: true}]
"""
MEMBERS = ["compress@weight=W8A16C16", "compress@weight=W4A16C16"]


def test_members_run_once_each_are_recorded_under_their_ids_and_are_up_to_date_after(tmp_path: Path) -> None:
    path = write(tmp_path, MATRIX)
    platform = FakePlatform()
    summary, state, _ = run(path, platform)
    assert outcomes(summary) == dict.fromkeys(["base", *MEMBERS, "compare"], "succeeded")
    assert sorted(json.loads(state.path.read_text())["stages"]) == sorted(["base", *MEMBERS, "compare"])
    created = len(platform.tasks)
    summary, _, _ = run(path, platform)
    assert set(outcomes(summary).values()) == {"up to date"}
    assert len(platform.tasks) == created  # nothing created twice


def test_selecting_the_matrix_runs_every_member_and_one_member_runs_alone(tmp_path: Path) -> None:
    path = write(tmp_path, MATRIX)
    summary, _, _ = run(path, FakePlatform(), select=("+compress",))
    assert set(outcomes(summary)) == {"base", *MEMBERS}
    summary, _, _ = run(path, FakePlatform(), select=(MEMBERS[1],), force=(MEMBERS[1],))
    assert set(outcomes(summary)) == {MEMBERS[1]}


def test_the_plan_lists_members_under_their_matrix_in_every_format(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, MATRIX))
    plan = make_plan(pipeline, StateFile.load(state_path(pipeline), pipeline.name))
    text = plan_format.as_text(plan)
    assert "  compress: matrix, 2 stages: 2 run\n    + compress@weight=W8A16C16 (compress): run\n" in text
    assert "| | **compress** | matrix | 2 stages: 2 run | |" in plan_format.as_markdown(plan)
    data = json.loads(plan_format.as_json(plan))
    assert data["families"] == {"compress": MEMBERS}
    assert [s["family"] for s in data["stages"]] == [None, "compress", "compress", None]


def test_the_graph_boxes_the_members_of_a_matrix(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, MATRIX))
    types = {stage_id: stage.type for stage_id, stage in pipeline.stages.items()}
    mermaid = graph_format.as_mermaid(pipeline.graph, types)
    assert '    subgraph m0["compress (matrix of 2)"]\n        s1\n        s2\n    end\n' in mermaid
    dot = graph_format.as_dot(pipeline.graph, types)
    assert 'subgraph "cluster_compress" {\n        label="compress (matrix of 2)"; style=dashed;' in dot


def test_the_report_names_each_members_matrix_and_groups_them(tmp_path: Path) -> None:
    path = write(tmp_path, MATRIX)
    _, state, _ = run(path, FakePlatform())
    report = build_report(load_pipeline(path), state)
    assert report["families"] == {"compress": MEMBERS}
    assert [s["family"] for s in report["stages"]] == [None, "compress", "compress", None]
    markdown = as_markdown(report)
    assert f"| **compress** | matrix of 2 | | | |\n| `{MEMBERS[0]}` |" in markdown
    assert '<tr class="family"><th colspan="6">compress: matrix of 2</th></tr>' in as_html(report)


def test_validate_counts_the_members(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = invoke(capsys, "validate", str(write(tmp_path, MATRIX)))
    assert code == 0
    assert "valid (4 stages, 2 of them from 1 matrix)." in err
