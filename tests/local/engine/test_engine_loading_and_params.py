"""Loading a model folder and the sampling parameters, on the committed demo model: a folder that is not a
whole model is refused (never filled with random weights), thread caps and padding are set in one place,
and each inference parameter is checked with a sentence naming it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
ADDER = ROOT / "models" / "tiny-adder"
DATA = ROOT / "data" / "addition"

pytestmark = pytest.mark.slow  # imports the model runtime

torch = pytest.importorskip("torch")

from runner.local.engine import loading  # noqa: E402
from runner.local.engine.inference import (  # noqa: E402
    InferenceParams,
    _completed_rows,
    generate,
    read_rows,
    run_batch,
)


def _copy_without(folder: Path, *names: str) -> Path:
    target = folder / "copy"
    shutil.copytree(ADDER, target, ignore=shutil.ignore_patterns(*names))
    return target


# -- loading ---------------------------------------------------------------------------------------------


def test_a_folder_without_config_is_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        loading.load_model(tmp_path)
    assert (
        str(caught.value) == f"The model folder {tmp_path} has no config.json, so it is not a model folder."
    )


def test_a_folder_missing_weights_is_refused_rather_than_filled_with_random_ones(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    target = _copy_without(tmp_path, "model.safetensors")
    weights = load_file(str(ADDER / "model.safetensors"))
    dropped = sorted(weights)[:2]
    save_file({k: v for k, v in weights.items() if k not in dropped}, str(target / "model.safetensors"))
    with pytest.raises(ValueError, match="weight") as caught:
        loading.load_model(target)
    assert f"The model folder {target} lacks" in str(caught.value)
    assert "so it cannot be loaded" in str(caught.value)


def test_a_loaded_model_is_in_eval_mode_with_left_padding_and_a_pad_token(adder: Any) -> None:
    assert adder.name == "tiny-adder"
    assert not adder.model.training
    assert adder.tokenizer.padding_side == "left"
    assert adder.tokenizer.pad_token is not None
    assert adder.model.generation_config.pad_token_id == adder.tokenizer.pad_token_id


def test_a_tokenizer_without_a_pad_token_pads_with_unk_else_eos(tmp_path: Path) -> None:
    target = _copy_without(tmp_path, "model.safetensors")
    config = json.loads((target / "tokenizer_config.json").read_text())
    config.pop("pad_token", None)
    (target / "tokenizer_config.json").write_text(json.dumps(config))
    tokenizer = loading.load_tokenizer(target)
    assert tokenizer.pad_token == tokenizer.unk_token
    assert tokenizer.padding_side == "left"


@pytest.mark.parametrize(
    ("setting", "expected"), [("1", 1), ("3", 3), ("0", None), ("many", None), ("", None)]
)
def test_the_engine_thread_count_comes_from_the_environment_or_the_default_cap(
    monkeypatch: pytest.MonkeyPatch, setting: str, expected: int | None
) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv("QFRUN_ENGINE_THREADS", setting)
    try:
        loading.set_threads()
        default = min(loading.MAX_THREADS, os.cpu_count() or 1)
        assert torch.get_num_threads() == (expected if expected is not None else default)
    finally:
        torch.set_num_threads(before)


def test_a_chat_is_rendered_by_the_template_else_as_the_last_user_message(adder: Any) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "1+1=?"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "2+2=?"},
    ]
    templated = loading.render_chat(adder.tokenizer, messages)
    assert templated.endswith("Q: 2+2=? A:")
    template = adder.tokenizer.chat_template
    try:
        adder.tokenizer.chat_template = None
        assert loading.render_chat(adder.tokenizer, messages) == "2+2=?"
        with pytest.raises(ValueError, match="has no user message"):
            loading.render_chat(adder.tokenizer, [{"role": "system", "content": "x"}])
    finally:
        adder.tokenizer.chat_template = template


# -- parameters ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"temperature": -0.1}, "The temperature must be 0 or more, not -0.1."),
        ({"top_p": 1.5}, "top_p must be in (0, 1], not 1.5."),
        ({"top_k": -1}, "top_k must be 0 (off) or more, not -1."),
        ({"max_output_tokens": 0}, "max_output_tokens must be between 1 and 4096, not 0."),
        ({"max_new_tokens": 5000}, "max_output_tokens must be between 1 and 4096, not 5000."),
        ({"penalty_score": 0.5}, "penalty_score must be 1.0 or more, not 0.5."),
    ],
)
def test_each_parameter_out_of_range_is_refused_by_name(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="must be") as caught:
        InferenceParams.from_dict(raw)
    assert str(caught.value) == message


def test_parameters_read_their_aliases_and_leave_nulls_at_the_default() -> None:
    params = InferenceParams.from_dict({"max_tokens": 3, "temperature": None, "seed": 7})
    assert (params.max_output_tokens, params.temperature, params.seed) == (3, 0.0, 7)
    assert InferenceParams.from_dict(None) == InferenceParams()
    with pytest.raises(ValueError, match="use one of: do_sample, max_new_tokens, max_output_tokens"):
        InferenceParams.from_dict({"beams": 2})


@pytest.mark.parametrize(
    ("temperature", "do_sample", "sampling"),
    [(0.0, None, False), (0.7, None, True), (0.7, False, False), (0.7, True, True), (0.0, True, False)],
)
def test_sampling_needs_a_temperature_and_can_be_turned_off(
    temperature: float, do_sample: bool | None, sampling: bool
) -> None:
    params = InferenceParams(temperature=temperature, do_sample=do_sample, top_k=0)
    assert params.sampling is sampling
    kwargs = params.generate_kwargs()
    assert kwargs["do_sample"] is sampling
    if sampling:
        assert (kwargs["temperature"], kwargs["top_p"], kwargs["top_k"]) == (temperature, 1.0, None)
    else:  # greedy: none of the sampling settings reach generate, which would warn about them
        assert (kwargs["temperature"], kwargs["top_p"], kwargs["top_k"]) == (None, None, None)


# -- generation and the batch job ------------------------------------------------------------------------


def test_no_prompts_is_no_generation() -> None:
    assert generate(None, [], InferenceParams()) == []  # type: ignore[arg-type]


def test_a_completion_cut_by_the_token_cap_says_length_and_counts_its_tokens(adder: Any) -> None:
    (cut,) = generate(adder, [[{"role": "user", "content": "23+45=?"}]], InferenceParams(max_output_tokens=1))
    assert (cut.finish_reason, cut.completion_tokens) == ("length", 1)
    (whole,) = generate(
        adder, [[{"role": "user", "content": "23+45=?"}]], InferenceParams(max_output_tokens=8)
    )
    assert whole.finish_reason == "stop"
    assert whole.text == "68"
    assert whole.completion_tokens >= 2  # the answer's tokens and the end of sequence
    assert whole.prompt_tokens == cut.prompt_tokens > 0


def test_rows_are_read_with_blank_lines_skipped_and_each_bad_line_named(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text('{"prompt": "1+1=?"}\n\n   \n{"prompt": "2+2=?", "response": "4"}\n')
    assert [r["prompt"] for r in read_rows(good)] == ["1+1=?", "2+2=?"]
    cases = {
        '{"prompt": "a"}\n{not json\n': "bad.jsonl:2: the line is not valid JSON",
        '["prompt"]\n': "bad.jsonl:1: the row needs a string field 'prompt'",
        '{"prompt": 5}\n': "bad.jsonl:1: the row needs a string field 'prompt'",
    }
    for text, message in cases.items():
        (tmp_path / "bad.jsonl").write_text(text)
        with pytest.raises(ValueError, match=message):
            read_rows(tmp_path / "bad.jsonl")


def test_a_batch_size_below_one_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"The batch size must be 1 or more, not 0\."):
        run_batch(ADDER, tmp_path / "missing.jsonl", tmp_path / "o.jsonl", {}, 0, lambda d, t: None)


def test_a_finished_batch_is_not_run_again_and_loads_no_model(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "1+1=?"}\n{"prompt": "2+2=?"}\n')
    out = tmp_path / "out.jsonl"
    out.write_text('{"prompt": "1+1=?", "output": "2"}\n{"prompt": "2+2=?", "output": "4"}\n')
    seen: list[tuple[int, int]] = []
    total = run_batch(tmp_path / "no-model-here", source, out, {}, 4, lambda d, t: seen.append((d, t)))
    assert (total, seen) == (2, [(2, 2)])


def test_rows_written_for_other_prompts_are_dropped_and_inferred_again(tmp_path: Path) -> None:
    rows = [{"prompt": "1+1=?"}, {"prompt": "2+2=?"}, {"prompt": "3+3=?"}]
    out = tmp_path / "out.jsonl"
    out.write_text(
        '{"prompt": "1+1=?", "output": "2"}\n'
        '{"prompt": "9+9=?", "output": "18"}\n'  # another dataset's row: nothing after it is trusted
        '{"prompt": "3+3=?", "output": "6"}\n'
    )
    assert _completed_rows(out, rows) == 1
    assert out.read_text() == '{"prompt": "1+1=?", "output": "2"}\n'
    out.write_text('{"prompt": "1+1=?", "output": "2"}')  # no newline: a torn last line
    assert _completed_rows(out, rows) == 0
    out.write_text("".join(json.dumps({**r, "output": "x"}) + "\n" for r in rows * 2))  # more than the input
    assert _completed_rows(out, rows) == 3
    assert _completed_rows(tmp_path / "none.jsonl", rows) == 0


def test_a_batch_runs_from_where_other_prompts_begin_with_the_model_it_was_given(
    adder: Any, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "11+22=?", "response": "33"}\n{"prompt": "40+2=?"}\n')
    out = tmp_path / "sub" / "out.jsonl"
    seen: list[int] = []
    run_batch(ADDER, source, out, {"max_tokens": 6}, 1, lambda d, t: seen.append(d), adder)
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == [
        {"prompt": "11+22=?", "response": "33", "output": "33"},
        {"prompt": "40+2=?", "output": "42"},
    ]
    assert seen == [0, 1, 2]


def test_a_small_model_gets_one_thread_and_a_large_one_the_default_cap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Splitting a tiny model's short matrix products costs more than it saves (the quickstart: 12.4-12.9 s
    # on one thread a job against 17.3 s on two); a large model keeps the cap, and the setting still wins.
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir(), large.mkdir()
    (small / "model.safetensors").write_bytes(b"\0" * 1024)
    with (large / "model-00001-of-00002.safetensors").open("wb") as shard:
        shard.truncate(loading.SMALL_MODEL_BYTES)  # sparse: the size without the disk
    before = torch.get_num_threads()
    monkeypatch.delenv("QFRUN_ENGINE_THREADS", raising=False)
    try:
        loading.set_threads(small)
        assert torch.get_num_threads() == 1
        loading.set_threads(large)
        assert torch.get_num_threads() == min(loading.MAX_THREADS, os.cpu_count() or 1)
        monkeypatch.setenv("QFRUN_ENGINE_THREADS", "2")
        loading.set_threads(small)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
