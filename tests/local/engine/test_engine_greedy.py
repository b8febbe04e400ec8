"""The lighter greedy decode loop: transformers' ``generate()`` is its oracle, token for token; the prompt
prefix every row shares is computed once; finished rows leave the running batch."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from runner.local.engine.greedy import RowEnd, _shared_prefix_length, fits, greedy_tokens
from runner.local.engine.inference import InferenceParams, generate
from runner.local.engine.loading import render_chat

pytestmark = pytest.mark.slow

ODD_PROMPTS = ["hello", "1+1=?", "12345678+98765=?", "what is the sum of 3 and 4?", "9+9+9+9+9=?", "="]


def encode(model: Any, prompts: list[str]) -> Any:
    texts = [render_chat(model.tokenizer, [{"role": "user", "content": p}]) for p in prompts]
    return model.tokenizer(texts, return_tensors="pt", padding=True)


def oracle(model: Any, encoded: Any, new_tokens: int) -> list[list[int]]:
    """transformers' own greedy ``generate()``: each row's tokens up to and with its end of sequence."""
    tokenizer = model.tokenizer
    output = model.model.generate(
        **encoded, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    rows = []
    for tokens in output[:, encoded["input_ids"].shape[1] :].tolist():
        if tokenizer.eos_token_id in tokens:
            tokens = tokens[: tokens.index(tokenizer.eos_token_id) + 1]
        rows.append(tokens)
    return rows


def loop(model: Any, encoded: Any, ends: list[RowEnd], network: Any = None) -> list[list[int]]:
    """The greedy loop on an encoded batch, through ``network`` (the model's own by default)."""
    tokenizer = model.tokenizer
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    return greedy_tokens(network or model.model, ids, mask, ends, tokenizer.eos_token_id, tokenizer.decode)


class Recording:
    """The model, with the shape of every forward call's input ids written down."""

    def __init__(self, network: Any) -> None:
        self.network = network
        self.config = network.config
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, **kwargs: Any) -> Any:
        self.shapes.append(tuple(kwargs["input_ids"].shape))
        return self.network(**kwargs)


def test_the_greedy_loop_makes_the_tokens_generate_makes(adder, eval_rows):
    prompts = [row["prompt"] for row in eval_rows[:40]] + ODD_PROMPTS
    encoded = encode(adder, prompts)
    ours = loop(adder, encoded, [RowEnd(12)] * len(prompts))
    expected = oracle(adder, encoded, 12)
    assert ours == expected
    assert {len(tokens) for tokens in ours} != {12}  # some rows ended early, some ran to their limit


def test_generate_answers_as_transformers_generate_does_row_for_row(adder, eval_rows):
    prompts = [row["prompt"] for row in eval_rows[:30]] + ODD_PROMPTS
    chats = [[{"role": "user", "content": p}] for p in prompts]
    ours = [g.text for g in generate(adder, chats, InferenceParams(max_output_tokens=10))]
    tokenizer = adder.tokenizer
    theirs = [
        tokenizer.decode(tokens, skip_special_tokens=True).strip()
        for tokens in oracle(adder, encode(adder, prompts), 10)
    ]
    assert ours == theirs


def test_the_prefix_every_row_shares_is_computed_once(adder, eval_rows):
    encoded = encode(adder, [row["prompt"] for row in eval_rows[:20]])
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    assert _shared_prefix_length(ids, mask) == 3  # "Q: " of the chat template "Q: ... A:"
    network = Recording(adder.model)
    made = loop(adder, encoded, [RowEnd(8)] * 20, network)
    assert network.shapes[0] == (1, 3)  # the shared prefix, once
    assert network.shapes[1] == (20, ids.shape[1] - 3)  # then every row's rest
    assert made == oracle(adder, encoded, 8)


def test_no_prefix_is_shared_by_a_single_row_or_rows_that_start_differently(adder):
    single = encode(adder, ["12+34=?"])
    assert _shared_prefix_length(single["input_ids"], single["attention_mask"]) == 0
    ids = torch.tensor([[5, 6, 7], [8, 6, 7]])
    assert _shared_prefix_length(ids, torch.ones_like(ids)) == 0
    # A shared prefix leaves every row at least its last token to prefill.
    same = torch.tensor([[5, 6, 7], [5, 6, 7]])
    assert _shared_prefix_length(same, torch.ones_like(same)) == 2


def test_finished_rows_leave_the_running_batch(adder, eval_rows):
    encoded = encode(adder, [row["prompt"] for row in eval_rows[:4]])
    network = Recording(adder.model)
    tokenizer = adder.tokenizer
    ends = [RowEnd(1), RowEnd(2), RowEnd(8, stops=("3",)), RowEnd(8)]  # the answers: 154, 104, 136, 70
    made = loop(adder, encoded, ends, network)
    texts = [tokenizer.decode(tokens, skip_special_tokens=True).strip() for tokens in made]
    assert texts == ["", "1", "13", "70"]  # a limit of 1 gives the leading space alone
    assert made[3][-1] == tokenizer.eos_token_id
    # After the shared prefix's call: every row, then one row fewer at each step.
    assert [shape[0] for shape in network.shapes[1:]] == [4, 3, 2, 1]


def test_only_a_forward_that_takes_the_cache_positions_and_logits_to_keep_fits_the_loop(adder):
    class OwnCode(torch.nn.Module):
        def forward(self, input_ids: Any, attention_mask: Any = None) -> Any:
            raise AssertionError("not called")

    assert fits(adder.model)
    assert not fits(OwnCode())
