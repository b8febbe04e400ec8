"""A lighter decode loop than ``generate()`` for greedy batches without a repetition penalty.

Why a loop of our own: on the small models the platform runs, a forward call costs about as much in Python
as in arithmetic, so what ``generate()`` does around it (a generation config validated and merged per call,
logits processors and stopping criteria run over every row each step, finished rows padded and computed to
the end) is a large share of a batch. This loop calls the model's forward with the KV cache, takes the
arg-max, and drops each row from the running batch (and from the cache) as soon as it is finished, so no
step computes a finished row. Its answers are ``generate()``'s: the same prompt layout (left padding), the
same position ids (``generate``'s: counted over the attention mask), and the same per-row end (its end of
sequence token, its own token limit, or the first of its stop strings in its text).

Sampling and the repetition penalty stay with ``generate()``: their random draws and processors are
transformers' own and must stay identical to it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache


@dataclass(frozen=True)
class RowEnd:
    """What ends one row: its token limit and its stop strings (checked on its decoded new text)."""

    limit: int
    stops: tuple[str, ...] = ()


FORWARD_NEEDS = {"position_ids", "past_key_values", "logits_to_keep"}


def fits(network: Any) -> bool:
    """Whether the model's forward takes what this loop passes (transformers' own causal LMs do; a model
    with code of its own may not, and is left to ``generate()``)."""
    return FORWARD_NEEDS <= set(inspect.signature(network.forward).parameters)


@torch.inference_mode()
def greedy_tokens(
    network: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    ends: Sequence[RowEnd],
    eos_token_id: int,
    decode: Callable[..., Any],
) -> list[list[int]]:
    """Each row's new tokens, its end of sequence token included where it made one.

    ``input_ids`` and ``attention_mask`` are a left-padded batch; ``decode`` turns token ids into text (the
    tokenizer's), used only for rows with stop strings.
    """
    rows = input_ids.shape[0]
    made: list[list[int]] = [[] for _ in range(rows)]
    cache = DynamicCache(config=network.config)
    step_ids, mask = _prefill_shared_prefix(network, cache, input_ids, attention_mask)
    # generate()'s position ids: counted over the real tokens, 0 on the padding.
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)[:, -step_ids.shape[1] :]
    live = list(range(rows))  # the batch's rows, by their index in the caller's batch
    while live:
        out = network(
            input_ids=step_ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        chosen = out.logits[:, -1, :].argmax(dim=-1)
        keep: list[int] = []
        for slot, token in enumerate(chosen.tolist()):
            row = live[slot]
            made[row].append(token)
            if not _finished(made[row], ends[row], eos_token_id, decode):
                keep.append(slot)
        if not keep:
            break
        if len(keep) < len(live):
            # A finished row leaves the batch: the next steps compute only the rows still answering.
            index = torch.tensor(keep)
            cache.batch_select_indices(index)
            chosen, mask, positions = chosen[index], mask[index], positions[index]
            live = [live[slot] for slot in keep]
        step_ids = chosen.unsqueeze(-1)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
        positions = positions[:, -1:] + 1
    return made


def _prefill_shared_prefix(
    network: Any, cache: DynamicCache, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Put the tokens every row starts with (a chat template's opening, a shared system prompt) in the cache
    once, for all rows, and return what is left to prefill: each row's other tokens and the whole mask.

    Each row ``[pad.., prefix, rest]`` becomes ``[prefix, pad.., rest]`` in the cache: the same tokens at the
    same positions (position ids skip the padding), the padding masked as before, so every row attends to
    what it did; only the prefix's keys and values are computed once instead of once a row.
    """
    shared = _shared_prefix_length(input_ids, attention_mask)
    if shared == 0:
        return input_ids, attention_mask
    width = input_ids.shape[1]
    first = width - int(attention_mask[0].sum())  # where row 0's tokens start
    network(
        input_ids=input_ids[:1, first : first + shared],
        position_ids=torch.arange(shared).unsqueeze(0),
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    cache.batch_repeat_interleave(input_ids.shape[0])
    # A row padded with k tokens has its rest from column k + shared on; column j of the rest is column
    # j + shared, masked for j < k (what it holds there is never attended to).
    rest_mask = attention_mask[:, : width - shared]
    prefix_mask = attention_mask.new_ones((input_ids.shape[0], shared))
    return input_ids[:, shared:], torch.cat([prefix_mask, rest_mask], dim=-1)


def _shared_prefix_length(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> int:
    """How many first tokens every row of a left-padded batch shares, short of each row's last token (which
    must stay in the rest, to give the row its first logits); 0 for a single row, which gains nothing."""
    rows, width = input_ids.shape
    lengths = attention_mask.sum(-1)
    longest = int(lengths.min()) - 1
    if rows < 2 or longest < 1:
        return 0
    starts = (width - lengths).unsqueeze(-1)
    heads = input_ids.gather(1, starts + torch.arange(longest).unsqueeze(0))
    same = (heads == heads[:1]).all(dim=0).long()
    return int(same.cumprod(0).sum())


def _finished(tokens: list[int], end: RowEnd, eos_token_id: int, decode: Callable[..., Any]) -> bool:
    if tokens[-1] == eos_token_id or len(tokens) >= end.limit:
        return True
    if end.stops:
        text = str(decode(tokens, skip_special_tokens=True))
        return any(stop in text for stop in end.stops)
    return False
