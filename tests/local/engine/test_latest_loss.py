"""The latest-loss file a training job keeps for DescribeFineTuningTask: each value with the step it was
logged at, a fresh (resumed) job starting without the old one's, and only finite numbers read back."""

from __future__ import annotations

import json
from pathlib import Path

from runner.local.engine.latest_loss import LATEST_FILE, LatestLoss, read_latest


def test_each_loss_is_kept_with_its_own_step(tmp_path: Path) -> None:
    latest = LatestLoss(tmp_path)
    assert read_latest(tmp_path) == {}  # before the first logging step
    latest.log(10, loss=0.5123456)
    latest.log(10, eval_loss=0.7)
    latest.log(20, loss=0.4)  # the validation loss stays the one of step 10
    assert read_latest(tmp_path) == {"step": 20, "loss": 0.4, "eval_step": 10, "eval_loss": 0.7}
    latest.log(30)  # a log line without a loss (the learning rate only) changes nothing
    assert read_latest(tmp_path)["step"] == 20


def test_a_job_started_again_does_not_show_the_steps_of_the_run_before(tmp_path: Path) -> None:
    LatestLoss(tmp_path).log(40, loss=0.3)  # logged before a kill; the resumed job starts at step 30
    LatestLoss(tmp_path)
    assert read_latest(tmp_path) == {}


def test_what_is_not_a_finite_number_is_not_read_back(tmp_path: Path) -> None:
    (tmp_path / LATEST_FILE).write_text('{"step": 5, "loss": NaN, "eval_loss": "0.5", "x": 1}')
    assert read_latest(tmp_path) == {"step": 5}
    (tmp_path / LATEST_FILE).write_text(json.dumps([1, 2]))
    assert read_latest(tmp_path) == {}
    (tmp_path / LATEST_FILE).write_text(
        '{"step": 5, "lo'
    )  # not what the atomic writer leaves, but read safely
    assert read_latest(tmp_path) == {}
