"""Bad input, generated: a valid pipeline with one value replaced, one key removed or one key added, anywhere
in the file, loads or is refused with issues that each name the file (and, where the value is in it, its
line and column) in a sentence, never with another exception. What a reviewer of an untrusted pull
request's pipeline sees is always ``qfrun validate``'s answer, not a traceback."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import PipelineError
from runner.pipeline.spec import load_pipeline
from runner.testing.mutation import mutated, places

VALID: dict[str, Any] = {
    "version": 1,
    "name": "fuzzed",
    "platform": "local",
    "vars": {"min_accuracy": 0.5, "label": "x"},
    "datasets": {"qa": {"path": "qa.jsonl"}},
    "stages": {
        "base": {"type": "model", "version_id": "amv-base"},
        "guess": {"type": "infer", "model": "base", "dataset": "qa", "params": {"temperature": 0.1}},
        "scores": {
            "type": "evaluate",
            "models": ["base"],
            "dataset": "qa",
            "evaluators": [{"kind": "rule", "accuracy": True}],
        },
        "w4": {"type": "compress", "model": "base", "strategy": "quantization", "weight": "W4A16C16"},
        "serve": {
            "type": "deploy",
            "model": "w4",
            "if": "${{ stages.scores.outputs.metrics.accuracy >= vars.min_accuracy }}",
            "service": {
                "name": "svc",
                "url_suffix": "svc_w4",
                "replicas": 1,
                "resource_type": "CPU-1-1",
                "billing": {"payment": "postpaid", "charge": "computing_unit"},
            },
            "smoke_test": [{"messages": [{"role": "user", "content": "2+3=?"}], "expect": {"contains": "5"}}],
        },
    },
}

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=12)
    | st.sampled_from(
        ["${{ vars.label }}", "${{ stages.base.outputs.x }}", "${{ 1 +", "base", "../../etc/passwd"]
    )
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


PATHS = places(VALID)


def _mutated(path: tuple[Any, ...], how: str, value: Any) -> Any:
    return mutated(VALID, path, how, value)


def _check(document: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / ".git").mkdir()
        (root / "qa.jsonl").write_text('{"prompt": "2+3=?", "response": "5"}\n')
        path = root / "pipeline.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
        try:
            load_pipeline(path)
        except PipelineError as error:
            issues = error.issues
            text = str(error)
        else:
            return
    assert issues, "a refusal names at least one issue"
    assert "Traceback" not in text
    for issue in issues:
        assert str(issue.location).startswith(str(path)), str(issue)
        assert issue.message.strip(), str(issue)
        assert issue.location.line >= 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), how=st.sampled_from(["replace", "remove", "add"]), value=VALUES)
def test_a_pipeline_with_one_thing_changed_loads_or_is_refused_in_sentences(
    path: tuple[Any, ...], how: str, value: Any
) -> None:
    _check(_mutated(path, how, value))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=VALUES)
def test_a_file_that_is_not_a_pipeline_at_all_is_refused_in_sentences(document: Any) -> None:
    _check(document)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("platform",), None),  # each of these once raised instead of being reported
        (("stages", "scores", "evaluators", 0), None),
        (("stages", "scores", "evaluators"), 1),
        (("stages", "w4", "type"), []),
        (("stages", "scores", "evaluators"), "rule"),
    ],
    ids=repr,
)
def test_values_that_once_crashed_the_loader_are_issues(path: tuple[Any, ...], value: Any) -> None:
    _check(_mutated(path, "replace", value))
    with pytest.raises(PipelineError):
        _load(_mutated(path, "replace", value))


def _load(document: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "qa.jsonl").write_text("{}\n")
        path = root / "pipeline.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        load_pipeline(path)


@pytest.mark.parametrize("platform", [None, 5, True, [], ["local"], 1.5], ids=repr)
def test_a_platform_that_is_neither_a_name_nor_a_mapping_is_an_issue_not_a_crash(platform: Any) -> None:
    document = copy.deepcopy(VALID)
    document["platform"] = platform
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "qa.jsonl").write_text("{}\n")
        path = root / "pipeline.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        with pytest.raises(PipelineError) as caught:
            load_pipeline(path)
    (issue,) = caught.value.issues
    assert issue.location.line in (3, 4)  # the value, on the key's line or the next (a block list)
    assert issue.message.startswith("platform: ")


def test_the_unchanged_pipeline_loads() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "qa.jsonl").write_text('{"prompt": "2+3=?", "response": "5"}\n')
        path = root / "pipeline.yaml"
        path.write_text(yaml.safe_dump(VALID, sort_keys=False))
        pipeline = load_pipeline(path)
    assert list(pipeline.stages) == ["base", "guess", "scores", "w4", "serve"]


def test_a_removed_stage_that_others_name_is_one_issue_per_reference() -> None:
    document = copy.deepcopy(VALID)
    del document["stages"]["base"]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "qa.jsonl").write_text("{}\n")
        path = root / "pipeline.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        try:
            load_pipeline(path)
        except PipelineError as error:
            messages = [issue.message for issue in error.issues]
        else:
            raise AssertionError("a pipeline naming a stage it lacks loaded")
    assert sum("'base'" in message for message in messages) >= 3, messages
