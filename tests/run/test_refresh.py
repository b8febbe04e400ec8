"""Refresh as a user meets it through ``qfrun plan`` and ``qfrun run``, against the fake platform.

The CLI opens the fake (the ``platform`` fixture), so these tests see what a user sees: a service released or
a model version deleted outside qfrun is shown as changed outside qfrun with what the run does about it, the
run then does exactly that, ``--refresh=false`` asks nothing, and a refresh that fails is one sentence. The
same flow against the real local platform over HTTP, with the official SDK releasing the service, is in
tests/run/test_refresh_local.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.errors import PlatformUnavailable
from runner.pipeline.spec import load_pipeline
from runner.run.refresh import MODEL_VERSION, SERVICE, Drift, recorded, refresh
from runner.state.file import StateFile
from runner.testing.cli import invoke as qfrun
from runner.testing.fake_platform import ClosingFake, FakePlatform
from runner.testing.pipelines import run, state_path, write


def state_of(path: Path) -> StateFile:
    pipeline = load_pipeline(path)
    return StateFile.load(state_path(pipeline), pipeline.name)


def task_of(path: Path, stage_id: str) -> str:
    record = state_of(path).stages[stage_id]
    assert record.task is not None
    return str(record.task["task_id"])


def json_plan(capsys: pytest.CaptureFixture[str], path: Path, *args: str) -> dict[str, Any]:
    code, out, err = qfrun(capsys, "plan", str(path), "--format", "json", *args)
    assert code == 0, err
    plan: dict[str, Any] = json.loads(out)
    return plan


def recorded_now(path: Path) -> tuple[Any, ...]:
    state = state_of(path)
    return tuple(r.to_json() for r in state.runs), {s: r.to_json() for s, r in state.stages.items()}


def actions(plan: dict[str, Any]) -> dict[str, str]:
    return {stage["id"]: stage["action"] for stage in plan["stages"]}


def test_a_service_released_outside_qfrun_is_shown_changed_and_the_run_deploys_exactly_it_again(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    assert qfrun(capsys, "run", str(path))[0] == 0
    service = task_of(path, "serve")
    platform.release_outside(service)

    code, out, _ = qfrun(capsys, "plan", str(path))
    assert code == 0
    assert "Changed outside qfrun (found by refresh):" in out
    assert f"~ serve: service {service} is stopped (released); qfrun run deploys it again" in out
    code, comment, _ = qfrun(capsys, "plan", str(path), "--format", "markdown")
    assert "**Changed outside qfrun** (found by refresh)" in comment
    assert f"- `serve`: service {service} is stopped (released); qfrun run deploys it again" in comment
    plan = json_plan(capsys, path)
    assert actions(plan) == {
        "base": "up to date",
        "base_infer": "up to date",
        "base_eval": "up to date",
        "w4": "up to date",
        "serve": "re-run",
    }
    (serve,) = [stage for stage in plan["stages"] if stage["id"] == "serve"]
    assert serve["reasons"] == [
        f"its service {service} is stopped (released) outside qfrun; the run deploys it again"
    ]
    assert serve["cost"]  # deploying again buys the service again, and the plan says so

    before = len(platform.created)
    code, _, err = qfrun(capsys, "run", str(path))
    assert code == 0, err
    assert f"~ serve: service {service} is stopped (released); qfrun run deploys it again" in err
    assert [platform.data["stages"][name] for name in platform.created[before:]] == ["serve"]
    assert task_of(path, "serve") != service

    plan = json_plan(capsys, path)
    assert set(actions(plan).values()) == {"up to date"}
    assert plan["changed_outside"] == []


def test_a_service_gone_from_the_platform_is_deployed_again(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    assert qfrun(capsys, "run", str(path))[0] == 0
    service = task_of(path, "serve")
    platform.release_outside(service, forget=True)
    plan = json_plan(capsys, path)
    assert plan["changed_outside"] == [
        {"stage": "serve", "change": f"service {service} is gone", "then": "qfrun run deploys it again"}
    ]
    assert actions(plan)["serve"] == "re-run"


def test_a_service_that_failed_on_the_platform_is_deployed_again_with_the_platforms_reason(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    assert qfrun(capsys, "run", str(path))[0] == 0
    service = task_of(path, "serve")
    platform.fail_outside(service, "replica 1 exited with code 137.")
    plan = json_plan(capsys, path)
    assert plan["changed_outside"] == [
        {
            "stage": "serve",
            "change": f"service {service} is failed (replica 1 exited with code 137)",
            "then": "qfrun run deploys it again",
        }
    ]


def test_a_deleted_compressed_version_re_runs_its_stage_and_then_the_stages_that_use_it(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    assert qfrun(capsys, "run", str(path))[0] == 0
    version = state_of(path).stages["w4"].outputs["version_id"]
    platform.delete_version_outside(version)

    plan = json_plan(capsys, path)
    assert plan["changed_outside"] == [
        {
            "stage": "w4",
            "change": f"model version {version} was deleted",
            "then": "qfrun run re-runs w4, then serve",
        }
    ]
    assert actions(plan) == {
        "base": "up to date",
        "base_infer": "up to date",
        "base_eval": "up to date",
        "w4": "re-run",
        "serve": "re-run",
    }
    before = len(platform.created)
    assert qfrun(capsys, "run", str(path))[0] == 0
    assert sorted(platform.data["stages"][name] for name in platform.created[before:]) == ["serve", "w4"]
    assert state_of(path).stages["w4"].outputs["version_id"] != version


def test_an_unselected_stage_whose_version_was_deleted_blocks_the_selected_stages_after_it(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    assert qfrun(capsys, "run", str(path))[0] == 0
    version = state_of(path).stages["w4"].outputs["version_id"]
    platform.delete_version_outside(version)
    platform.release_outside(task_of(path, "serve"))

    plan = json_plan(capsys, path, "--select", "serve")
    (serve,) = plan["stages"]
    assert serve["action"] == "blocked"
    assert serve["reasons"] == [
        f"upstream stage w4 is not selected and its model version {version} was deleted outside qfrun"
    ]
    assert plan["changed_outside"][0]["then"] == (
        "nothing: w4 is not selected, and the selected stages that use it are blocked"
    )
    before = len(platform.created)
    code, _, err = qfrun(capsys, "run", str(path), "--select", "serve")
    assert code == 0, err
    assert platform.created[before:] == []  # a deploy of a deleted version would only fail


def test_refresh_false_and_no_refresh_send_no_list_request_and_trust_the_state(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    assert qfrun(capsys, "run", str(path))[0] == 0
    asked = platform.list_requests
    assert asked == 0  # the first run had nothing recorded to ask about
    platform.release_outside(task_of(path, "serve"))

    for flag in ("--refresh=false", "--no-refresh"):
        plan = json_plan(capsys, path, flag)
        assert set(actions(plan).values()) == {"up to date"}
        assert plan["refreshed"] is False
        assert platform.list_requests == asked
    before = len(platform.created)
    assert qfrun(capsys, "run", str(path), "--refresh=false")[0] == 0
    assert platform.list_requests == asked
    assert platform.created[before:] == []

    plan = json_plan(capsys, path, "--refresh=true")
    assert plan["refreshed"] is True
    assert actions(plan)["serve"] == "re-run"
    assert platform.list_requests == asked + 2  # one list of services, one of model versions


def test_a_pipeline_that_never_ran_plans_without_asking_the_platform(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    plan = json_plan(capsys, path)
    assert set(actions(plan).values()) == {"run"}
    assert platform.list_requests == 0


def test_a_refresh_that_cannot_reach_the_platform_is_one_sentence_and_changes_nothing(
    tmp_path: Path,
    platform: ClosingFake,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write(tmp_path)
    assert qfrun(capsys, "run", str(path))[0] == 0
    before = recorded_now(path)

    def unreachable(*args: object) -> None:
        raise PlatformUnavailable(
            "connection refused", platform="local http://127.0.0.1:9", path="/v2/service"
        )

    monkeypatch.setattr(platform, "list_services", unreachable)
    for command in ("plan", "run"):
        code, out, err = qfrun(capsys, command, str(path))
        assert code == 5
        assert out == ""
        (line,) = err.strip().splitlines()
        assert line == (
            "error: refresh could not ask the platform about the 2 resources the state of demo records "
            "(platform local http://127.0.0.1:9: /v2/service: connection refused); retry when it answers, "
            "or pass --refresh=false to trust the state file as it is."
        )
    assert recorded_now(path) == before  # no run recorded, no stage touched
    assert qfrun(capsys, "plan", str(path), "--refresh=false")[0] == 0


def test_refresh_asks_one_list_per_kind_however_many_stages_record_resources(tmp_path: Path) -> None:
    stages = "".join(
        f"  m{i}:\n    type: model\n    version_id: amv-{i}\n"
        f"  c{i}:\n    type: compress\n    model: m{i}\n    strategy: sparsity\n"
        f"  d{i}:\n    type: deploy\n    model: c{i}\n"
        f"    service: {{name: svc{i}, url_suffix: s{i}, billing: {{payment: postpaid, charge: tokens}}}}\n"
        for i in range(17)
    )
    path = write(tmp_path, f"version: 1\nname: wide\nstages:\n{stages}")
    platform = FakePlatform()
    run(path, platform)
    pipeline = load_pipeline(path)
    state = state_of(path)
    assert len(pipeline.stages) == 51
    assert [r.what for r in recorded(pipeline, state)].count(SERVICE) == 17
    assert [r.what for r in recorded(pipeline, state)].count(MODEL_VERSION) == 17
    assert refresh(pipeline, state, platform) == {}
    assert platform.list_requests == 2
    platform.release_outside(task_of(path, "d3"))
    assert refresh(pipeline, state, platform) == {
        "d3": Drift("d3", SERVICE, task_of(path, "d3"), "is stopped (released)")
    }
