"""Short names of the task statuses, for the kinds' tables of status words."""

from __future__ import annotations

from runner.platform.protocol import TaskStatus

PENDING = TaskStatus.PENDING
RUNNING = TaskStatus.RUNNING
AWAITING_SCORES = TaskStatus.AWAITING_SCORES
SUCCEEDED = TaskStatus.SUCCEEDED
FAILED = TaskStatus.FAILED
STOPPED = TaskStatus.STOPPED
