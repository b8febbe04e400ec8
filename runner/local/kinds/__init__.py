"""The local platform's task kinds, one module each, registered in ``runner.local.kinds.registry``."""

from __future__ import annotations

from runner.local.kinds import batch_inference, compression, evaluation
from runner.local.kinds.registry import LOCAL_KINDS, LocalKind, check_complete, console_routes

check_complete()  # a task kind the client creates and no module here runs would fail only when used

__all__ = ["LOCAL_KINDS", "LocalKind", "batch_inference", "compression", "console_routes", "evaluation"]
