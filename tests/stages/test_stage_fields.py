"""Each stage type's fields dataclass says what the schema says, and plan and run receive it built once:
a value an expression resolved to the wrong type fails the stage naming the field; a plan shows a value only
the run knows as text."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import pytest

from runner.pipeline.spec import load_pipeline
from runner.run.plan import default_state_path, make_plan
from runner.stages import STAGE_TYPES
from runner.stages.base import CONTROL_KEYS, PlanDetail, StageContext, StageType
from runner.stages.builtin_fields import InferenceParams, RuleEvaluator
from runner.stages.fields import key_of
from runner.stages.registry import RegistryError, register
from runner.state.file import StateFile
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import DEMO, outcomes, run, write
from runner.vocabulary import INFERENCE_PARAMS, RULE_METRICS

SCHEMA = json.loads(resources.files("runner.schemas").joinpath("pipeline.schema.json").read_text("utf-8"))
DEFS = SCHEMA["$defs"]
BUILT_IN = {"model", "infer", "evaluate", "compress", "deploy", "finetune"}
STAGE_KEYS_OUTSIDE_FIELDS = CONTROL_KEYS | {"matrix", "targets"}  # expanded before a stage's fields exist


def _deref(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DEFS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _alternatives(schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _deref(schema)
    return [_deref(choice) for choice in schema["anyOf"]] if "anyOf" in schema else [schema]


def _admits_expression(schema: dict[str, Any]) -> bool:
    return any(choice is DEFS["expression"] for choice in _alternatives(schema))


def _members(hint: Any) -> list[Any]:
    if typing.get_origin(hint) in (Union, __import__("types").UnionType):
        return list(typing.get_args(hint))
    return [hint]


def _object_class(hint: Any) -> type | None:
    for member in _members(hint):
        cls = typing.get_origin(member) or member
        if dataclasses.is_dataclass(cls) and isinstance(cls, type):
            return cls
    return None


def _disagreements(cls: type, schema: dict[str, Any], where: str, *, stage: bool = False) -> list[str]:
    """Where ``cls`` and ``schema`` (an object) say different things: keys, required, enums, defaults and
    which values an expression may stand for."""
    schema = _deref(schema)
    found: list[str] = []
    hints = typing.get_type_hints(cls)
    fields = {key_of(field): field for field in dataclasses.fields(cls)}
    outside = STAGE_KEYS_OUTSIDE_FIELDS if stage else frozenset()
    properties = {key: value for key, value in schema["properties"].items() if key not in outside}
    if set(fields) != set(properties):
        found.append(f"{where}: keys {sorted(fields)} != schema {sorted(properties)}")
        return found
    required = set(schema.get("required", ())) - outside
    for key, field in fields.items():
        prop, hint, at = _deref(properties[key]), hints[field.name], f"{where}.{key}"
        has_default = (
            field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        )
        if has_default == (key in required):
            found.append(
                f"{at}: required in the schema is {key in required}, in the dataclass {not has_default}"
            )
        admits = _admits_expression(properties[key])
        string_only = all(choice.get("type") == "string" for choice in _alternatives(properties[key]))
        has_var = any(isinstance(member, TypeVar) for member in _members(hint))
        if has_var != (admits and not string_only):
            found.append(f"{at}: the schema admits an expression: {admits}; the dataclass has V: {has_var}")
        enums = [choice["enum"] for choice in _alternatives(properties[key]) if "enum" in choice]
        literals = [typing.get_args(m) for m in _members(hint) if typing.get_origin(m) is Literal]
        if [list(values) for values in literals] != enums and not ("const" in prop and literals):
            found.append(f"{at}: enum {enums} != Literal {literals}")
        if (
            "default" in prop
            and field.default not in (None, dataclasses.MISSING)
            and field.default != prop["default"]
        ):
            found.append(f"{at}: default {field.default!r} != schema {prop['default']!r}")
        nested = _object_class(hint)
        items = prop.get("items")
        if nested is not None and typing.get_origin(hint) is not tuple and prop.get("type") == "object":
            found += _disagreements(nested, prop, at)
        elif typing.get_origin(hint) is tuple and isinstance(items, dict):
            (item,) = typing.get_args(hint)[:1]
            item_schema = _deref(items)
            if _object_class(item) is not None and "allOf" not in item_schema:
                found += _disagreements(typing.cast(type, _object_class(item)), item_schema, f"{at}[]")
    return found


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_each_built_in_stage_type_declares_the_fields_its_schema_gives(name: str) -> None:
    stage_type = STAGE_TYPES[name]
    assert (
        _disagreements(stage_type.fields_class(), DEFS[f"{name}Stage"], f"stages.<{name}>", stage=True) == []
    )


@pytest.mark.parametrize(
    ("kind", "definition"),
    [
        ("rule", "ruleEvaluator"),
        ("llm_judge", "judgeEvaluator"),
        ("custom", "customEvaluator"),
        ("manual", "manualEvaluator"),
        ("opencompass", "opencompassEvaluator"),
    ],
)
def test_each_evaluator_kind_declares_the_fields_its_schema_gives(kind: str, definition: str) -> None:
    evaluators = typing.get_type_hints(STAGE_TYPES["evaluate"].fields_class())["evaluators"]
    (union,) = typing.get_args(evaluators)[:1]
    classes = [typing.get_origin(member) or member for member in typing.get_args(union)]
    (cls,) = [c for c in classes if typing.get_args(typing.get_type_hints(c)["kind"]) == (kind,)]
    assert _disagreements(cls, DEFS[definition], f"evaluators.<{kind}>") == []


def test_the_generation_parameters_and_rule_metrics_are_the_vocabulary_s() -> None:
    assert [field.name for field in dataclasses.fields(InferenceParams)] == list(INFERENCE_PARAMS)
    assert list(RuleEvaluator[Any]("rule").switches) == list(RULE_METRICS)


def test_a_value_an_expression_resolved_to_the_wrong_type_fails_the_stage_naming_the_field(
    tmp_path: Path,
) -> None:
    text = DEMO.replace("min_accuracy: 0.5", 'min_accuracy: 0.5\n  replicas: "2"').replace(
        "replicas: 2", "replicas: ${{ vars.replicas }}"
    )
    platform = FakePlatform()
    summary, state, _ = run(write(tmp_path, text), platform)
    assert outcomes(summary)["serve"] == "failed"
    assert (
        state.stages["serve"].error == "stages.serve.service.replicas: expected an integer, got the text '2'."
    )
    assert not platform.created_for("serve")  # nothing was bought


def test_a_plan_shows_a_count_only_the_run_knows_as_it_is_and_totals_what_it_knows(tmp_path: Path) -> None:
    text = DEMO.replace("replicas: 2", "replicas: ${{ stages.base_eval.outputs.metrics.accuracy }}")
    pipeline = load_pipeline(write(tmp_path, text))
    plan = make_plan(pipeline, StateFile.load(default_state_path(pipeline), pipeline.name))
    (serve,) = [stage for stage in plan.stages if stage.stage_id == "serve"]
    assert serve.cost is not None
    assert serve.cost.startswith("(known after base_eval runs) replicas of GPU-1-1, prepaid 3 months;")
    assert serve.charge is None


def test_a_stage_type_without_a_fields_dataclass_is_refused_when_it_is_registered_or_used() -> None:
    class Raw(StageType[dict[str, Any], dict[str, Any]]):
        name = "raw"

        def plan(self, spec: dict[str, Any]) -> PlanDetail:
            return PlanDetail("")

        def run(self, ctx: StageContext, spec: dict[str, Any]) -> dict[str, Any]:
            return {}

    with pytest.raises(TypeError, match="Raw: the type arguments of StageType must name one dataclass"):
        Raw().planned_fields("raw", {})

    class Bare(StageType):  # type: ignore[type-arg]  # what a plugin written before typed fields looks like
        name = "bare"

        def plan(self, spec: Any) -> PlanDetail:
            return PlanDetail("")

        def run(self, ctx: StageContext, spec: Any) -> dict[str, Any]:
            return {}

    with pytest.raises(RegistryError, match="Bare declares no fields: subclass StageType"):
        register(Bare())


def test_importing_the_stage_types_builds_none_of_their_fields_dataclasses() -> None:
    """``qfrun validate`` imports every stage type; the dataclasses are built when plan or run needs them."""
    code = (
        "import sys, runner.stages; from runner.stages import STAGE_TYPES;"
        "assert 'runner.stages.builtin_fields' not in sys.modules, 'imported';"
        "STAGE_TYPES['deploy'].fields_class(); assert 'runner.stages.builtin_fields' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
