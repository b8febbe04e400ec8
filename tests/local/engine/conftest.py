"""Shared fixtures for the engine tests: the committed demo models and data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
ADDER = ROOT / "models" / "tiny-adder"
GRADER = ROOT / "models" / "tiny-grader"
DATA = ROOT / "data" / "addition"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def eval_rows() -> list[dict[str, Any]]:
    return read_jsonl(DATA / "eval.jsonl")


@pytest.fixture(scope="session")
def adder() -> Any:
    from runner.local.engine.loading import load_model

    return load_model(ADDER)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Replicas' batches block until ``held.release`` is set (``batching.generate`` replaced)."""
    from runner.local.engine import batching
    from runner.testing.held_generate import HeldGenerate

    stand_in = HeldGenerate()
    monkeypatch.setattr(batching, "generate", stand_in)
    return stand_in
