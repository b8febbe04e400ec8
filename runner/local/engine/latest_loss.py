"""The latest losses of a running fine-tuning job, in one small file of its task folder.

The job's trainer callback (runner.local.engine.finetune) rewrites it at every logging step; the platform's
DescribeFineTuningTask reads it while the task runs (``runMetrics``, a local field), so a client sees the
loss as the training goes instead of only once it is done. One whole-or-nothing JSON object rather than the
tail of the curve files: a read costs the same at step 10 and at step 100,000, and never sees half a line.
Torch-free: the platform process imports it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from runner.atomic import write_json

LATEST_FILE = "latest_loss.json"  # {"step", "loss", "eval_step"?, "eval_loss"?}


class LatestLoss:
    """What the callback keeps between logging steps: each logged value with the step it was logged at."""

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / LATEST_FILE
        self.values: dict[str, float | int] = {}
        # A resumed job starts over from its checkpoint: a loss of a later step, logged before the kill, would
        # show a step the training has not reached (again) yet.
        self.path.unlink(missing_ok=True)

    def log(self, step: int, loss: float | None = None, eval_loss: float | None = None) -> None:
        if loss is not None:
            self.values.update(step=step, loss=round(loss, 5))
        if eval_loss is not None:
            self.values.update(eval_step=step, eval_loss=round(eval_loss, 5))
        if loss is not None or eval_loss is not None:
            write_json(self.path, self.values)


def read_latest(workdir: Path) -> dict[str, float | int]:
    """The latest losses a job in ``workdir`` logged: ``{}`` before its first logging step, or when the file
    is not (or no longer) what the callback writes."""
    try:
        data = json.loads((workdir / LATEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    # A diverged training logs NaN: left out, since a JSON answer cannot carry it (and it says nothing).
    return {
        key: value
        for key, value in data.items()
        if key in ("step", "loss", "eval_step", "eval_loss")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    }
