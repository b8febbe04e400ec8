"""``qfrun status`` for deployed services (term, days left, live status) and how ``qfrun run`` ends: what it
prints and which exit code for a run that waits for people, costs money without a terminal, or finds a
service gone. Through the console entry point, on the fake platform the ``platform`` fixture installs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.errors import WAITING_EXIT_CODE
from runner.platform.protocol import TaskStatus
from runner.testing.cli import invoke as qfrun
from runner.testing.fake_platform import ClosingFake, Script
from runner.testing.pipelines import write

POSTPAID = """\
version: 1
name: svc
stages:
  base: {type: model, version_id: amv-base}
  serve:
    type: deploy
    model: base
    service:
      name: svc
      url_suffix: svc_one
      replicas: 1
      resource_type: CPU-1-1
      billing: {payment: postpaid, charge: computing_unit}
"""

PREPAID = POSTPAID.replace(
    "billing: {payment: postpaid, charge: computing_unit}", "billing: {payment: prepaid, months: 1}"
)

MANUAL = """\
version: 1
name: people
datasets:
  qa: {path: qa.jsonl}
stages:
  base: {type: model, version_id: amv-base}
  review:
    type: evaluate
    models: [base]
    dataset: qa
    evaluators: [{kind: manual, dimensions: [{name: clarity}]}]
"""


def _status(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> dict[str, dict[str, object]]:
    code, out, err = qfrun(capsys, "status", str(path), "--format", "json", *extra)
    assert code == 0, err
    return {row["id"]: row for row in json.loads(out)["stages"]}


def test_a_stage_never_run_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: ClosingFake
) -> None:
    path = write(tmp_path, POSTPAID)
    rows = _status(capsys, path)
    assert rows["serve"]["status"] == "never run"
    assert rows["serve"]["task"] is None
    assert "service" not in rows["serve"]


def test_a_postpaid_service_has_no_term_and_its_live_status_is_asked_only_with_live(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: ClosingFake
) -> None:
    path = write(tmp_path, POSTPAID)
    code, _, err = qfrun(capsys, str(path))
    assert code == 0, err
    rows = _status(capsys, path)
    assert rows["serve"]["service"] == {"expires_at": None, "days_left": None}  # nothing asked
    code, out, _ = qfrun(capsys, "status", str(path))
    assert "no term (postpaid)" in out
    assert "live: " not in out
    live = _status(capsys, path, "--live")["serve"]["service"]
    assert live["live"] == TaskStatus.SUCCEEDED.value
    code, out, _ = qfrun(capsys, "status", str(path), "--live")
    assert code == 0
    assert f"live: {TaskStatus.SUCCEEDED.value}, no term (postpaid)" in out


def test_a_prepaid_service_shows_its_expiry_and_days_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: ClosingFake
) -> None:
    path = write(tmp_path, PREPAID)
    code, _, err = qfrun(capsys, str(path), "--yes")
    assert code == 0, err
    service = _status(capsys, path)["serve"]["service"]
    assert service["expires_at"] == "2030-01-01T00:00:00Z"  # the fake's prepaid term
    assert isinstance(service["days_left"], int)
    assert service["days_left"] > 0
    code, out, _ = qfrun(capsys, "status", str(path))
    assert f"expires 2030-01-01T00:00:00Z ({service['days_left']} days left)" in out


def test_a_service_the_platform_no_longer_knows_is_shown_as_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: ClosingFake
) -> None:
    path = write(tmp_path, POSTPAID)
    assert qfrun(capsys, str(path))[0] == 0
    service_id = next(task_id for task_id, task in platform.tasks.items() if task["kind"] == "service")
    platform.release_outside(service_id, forget=True)
    live = _status(capsys, path, "--live")["serve"]["service"]
    assert live["live"] == "gone (the platform no longer knows it)"


def test_a_run_that_waits_for_people_exits_75_and_says_how_to_go_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: ClosingFake
) -> None:
    platform.scripts["review"] = Script(outcome=TaskStatus.AWAITING_SCORES)
    path = write(tmp_path, MANUAL)
    code, out, err = qfrun(capsys, str(path))
    assert code == WAITING_EXIT_CODE
    text = out + err
    assert "review is waiting for scores in the fake console" in text
    assert f"(exit code {WAITING_EXIT_CODE}: waiting for people)" in text
    assert "re-run the same command to go on" in text


def test_a_failed_stage_names_itself_and_how_to_retry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: ClosingFake
) -> None:
    platform.scripts["serve"] = Script(outcome=TaskStatus.FAILED, message="no capacity in the zone")
    path = write(tmp_path, POSTPAID)
    code, out, err = qfrun(capsys, str(path))
    assert code == 1
    text = out + err
    assert "serve failed: " in text
    assert "no capacity in the zone" in text
    assert "fix the cause and re-run the same command to retry" in text
    assert qfrun(capsys, "status", str(path), "--format", "json")[0] == 0


def test_a_run_with_nothing_to_do_says_so_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: ClosingFake
) -> None:
    path = write(tmp_path, POSTPAID)
    assert qfrun(capsys, str(path))[0] == 0
    code, out, err = qfrun(capsys, str(path), "--select", "base")
    assert code == 0
    assert "1 up to date" in out + err
