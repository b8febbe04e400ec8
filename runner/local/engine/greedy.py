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


@torch.inference_mode()
def greedy_tokens(
    network: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    ends: Sequence[RowEnd],
    eos_token_id: int,
    decode: Callable[..., str],
) -> list[list[int]]:
    """Each row's new tokens, its end of sequence token included where it made one.

    ``input_ids`` and ``attention_mask`` are a left-padded batch; ``decode`` turns token ids into text (the
    tokenizer's), used only for rows with stop strings.
    """
    rows = input_ids.shape[0]
    made: list[list[int]] = [[] for _ in range(rows)]
    # generate()'s position ids: counted over the real tokens, 0 on the padding.
    positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    cache = DynamicCache(config=network.config)
    live = list(range(rows))  # the batch's rows, by their index in the caller's batch
    step_ids, mask = input_ids, attention_mask
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


def _finished(tokens: list[int], end: RowEnd, eos_token_id: int, decode: Callable[..., str]) -> bool:
    if tokens[-1] == eos_token_id or len(tokens) >= end.limit:
        return True
    if end.stops:
        text = decode(tokens, skip_special_tokens=True)
        return any(stop in text for stop in end.stops)
    return False
