"""The schema, the wire and the local API use the one vocabulary of metric and parameter names."""

from __future__ import annotations

from runner.pipeline.schema import pipeline_schema
from runner.platform import wire
from runner.vocabulary import (
    INFERENCE_PARAMS,
    LOCAL_RULE_METRICS,
    QIANFAN_RULE_METRICS,
    RULE_METRICS,
)


def test_the_schemas_rule_evaluator_takes_exactly_the_rule_metrics() -> None:
    properties = pipeline_schema()["$defs"]["ruleEvaluator"]["properties"]
    assert [name for name in properties if name != "kind"] == list(RULE_METRICS)


def test_the_schemas_inference_params_are_the_parameters_the_local_api_takes() -> None:
    assert list(pipeline_schema()["$defs"]["inferenceParams"]["properties"]) == list(INFERENCE_PARAMS)


def test_rule_metrics_are_qianfans_documented_modes_plus_the_local_platforms_own() -> None:
    assert set(RULE_METRICS) == set(QIANFAN_RULE_METRICS) | set(LOCAL_RULE_METRICS)
    assert wire.RULE_SCORE_MODES == QIANFAN_RULE_METRICS
