"""Fixtures shared by the CLI tests: the fake platform that ``qfrun`` opens instead of a real one."""

from __future__ import annotations

import pytest

from runner.testing.fake_platform import ClosingFake
from runner.testing.pipelines import FAST


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> ClosingFake:
    """What every platform the CLI opens is, in this test: one fake, polled without waiting."""
    fake = ClosingFake()
    monkeypatch.setattr("runner.run.connect.open_platform", lambda *args, **kwargs: fake)
    monkeypatch.setattr("runner.commands.run.PollPolicy", lambda **kwargs: FAST)
    monkeypatch.delenv("CI", raising=False)
    return fake
