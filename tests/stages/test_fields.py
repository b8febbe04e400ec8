"""The typed-fields converter (runner.stages.fields): what a stage's plan and run receive."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, Literal, Never

import pytest

from runner.errors import StageError
from runner.stages.fields import Unresolved, V, build, written, written_as


@dataclass(frozen=True)
class Scale:
    min: int = 1
    max: int = 5


@dataclass(frozen=True)
class Rule(Generic[V]):
    kind: Literal["rule"]
    accuracy: bool | V | None = None


@dataclass(frozen=True)
class Judge:
    kind: Literal["judge"]
    judge: str
    scale: Scale | None = None


@dataclass(frozen=True)
class Sample(Generic[V]):
    model: str
    replicas: int | V = 1
    temperature: float | V | None = None
    import_: str | None = written_as("import", None)
    method: Literal["lora", "full"] = "lora"
    tags: tuple[str, ...] = ()
    labels: Mapping[str, int] | None = None
    evaluators: tuple[Rule[V] | Judge, ...] = ()


def test_values_of_their_types_build_the_dataclass_with_defaults_for_what_is_left_out() -> None:
    built = build(
        Sample[Never],
        {
            "model": "base",
            "temperature": 1,
            "import": "m/adder",
            "tags": ["a", "b"],
            "labels": {"x": 1},
            "evaluators": [{"kind": "rule", "accuracy": True}, {"kind": "judge", "judge": "j", "scale": {}}],
        },
        where="stages.s",
    )
    assert built == Sample(
        model="base",
        replicas=1,
        temperature=1,
        import_="m/adder",
        tags=("a", "b"),
        labels={"x": 1},
        evaluators=(Rule("rule", True), Judge("judge", "j", Scale())),
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"model": "b", "replicas": "3"}, "stages.s.replicas: expected an integer, got the text '3'."),
        ({"model": "b", "replicas": True}, "stages.s.replicas: expected an integer, got the boolean True."),
        (
            {"model": "b", "temperature": "hot"},
            "stages.s.temperature: expected a number or null, got the text",
        ),
        (
            {"model": "b", "method": "half"},
            "stages.s.method: expected one of 'lora', 'full', got the text 'half'.",
        ),
        ({"model": 3}, "stages.s.model: expected a text, got the integer 3."),
        ({"model": "b", "tags": ["a", 2]}, "stages.s.tags.1: expected a text, got the integer 2."),
        ({"model": "b", "labels": {"x": "1"}}, "stages.s.labels.x: expected an integer, got the text '1'."),
        (
            {"model": "b", "evaluators": [{"kind": "rule", "accuracy": "yes"}]},
            "stages.s.evaluators.0.accuracy:",
        ),
        (
            {"model": "b", "evaluators": [{"kind": "judge"}]},
            "stages.s.evaluators.0.judge: this field is required",
        ),
        (
            {"model": "b", "evaluators": [{"kind": "human"}]},
            "stages.s.evaluators.0: expected a mapping with one of",
        ),
        (
            {"model": "b", "evaluators": [{"kind": "judge", "judge": "j", "scale": 5}]},
            "stages.s.evaluators.0.scale: expected a mapping or null",
        ),
        ({}, "stages.s.model: this field is required but missing."),
        ({"model": "b", "colour": "red"}, "stages.s: 'colour' is not a field this stage type declares."),
    ],
)
def test_a_value_of_the_wrong_type_is_a_stage_error_naming_the_stage_and_field(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(StageError) as raised:
        build(Sample[Never], values, where="stages.s")
    assert str(raised.value).startswith(message)


def test_a_plan_sees_text_where_an_expression_may_stand_as_unresolved() -> None:
    built = build(
        Sample[Unresolved],
        {"model": "(known after base runs)", "replicas": "(sensitive)", "temperature": "${{ vars.t }}"},
        where="stages.s",
        planned=True,
    )
    assert isinstance(built.replicas, Unresolved)
    assert built.replicas == "(sensitive)"
    assert isinstance(built.temperature, Unresolved)
    assert built.temperature == "${{ vars.t }}"
    assert built.model == "(known after base runs)"


def test_a_plan_still_refuses_text_where_no_expression_may_stand() -> None:
    with pytest.raises(StageError, match=r"stages.s.method: expected one of"):
        build(Sample[Unresolved], {"model": "b", "method": "${{ vars.m }}"}, where="stages.s", planned=True)


def test_written_gives_the_fields_back_as_the_pipeline_writes_them_leaving_out_what_was_not_given() -> None:
    values = {
        "model": "b",
        "import": "m",
        "replicas": 2,
        "method": "full",
        "tags": ["x"],
        "evaluators": [{"kind": "rule", "accuracy": True}, {"kind": "judge", "judge": "j"}],
    }
    assert written(build(Sample[Never], values, where="stages.s")) == values
