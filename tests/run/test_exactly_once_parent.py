"""Exactly-once for a task created inside a parent (a fine-tuning job): the executor records the parent's id
in the stage's intent before the task's create, so a crash between the two creates finds the same parent, a
crash after the task's create finds the task in it, and the published version comes out once."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import PlatformServerError
from runner.platform.protocol import TaskRequest
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import TUNE, outcomes, run, write


class Crash(BaseException):
    pass


def test_a_crash_between_the_job_and_the_task_reuses_the_recorded_job(tmp_path: Path) -> None:
    path = write(tmp_path, TUNE)

    def crash_after_job(request: TaskRequest) -> None:
        raise Crash  # the job exists on the platform; the task was never asked for

    platform = FakePlatform(on_prepare=crash_after_job)
    with pytest.raises(Crash):
        run(path, platform, max_parallel=1)
    assert platform.created_for("tuned") == []
    platform.on_prepare = None
    summary, state, recorder = run(path, platform)
    assert outcomes(summary)["tuned"] == "succeeded"
    assert platform.data["parents_created"] == 1  # one job, whatever the crash
    assert len(platform.created_for("tuned")) == 1
    record = state.stages["tuned"]
    assert record.intent is not None
    assert record.intent["job_id"] == "job-1"
    assert record.outputs["version_id"] == "amv-trained-1"
    assert ("tuned", 10, 10, "steps") in recorder.progress  # a fine-tuning task counts steps, not rows


def test_a_crash_after_the_task_create_finds_the_task_and_publishes_once(tmp_path: Path) -> None:
    path = write(tmp_path, TUNE)

    def crash_after_create(request: TaskRequest) -> None:
        raise Crash  # the task exists; the state has the intent and its job, not the task

    platform = FakePlatform(on_create=crash_after_create)
    with pytest.raises(Crash):
        run(path, platform, max_parallel=1)
    platform.on_create = None
    summary, state, recorder = run(path, platform)
    assert outcomes(summary)["tuned"] == "succeeded"
    assert (platform.data["parents_created"], len(platform.created_for("tuned"))) == (1, 1)
    assert any("found task" in message for stage, message in recorder.logs if stage == "tuned")
    summary, _, _ = run(path, platform)
    assert outcomes(summary)["tuned"] == "up to date"
    assert list(platform.data["published"]) == [f"{state.stages['tuned'].task['task_id']}@None"]


def test_a_publish_that_failed_is_retried_on_the_trained_task_without_training_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, TUNE)
    platform = FakePlatform()
    publish = platform.publish_trained

    def refused(*args: object, **kwargs: object) -> object:
        raise PlatformServerError("CreateCustomModel: the platform is busy", platform="fake", status=503)

    monkeypatch.setattr(platform, "publish_trained", refused)
    summary, state, _ = run(path, platform)
    assert outcomes(summary)["tuned"] == "failed"
    assert "CreateCustomModel: the platform is busy" in state.stages["tuned"].error
    monkeypatch.setattr(platform, "publish_trained", publish)
    summary, state, recorder = run(path, platform)
    assert outcomes(summary)["tuned"] == "succeeded"
    assert len(platform.created_for("tuned")) == 1  # the finished task is reused, not trained again
    assert platform.data["parents_created"] == 1
    assert any("reusing task" in message for stage, message in recorder.logs if stage == "tuned")
