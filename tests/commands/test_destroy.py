"""``qfrun destroy``: releases the pipeline's services and stops its running tasks, once, and says so."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from runner.cli import main
from runner.platform.protocol import TaskKind
from runner.state.file import StageStatus, StateFile
from runner.state.records import StageRecord
from runner.testing.cli import invoke as qfrun
from runner.testing.fake_platform import ClosingFake, FakePlatform
from runner.testing.pipelines import DEMO, write


def cancelled(platform: FakePlatform) -> list[tuple[str, str]]:
    return [(task["kind"], task["name"]) for task in platform.data["tasks"].values() if task.get("cancelled")]


def test_destroy_releases_the_service_once_and_the_plan_then_deploys_again(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, DEMO)
    assert qfrun(capsys, "run", str(path))[0] == 0
    service_id = StateFile.load(tmp_path / ".qfrun" / "demo.state.json", "demo").stages["serve"].task
    assert service_id is not None

    code, _, err = qfrun(capsys, "destroy", str(path), "--yes")
    assert code == 0
    assert f"serve: release service {service_id['task_id']}" in err
    assert "Model versions and finished results are kept." in err
    assert cancelled(platform) == [(TaskKind.SERVICE.value, service_id["name"])]
    assert platform.closed
    record = StateFile.load(tmp_path / ".qfrun" / "demo.state.json", "demo").stages["serve"]
    assert record.status is StageStatus.PENDING
    assert record.task is None
    assert "released by qfrun destroy" in record.reason

    code, _, err = qfrun(capsys, "destroy", str(path), "--yes")  # idempotent: nothing is left
    assert code == 0
    assert "Nothing to destroy" in err
    assert len(cancelled(platform)) == 1

    main(["plan", str(path), "--format", "json"])
    out = capsys.readouterr().out
    stages = {stage["id"]: stage for stage in json.loads(out)["stages"]}
    assert stages["serve"]["action"] == "run"
    assert "released by qfrun destroy at" in stages["serve"]["reasons"][0]  # the plan says why
    actions = {stage_id: stage["action"] for stage_id, stage in stages.items()}
    assert actions["w4"] == "up to date"  # the compressed version is kept


def test_destroy_stops_a_task_that_is_still_running(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, DEMO)
    state_file = tmp_path / ".qfrun" / "demo.state.json"
    state = StateFile.load(state_file, "demo")  # as a run killed while the compression ran leaves it
    state.record(
        "w4",
        StageRecord(
            status=StageStatus.RUNNING,
            fingerprint="f" * 64,
            task={"kind": "compression", "task_id": "compression-9", "name": "qf-w4-0123456789"},
        ),
    )
    state.close()
    platform.data["tasks"]["compression-9"] = {
        "kind": "compression",
        "name": "qf-w4-0123456789",
        "params": {},
    }

    code, _, err = qfrun(capsys, "destroy", str(path), "--yes", "--select", "w4")
    assert code == 0
    assert "w4: stop compression task compression-9 (still running)" in err
    assert cancelled(platform) == [("compression", "qf-w4-0123456789")]


def test_destroy_without_a_terminal_needs_yes_and_changes_nothing(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, DEMO)
    assert qfrun(capsys, "run", str(path))[0] == 0
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    code, _, err = qfrun(capsys, "destroy", str(path))
    assert code == 2
    assert "pass --yes" in err
    assert cancelled(platform) == []
    record = StateFile.load(tmp_path / ".qfrun" / "demo.state.json", "demo").stages["serve"]
    assert record.status is StageStatus.SUCCEEDED


def test_status_shows_each_services_term_and_with_live_what_the_platform_says_now(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    from runner.commands.status import render_status

    path = write(tmp_path, DEMO)
    assert qfrun(capsys, "run", str(path))[0] == 0
    state_file = tmp_path / ".qfrun" / "demo.state.json"
    state = StateFile.load(state_file, "demo")
    record = state.stages["serve"]
    state.record("serve", replace(record, outputs={**record.outputs, "expires_at": "2026-12-10T00:00:00Z"}))
    state.close()
    now = datetime(2026, 12, 7, tzinfo=UTC)

    text = render_status(path, None, "text", now=now)
    assert "expires 2026-12-10T00:00:00Z (3 days left)" in text
    assert "live:" not in text  # the state alone: no request
    live = render_status(path, None, "json", live=lambda pipeline: platform, now=now)
    service = {row["id"]: row for row in json.loads(live)["stages"]}["serve"]["service"]
    assert service == {"expires_at": "2026-12-10T00:00:00Z", "days_left": 3, "live": "succeeded"}

    # stopped outside qfrun (in the console): the state still says succeeded, the platform knows better
    platform.data["tasks"][record.task["task_id"]]["cancelled"] = True
    text = render_status(path, None, "text", live=lambda pipeline: platform, now=now)
    assert "succeeded" in text
    assert "live: stopped (cancelled)" in text
    assert platform.closed
