"""The opencompass evaluator without a model: the benchmark format and its checks, prompts with in-context
examples, post-processing and scoring, the pipeline's checks (file:line:col, per platform), the plan line and
the evaluation body it sends. Benchmarks over the demo model: tests/local/engine/test_engine_opencompass.py;
over HTTP with a real job: tests/local/test_local_opencompass.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.benchmarks import BenchmarkError, built_in_names, built_in_text, parse_benchmark
from runner.benchmarks.scoring import postprocess, prompts, score
from runner.errors import PipelineError
from runner.pipeline.spec import load_pipeline
from runner.platform.wire.evaluation import eval_config
from runner.stages.evaluate import EvaluateStage
from runner.testing.pipelines import BENCH, write

MC: dict[str, Any] = {
    "abbr": "mc",
    "reader_cfg": {"input_columns": ["q", "A", "B"], "output_column": "answer", "train_split": "dev"},
    "infer_cfg": {
        "ice_template": {"template": {"A": "{q} {A}\n", "B": "{q} {B}\n"}},
        "prompt_template": {"template": {"A": "</E>{q} {A}", "B": "</E>{q} {B}"}, "ice_token": "</E>"},
        "retriever": {"type": "FixKRetriever", "fix_id_list": [1, 0]},
        "inferencer": {"type": "PPLInferencer"},
    },
    "eval_cfg": {"evaluator": {"type": "AccEvaluator"}},
    "splits": {
        "dev": [
            {"q": "1+1=?", "A": "2", "B": "3", "answer": "A"},
            {"q": "2+2=?", "A": "5", "B": "4", "answer": "B"},
        ],
        "test": [{"q": "3+3=?", "A": "7", "B": "6", "answer": "B"}],
    },
}


def text_of(raw: dict[str, Any]) -> str:
    return json.dumps(raw)


def with_field(path: str, value: Any) -> str:
    """MC with one field replaced (``a.b.c``) or removed (value ``...``)."""
    raw = json.loads(json.dumps(MC))
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return text_of(raw)


def test_the_built_in_benchmarks_parse_and_name_their_metrics() -> None:
    assert built_in_names() == ["arith_gen", "arith_mc"]
    mc = parse_benchmark(built_in_text("arith_mc"), "arith_mc")
    gen = parse_benchmark(built_in_text("arith_gen"), "arith_gen")
    assert (mc.inferencer, mc.metric_name, len(mc.test)) == ("PPLInferencer", "arith_mc_accuracy", 40)
    assert (gen.inferencer, gen.metric_name, gen.postprocessor) == (
        "GenInferencer",
        "arith_gen_exact_match",
        "first_number",
    )
    assert {row["answer"] for row in mc.test} <= {"A", "B", "C", "D"}


def test_an_unknown_built_in_benchmark_is_refused_with_the_ones_there_are() -> None:
    with pytest.raises(BenchmarkError, match="no built-in benchmark 'mmlu'; the built-in ones are arith_gen"):
        built_in_text("mmlu")


def test_few_shot_prompts_put_the_fixed_examples_where_the_ice_token_is() -> None:
    benchmark = parse_benchmark(text_of(MC), "mc.json")
    assert benchmark.shots == (1, 0)
    rendered = prompts(benchmark, benchmark.test[0])
    # each example through the ice template of its own answer, in fix_id_list's order, then the question
    assert rendered == {"A": "2+2=? 4\n1+1=? 2\n3+3=? 7", "B": "2+2=? 4\n1+1=? 2\n3+3=? 6"}


def test_a_zero_shot_generation_prompt_is_its_template_filled_in() -> None:
    benchmark = parse_benchmark(built_in_text("arith_gen"), "arith_gen")
    assert benchmark.train
    assert not benchmark.shots
    assert prompts(benchmark, {"question": "23+45=?", "answer": "68"}) == "Q: 23+45=? A:"


def test_a_one_shot_generation_prompt_renders_its_example_with_the_ice_template() -> None:
    raw = json.loads(built_in_text("arith_gen"))
    raw["infer_cfg"]["retriever"] = {"type": "FixKRetriever", "fix_id_list": [0]}
    del raw["splits"]["dev"][1:]
    benchmark = parse_benchmark(json.dumps(raw), "gen.json")
    example = benchmark.train[0]
    assert prompts(benchmark, {"question": "1+2=?", "answer": "3"}) == (
        f"Q: {example['question']} A: {example['answer']}\nQ: 1+2=? A:"
    )


def test_a_benchmark_without_a_train_split_is_zero_shot() -> None:
    benchmark = parse_benchmark(with_field("splits.dev", ...).replace("FixKRetriever", "ZeroRetriever"), "mc")
    assert (benchmark.train, benchmark.shots) == ((), ())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{", "mc.json: not JSON"),
        (with_field("abbr", "Has Caps"), "mc.json: abbr: 'Has Caps' should be lower-case"),
        (
            with_field("infer_cfg.inferencer.type", "LLInferencer"),
            "inferencer.type: is 'LLInferencer'; use one",
        ),
        (with_field("infer_cfg.inferencer.max_out_len", 0), "max_out_len: should be a whole number"),
        (
            with_field("infer_cfg.prompt_template.template", "{q}"),
            "a PPLInferencer needs one template per label",
        ),
        (with_field("infer_cfg.retriever.fix_id_list", [2]), "fix_id_list: should list 1 to 16 row numbers"),
        (with_field("infer_cfg.ice_template", ...), "a FixKRetriever needs an ice_template"),
        (with_field("eval_cfg.evaluator.type", "BleuEvaluator"), "use one of AccEvaluator, EMEvaluator"),
        (with_field("eval_cfg.pred_postprocessor", {"type": "x"}), "pred_postprocessor.type: is 'x'"),
        (with_field("splits.test", []), "splits (test): should be a non-empty list of rows."),
        (with_field("reader_cfg.output_column", "gold"), "splits dev row 1: lacks gold."),
        (with_field("reader_cfg.input_columns", []), "input_columns: should be a non-empty list"),
        (with_field("infer_cfg.prompt_template.template", {"A": "{q} {C}", "B": "{B}"}), "uses C, not among"),
        (with_field("abbr", ...), "abbr: should be a non-empty string."),
        (
            with_field("infer_cfg.inferencer", {"type": "GenInferencer"}),
            "a GenInferencer needs one template string",
        ),
        (with_field("infer_cfg.prompt_template.template", 3), "should be a template string or an object"),
        (
            with_field("infer_cfg.prompt_template.template", {"A": "{q", "B": "{B}"}),
            "is not a valid template",
        ),
        (
            with_field("splits.test", [MC["splits"]["test"][0]] * 5001),
            "has 5001 rows; a benchmark takes 5000",
        ),
    ],
)
def test_a_broken_benchmark_is_one_sentence_naming_the_file_and_field(text: str, words: str) -> None:
    with pytest.raises(BenchmarkError) as caught:
        parse_benchmark(text, "mc.json")
    assert words in str(caught.value)
    assert str(caught.value).startswith("mc.json: ")


def test_an_answer_that_is_no_label_is_refused_with_its_row() -> None:
    raw = json.loads(text_of(MC))
    raw["splits"]["test"].append({"q": "1+2=?", "A": "3", "B": "4", "answer": "C"})
    with pytest.raises(BenchmarkError, match=r"splits test row 2: the answer 'C' is not a label"):
        parse_benchmark(json.dumps(raw), "mc.json")


def test_post_processors_take_what_openCompass_takes_from_an_answer() -> None:
    assert postprocess("first_number", "it is 68, not 69") == "68"
    assert postprocess("first_number", "none") == ""
    assert postprocess("first_capital", "the answer: B") == "B"
    assert postprocess("first_line", "  68\nmore") == "68"
    assert postprocess("general", "The Answer, 68!") == "answer 68"
    assert postprocess(None, " as is ") == " as is "


def test_scores_are_fractions_of_right_answers() -> None:
    assert score("accuracy", ["A", "B", " C"], ["A", "B", "C"]) == pytest.approx(2 / 3)
    assert score("exact_match", ["The 68.", "69"], ["68", "68"]) == 0.5  # after general post-processing
    assert score("contains", ["it is 68", "6 8"], ["68", "68"]) == 0.5
    assert score("accuracy", [], []) == 0.0
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        score("accuracy", ["A", "B"], ["A"])
    with pytest.raises(ValueError, match="unknown"):
        score("bleu", ["A"], ["A"])


PIPELINE = BENCH


def issues(tmp_path: Path, benchmarks: str, platform: str = "local") -> list[str]:
    (tmp_path / "qa.jsonl").write_text('{"prompt": "1+1=?", "response": "2"}\n')
    with pytest.raises(PipelineError) as caught:
        load_pipeline(write(tmp_path, PIPELINE.format(platform=platform, benchmarks=benchmarks)))
    return str(caught.value).splitlines()


def test_an_unknown_built_in_name_is_refused_where_it_is_written(tmp_path: Path) -> None:
    found = issues(tmp_path, "[arith_mc, mmlu]")
    assert any(
        line.endswith(
            "pipeline.yaml:16:32: stages.bench.evaluators.0.benchmarks.1: there is no built-in benchmark "
            "'mmlu'; the built-in ones are arith_gen, arith_mc, or name a .json benchmark file of yours."
        )
        for line in found
    ), found


def test_on_qianfan_the_evaluator_is_refused_with_what_qianfan_offers_instead(tmp_path: Path) -> None:
    found = issues(tmp_path, "[arith_mc]", platform="{kind: qianfan}")
    assert any(
        ":15:9: stages.bench.evaluators.0: Qianfan's evaluation has no OpenCompass mode (evalMode is rule, "
        "model or manual)"
        in line
        and "run this stage on the local platform" in line
        for line in found
    ), found


def test_a_benchmark_file_outside_the_repository_is_refused(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    found = issues(tmp_path / "repo", "[../elsewhere/b.json]")
    assert any("stages.bench.evaluators.0.benchmarks.0: ../elsewhere/b.json" in line for line in found), found


def test_the_schema_refuses_an_evaluator_without_benchmarks(tmp_path: Path) -> None:
    found = issues(tmp_path, "[]")
    assert any("stages.bench.evaluators[0].benchmarks" in line for line in found), found


def test_a_repository_benchmark_is_a_hashed_input_and_the_plan_names_every_benchmark(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text(text_of(MC))
    (tmp_path / "qa.jsonl").write_text('{"prompt": "1+1=?", "response": "2"}\n')
    pipeline = load_pipeline(
        write(tmp_path, PIPELINE.format(platform="local", benchmarks="[arith_mc, b.json]"))
    )
    spec = pipeline.stages["bench"].body
    stage = EvaluateStage()
    (found,) = list(stage.local_inputs("bench", spec, local=True))
    assert (found.path, found.kind, found.written, found.label) == (
        ("evaluators", 0, "benchmarks", 1),
        "file",
        "b.json",
        "benchmark b.json",
    )
    assert (
        "with OpenCompass benchmarks (arith_mc, b.json)"
        in stage.plan(stage.planned_fields("bench", pipeline.stages["bench"].fields)).summary
    )


def test_the_evaluation_body_carries_each_benchmark_under_the_rule_mode() -> None:
    benchmarks = [{"source": "arith_mc", "text": "{}"}]
    config = eval_config(
        [{"kind": "rule", "accuracy": True}, {"kind": "opencompass", "benchmarks": benchmarks}], local=True
    )
    assert config == {
        "evalMode": "rule",
        "autoRuleEvalConfig": {"scoreModes": ["accuracy"]},
        "openCompassEvalConfig": {"benchmarks": benchmarks},
    }
    assert eval_config([{"kind": "opencompass", "benchmarks": benchmarks}], local=True)["evalMode"] == "rule"


def test_every_built_in_benchmark_is_package_data_of_the_wheel() -> None:
    """The built-ins are a link to data/benchmarks; a file the package_data pattern missed would be absent
    from an installed qfrun, and a pipeline naming it would be refused."""
    import configparser

    from runner.benchmarks import BUILT_IN_DIR

    config = configparser.ConfigParser()
    config.read(Path(__file__).parents[2] / "setup.cfg")
    patterns = config["options.package_data"]["runner.benchmarks"].split()
    shipped = {path.name for pattern in patterns for path in BUILT_IN_DIR.parent.glob(pattern)}
    assert shipped == {f"{name}.json" for name in built_in_names()}
    assert BUILT_IN_DIR.resolve() == (Path(__file__).parents[2] / "data" / "benchmarks").resolve()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"abbr": "b"}', "b.json: reader_cfg: should be an object."),
        (b"\xff\xfe not text", "The benchmark file b.json is not UTF-8 text."),
    ],
)
def test_a_broken_repository_benchmark_fails_its_stage_before_any_task_is_created(
    tmp_path: Path, content: bytes, words: str
) -> None:
    from runner.run.executor import FAILED
    from runner.testing.fake_platform import FakePlatform
    from runner.testing.pipelines import outcomes, run

    (tmp_path / "b.json").write_bytes(content)
    path = write(tmp_path, PIPELINE.format(platform="local", benchmarks="[arith_mc, b.json]"))
    platform = FakePlatform()
    summary, _, recorder = run(path, platform)
    assert outcomes(summary)["bench"] == FAILED
    assert recorder.finished["bench"][1] == words
    assert platform.created_for("bench") == []
