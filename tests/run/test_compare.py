"""Comparing two runs: which inputs changed, metrics with deltas, gates that flip, services, added stages."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from runner.pipeline.spec import load_pipeline
from runner.run.compare import compare
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import DEMO, run, write


def _snapshots(tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    from runner.state import history

    path = write(tmp_path)
    _, state, _ = run(path, FakePlatform())
    pipeline = load_pipeline(path)
    return pipeline, history.snapshot(state, {s: spec.type for s, spec in pipeline.stages.items()})


def test_the_same_run_on_both_sides_changes_nothing(tmp_path: Path) -> None:
    pipeline, snap = _snapshots(tmp_path)
    diff = compare(pipeline, snap, copy.deepcopy(snap), labels=("a", "b"))
    assert diff.changed == ()
    assert {stage.change for stage in diff.stages} == {"unchanged"}


def test_a_changed_field_names_the_field_and_every_stage_downstream_names_its_upstream(
    tmp_path: Path,
) -> None:
    path = write(tmp_path)
    pipeline = load_pipeline(path)
    types = {s: spec.type for s, spec in pipeline.stages.items()}
    from runner.state import history

    _, first, _ = run(path, FakePlatform())
    before = history.snapshot(first, types)
    write(tmp_path, DEMO.replace("weight: W4A16C16", "weight: W8A16C16"))
    _, second, _ = run(path, FakePlatform())
    after = history.snapshot(second, types)
    diff = compare(load_pipeline(path), before, after, labels=("before", "after"))
    changed = {stage.stage_id: stage.inputs for stage in diff.changed}
    assert changed["w4"] == ('weight: "W4A16C16" -> "W8A16C16"',)
    assert changed["serve"] == ("upstream w4 changed",)
    assert set(changed) == {"w4", "serve"}


def test_a_metric_that_drops_below_a_gate_shows_its_delta_and_the_gate_that_now_holds_back(
    tmp_path: Path,
) -> None:
    pipeline, before = _snapshots(tmp_path)
    after = copy.deepcopy(before)
    after["stages"]["base_eval"]["outputs"]["models"]["base_infer"]["metrics"]["accuracy"] = 0.4
    after["stages"]["base_eval"]["outputs"]["metrics"]["accuracy"] = 0.4
    diff = compare(pipeline, before, after, labels=("before", "after"))
    by_id = {stage.stage_id: stage for stage in diff.stages}
    (metric,) = by_id["base_eval"].changed_metrics
    assert (metric.name, metric.model, metric.before, metric.after) == ("accuracy", "base_infer", 0.9, 0.4)
    assert metric.delta == -0.5  # rounded: no float noise in the JSON or the tables
    gate = by_id["serve"].gate
    assert gate is not None
    assert (gate.before, gate.after) == (True, False)
    assert "vars.min_accuracy" in gate.condition


def test_a_service_that_moved_or_was_released_lists_each_field(tmp_path: Path) -> None:
    pipeline, before = _snapshots(tmp_path)
    after = copy.deepcopy(before)
    after["stages"]["serve"]["outputs"]["url"] = "http://fake/chat/elsewhere"
    after["stages"]["serve"]["outputs"]["billing"] = {"payment": "postpaid"}
    after["stages"]["serve"]["status"] = "pending"
    (serve,) = compare(pipeline, before, after, labels=("a", "b")).changed
    fields = {key: (old, new) for key, old, new in serve.service}
    assert fields["status"] == ("succeeded", "pending")
    assert fields["url"] == ("http://fake/chat/demo_w4", "http://fake/chat/elsewhere")
    assert fields["billing"] == ("prepaid for 3 months (until 2030-01-01T00:00:00Z)", "postpaid")


def test_stages_only_one_side_has_are_added_or_removed(tmp_path: Path) -> None:
    pipeline, after = _snapshots(tmp_path)
    before = copy.deepcopy(after)
    del before["stages"]["serve"]  # new in this run
    before["stages"]["old_stage"] = {
        "type": "infer",
        "status": "succeeded",
        "fingerprint": "x",
        "outputs": {},
    }
    changes = {
        stage.stage_id: stage.change for stage in compare(pipeline, before, after, labels=("a", "b")).changed
    }
    assert changes == {"serve": "added", "old_stage": "removed"}
