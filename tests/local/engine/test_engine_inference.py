"""Batched generation on the demo model: accuracy, parameters, and the resumable JSONL batch job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.local.engine.inference import InferenceParams, generate, run_batch
from runner.local.engine.loading import render_chat

ROOT = Path(__file__).resolve().parents[3]
ADDER = ROOT / "models" / "tiny-adder"
GRADER = ROOT / "models" / "tiny-grader"
DATA = ROOT / "data" / "addition"


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


pytestmark = pytest.mark.slow


def chats(rows):
    return [[{"role": "user", "content": row["prompt"]}] for row in rows]


def test_chat_template_renders_the_question_the_way_the_model_was_trained(adder):
    assert render_chat(adder.tokenizer, [{"role": "user", "content": "23+45=?"}]) == "Q: 23+45=? A:"


def test_greedy_batch_generation_answers_held_out_sums(adder, eval_rows):
    rows = eval_rows[:50]
    outputs = generate(adder, chats(rows), InferenceParams(max_output_tokens=5))
    accuracy = sum(g.text == row["response"] for g, row in zip(outputs, rows, strict=True)) / len(rows)
    assert accuracy >= 0.8
    assert all(g.prompt_tokens > 0 and 1 <= g.completion_tokens <= 5 for g in outputs)


def test_batched_and_one_at_a_time_greedy_agree(adder, eval_rows):
    rows = eval_rows[:8]
    params = InferenceParams(max_output_tokens=5)
    batched = [g.text for g in generate(adder, chats(rows), params)]
    single = [generate(adder, chats([row]), params)[0].text for row in rows]
    assert batched == single


def test_sampling_with_a_seed_is_reproducible(adder, eval_rows):
    params = InferenceParams(temperature=1.5, top_p=0.9, top_k=20, max_output_tokens=5, seed=7)
    first = [g.text for g in generate(adder, chats(eval_rows[:16]), params)]
    second = [g.text for g in generate(adder, chats(eval_rows[:16]), params)]
    assert first == second


def test_max_output_tokens_caps_the_completion(adder, eval_rows):
    (result,) = generate(adder, chats(eval_rows[:1]), InferenceParams(max_output_tokens=1))
    assert result.completion_tokens == 1
    assert result.finish_reason == "length"


def test_unknown_inference_parameter_is_refused_by_name():
    with pytest.raises(ValueError, match="'beam_width' is unknown"):
        InferenceParams.from_dict({"beam_width": 4})
    with pytest.raises(ValueError, match="top_p"):
        InferenceParams.from_dict({"top_p": 0})
    assert InferenceParams.from_dict({"max_tokens": 3}).max_output_tokens == 3


def test_run_batch_writes_every_row_in_order_with_reference_and_output(adder, tmp_path):
    out = tmp_path / "out" / "result.jsonl"
    seen = []
    count = run_batch(
        ADDER, DATA / "smoke.jsonl", out, {"temperature": 0}, 3, lambda d, t: seen.append((d, t)), adder
    )
    source = read_jsonl(DATA / "smoke.jsonl")
    written = read_jsonl(out)
    assert count == len(source) == len(written) == 10
    assert [r["prompt"] for r in written] == [r["prompt"] for r in source]
    assert [r["response"] for r in written] == [r["response"] for r in source]
    assert all(isinstance(r["output"], str) for r in written)
    assert seen == [(0, 10), (3, 10), (6, 10), (9, 10), (10, 10)]


def test_run_batch_resumes_after_the_rows_already_written(adder, tmp_path):
    source = read_jsonl(DATA / "smoke.jsonl")
    out = tmp_path / "result.jsonl"
    kept = [{**source[i], "output": "kept"} for i in range(4)]
    out.write_text("".join(json.dumps(r) + "\n" for r in kept) + '{"prompt": "torn', encoding="utf-8")
    seen = []
    run_batch(ADDER, DATA / "smoke.jsonl", out, {}, 4, lambda d, t: seen.append(d), adder)
    written = read_jsonl(out)
    assert [r["output"] for r in written[:4]] == ["kept"] * 4
    assert [r["prompt"] for r in written] == [r["prompt"] for r in source]
    assert seen == [4, 8, 10]


def test_run_batch_names_the_line_of_a_bad_row(adder, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "1+1=?"}\n{"question": "x"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: the row needs a string field 'prompt'"):
        run_batch(ADDER, bad, tmp_path / "o.jsonl", {}, 2, lambda d, t: None, adder)


def test_greedy_chats_with_their_own_limits_in_one_batch_answer_as_they_do_alone(adder, eval_rows):
    rows = eval_rows[:12]
    settings = [InferenceParams(max_output_tokens=1 + index % 5) for index in range(len(rows))]
    settings[3] = InferenceParams(max_output_tokens=8, stop=("0",))
    batched = generate(adder, chats(rows), settings)
    alone = [generate(adder, chats([row]), params)[0] for row, params in zip(rows, settings, strict=True)]
    assert batched == alone  # text, token counts and finish reasons
    assert {g.finish_reason for g in batched} == {"stop", "length"}


def test_greedy_chats_batched_with_sampled_ones_keep_their_greedy_answers(adder, eval_rows):
    rows = eval_rows[:10]
    greedy = InferenceParams(max_output_tokens=5)
    settings = [greedy if index % 2 else InferenceParams(temperature=1.5, top_k=5) for index in range(10)]
    batched = generate(adder, chats(rows), settings)
    for index in range(1, 10, 2):
        assert batched[index] == generate(adder, chats(rows[index : index + 1]), greedy)[0]


def test_a_stop_string_ends_the_answer_before_it(adder):
    question = [[{"role": "user", "content": "97+57=?"}]]  # the model answers 154
    (full,) = generate(adder, question, InferenceParams(max_output_tokens=8))
    (cut,) = generate(adder, question, InferenceParams(max_output_tokens=8, stop=("5",)))
    assert (full.text, cut.text, cut.finish_reason) == ("154", "1", "stop")
    assert InferenceParams.from_dict({"stop": "5"}).stop == ("5",)
    with pytest.raises(ValueError, match="stop must be a non-empty string"):
        InferenceParams.from_dict({"stop": ["", 3]})


def test_chats_with_different_seeds_are_refused_as_one_batch(adder, eval_rows):
    settings = [InferenceParams(temperature=1.0, seed=seed) for seed in (1, 2)]
    with pytest.raises(ValueError, match="different repetition penalties or seeds"):
        generate(adder, chats(eval_rows[:2]), settings)
