"""Every example in pipelines/ carries the schema modeline and is a valid pipeline as it is, on each of its
targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.pipeline.spec import load_pipeline

EXAMPLES = sorted((Path(__file__).parent.parent / "pipelines").glob("*.yaml"))


def test_there_are_example_pipelines() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_pipeline_starts_with_the_schema_modeline(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/pipeline.schema.json"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_pipeline_is_valid_on_every_target(path: Path) -> None:
    pipeline = load_pipeline(path, every_target=True)
    assert pipeline.stages
