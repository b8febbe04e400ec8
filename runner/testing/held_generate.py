"""A stand-in for a replica's ``generate`` that holds each batch until the test releases it.

Tests of the batcher and of a replica's route use it to make "a batch is running" a state they can wait for
and hold, instead of a race against a model.
"""

from __future__ import annotations

import threading
from typing import Any

from runner.local.engine.inference import Generation


class HeldGenerate:
    """A stand-in for the batcher's ``generate`` that blocks each batch until released, recording each batch's
    last messages and answering every chat with its own last message."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[list[str]] = []

    def __call__(self, model: Any, prompts: list[Any], params: list[Any]) -> list[Generation]:
        self.batches.append([messages[-1]["content"] for messages in prompts])
        self.entered.set()
        assert self.release.wait(30), "the test never released the batch"
        return [Generation(text=m[-1]["content"], prompt_tokens=1, completion_tokens=1) for m in prompts]
