"""What a running task says of itself besides its progress (TaskInfo.live: a fine-tuning task's loss) reaches
the run's observer with each progress event, next to the steps it counts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from runner.platform.protocol import TaskInfo, TaskRef, TaskStatus
from runner.testing.fake_platform import FakePlatform, Script
from runner.testing.pipelines import TUNE, outcomes, run, write


class LossReporting(FakePlatform):
    """Each running answer carries a loss that falls as the steps go."""

    def describe_task(self, ref: TaskRef) -> TaskInfo:
        info = super().describe_task(ref)
        if info.status is TaskStatus.RUNNING and info.rows_done is not None:
            return replace(info, live={"loss": 1.0 / info.rows_done})
        return info


def test_each_progress_event_carries_the_running_loss_the_platform_reported(tmp_path: Path) -> None:
    platform = LossReporting(scripts={"tuned": Script(polls=3)})
    summary, _, recorder = run(write(tmp_path, TUNE), platform)
    assert outcomes(summary)["tuned"] == "succeeded"
    assert [event for event in recorder.progress if event[0] == "tuned"][:3] == [
        ("tuned", 1, 4, "steps"),
        ("tuned", 2, 4, "steps"),
        ("tuned", 3, 4, "steps"),
    ]
    assert recorder.live == [("tuned", {"loss": 1.0}), ("tuned", {"loss": 0.5}), ("tuned", {"loss": 1 / 3})]
