"""Benchmarks over the demo model: the shipped ones score what the model can do, likelihoods do not depend
on the batch a text is padded into, few-shot prompts run, and the scores agree with OpenCompass's own
evaluators where the ``opencompass`` package is installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.benchmarks import built_in_text, parse_benchmark
from runner.benchmarks.scoring import postprocess, score
from runner.local.engine.opencompass import (
    _log_likelihoods,
    benchmark_results,
    run_benchmarks,
    without_benchmarks,
)

ADDER = Path(__file__).resolve().parents[3] / "models" / "tiny-adder"

pytestmark = pytest.mark.slow


def shipped(*names: str) -> list[dict[str, str]]:
    return [{"source": name, "text": built_in_text(name)} for name in names]


def test_the_demo_model_answers_every_shipped_benchmark_item_and_each_has_its_record(adder: Any) -> None:
    metrics, records = run_benchmarks(ADDER, shipped("arith_mc", "arith_gen"), load=lambda _: adder)
    assert metrics == {"arith_mc_accuracy": 1.0, "arith_gen_exact_match": 1.0}
    mc = [r for r in records if r["benchmark"] == "arith_mc"]
    gen = [r for r in records if r["benchmark"] == "arith_gen"]
    assert (len(mc), len(gen), len(records)) == (40, 40, 80)
    assert [r["index"] for r in gen] == list(range(1, 41))
    first = parse_benchmark(built_in_text("arith_gen"), "arith_gen").test[0]
    assert gen[0]["input"] == f"Q: {first['question']} A:"  # the prompt as the model saw it
    assert gen[0]["expected"] == first["answer"]
    assert postprocess("first_number", gen[0]["output"]) == first["answer"]  # its own generated text
    assert mc[0]["output"] in "ABCD"  # the label it found likeliest
    assert mc[0]["input"].startswith("[A] Q: ")  # each label's text, one line each
    assert all(r["passed"] is True and r["metrics"] == {"arith_mc_accuracy": 1.0} for r in mc)


def test_a_text_has_the_same_likelihood_alone_and_left_padded_in_a_batch(adder: Any) -> None:
    short, long = "Q: 1+2=? A: 3", "Q: 23+45=? A: 68"
    together = _log_likelihoods(adder, [short, long])
    alone = [_log_likelihoods(adder, [short])[0], _log_likelihoods(adder, [long])[0]]
    assert together == pytest.approx(alone, abs=1e-4)


def test_a_few_shot_benchmark_runs_with_its_examples_in_the_prompt(adder: Any) -> None:
    raw = json.loads(built_in_text("arith_mc"))
    raw["abbr"] = "arith_mc_2shot"
    raw["infer_cfg"]["ice_template"] = {"template": {k: f"Q: {{question}} A: {{{k}}}\n" for k in "ABCD"}}
    raw["infer_cfg"]["prompt_template"] = {
        "template": {k: f"</E>Q: {{question}} A: {{{k}}}" for k in "ABCD"},
        "ice_token": "</E>",
    }
    raw["infer_cfg"]["retriever"] = {"type": "FixKRetriever", "fix_id_list": [0, 1]}
    metrics, records = run_benchmarks(
        ADDER, [{"source": "2shot", "text": json.dumps(raw)}], load=lambda _: adder
    )
    # The demo model learnt single questions only: with two examples before the question it falls to
    # about chance (0.25 for four options), which is what a few-shot run of it should show.
    assert 0.0 <= metrics["arith_mc_2shot_accuracy"] <= 0.6
    # the records are the same scores, item by item: wrong items fail
    values = [r["metrics"]["arith_mc_2shot_accuracy"] for r in records]
    assert sum(values) / len(values) == pytest.approx(metrics["arith_mc_2shot_accuracy"])
    assert [r["passed"] for r in records] == [v == 1.0 for v in values]


def test_an_evaluation_job_runs_benchmarks_only_for_the_opencompass_evaluator(adder: Any) -> None:
    evaluators = [
        {"kind": "rule", "accuracy": True},
        {"kind": "opencompass", "benchmarks": shipped("arith_gen")},
    ]
    assert without_benchmarks(evaluators) == [{"kind": "rule", "accuracy": True}]
    assert benchmark_results({"model_dir": str(ADDER)}, evaluators[:1]) == ({}, [])
    with pytest.raises(ValueError, match="lack 'model_dir'"):
        benchmark_results({}, evaluators)
    metrics, records = benchmark_results({"model_dir": str(ADDER)}, evaluators)
    assert metrics == {"arith_gen_exact_match": 1.0}
    assert {r["benchmark"] for r in records} == {"arith_gen"}


def test_the_scores_agree_with_opencompass_evaluators_where_it_is_installed() -> None:
    evaluators = pytest.importorskip("opencompass.openicl.icl_evaluator")
    predictions = ["68", " 68", "The 68.", "69", "B"]
    references = ["68", "68", "68", "68", "B"]
    ours = score("accuracy", predictions, references)
    theirs = evaluators.AccEvaluator().score(predictions=predictions, references=references)["accuracy"]
    assert ours == pytest.approx(theirs / 100)
    em = evaluators.EMEvaluator().score(predictions=predictions, references=[[r] for r in references])
    assert score("exact_match", predictions, references) == pytest.approx(em["score"] / 100)
    assert postprocess("general", "The 68.") == "68"
    assert parse_benchmark(built_in_text("arith_gen"), "arith_gen").metric == "exact_match"
