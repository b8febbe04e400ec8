"""Fixtures shared by the CLI tests: the fake platform that ``qfrun`` opens instead of a real one."""

from __future__ import annotations

import dataclasses

import pytest

from runner.platform.registry import PLATFORM_KINDS
from runner.testing.fake_platform import ClosingFake
from runner.testing.pipelines import FAST


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> ClosingFake:
    """What every platform the CLI opens is, in this test: one fake, polled without waiting."""
    fake = ClosingFake()
    monkeypatch.setattr("runner.run.connect.open_platform", lambda *args, **kwargs: fake)
    for name, kind in list(PLATFORM_KINDS.items()):
        monkeypatch.setitem(PLATFORM_KINDS, name, dataclasses.replace(kind, poll=FAST))
    monkeypatch.delenv("CI", raising=False)
    return fake
