"""Per-row settings inside one ``generate`` call, so that a service can batch chats that ask for different
things: each row's own token limit and stop strings (a stopping criterion) and its own temperature, top-k and
top-p, or greedy decoding (a logits processor).

Why not one ``generate`` call per set of settings: on a replica the model runs one batch at a time, so a chat
asking for 8 tokens and one asking for 9 would wait for each other's whole generation. transformers' own
warpers are applied to each group of rows that share settings, in the order ``generate`` applies them
(temperature, top-k, top-p), so a sampled row is drawn from the distribution it would be drawn from alone. A
greedy row among sampled ones keeps only its arg-max token, which multinomial sampling then picks with
certainty: its answer is the one greedy decoding gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import (
    LogitsProcessor,
    StoppingCriteria,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)


class RowLimits(StoppingCriteria):
    """Stops each row at its own number of new tokens, or once its new text holds one of its stop strings."""

    def __init__(
        self,
        prompt_width: int,
        limits: Sequence[int],
        stops: Sequence[tuple[str, ...]],
        decode: Any,  # token ids -> text (the tokenizer's decode)
    ) -> None:
        self.prompt_width = prompt_width
        self.limits = torch.tensor(list(limits))
        self.stops = list(stops)
        self.decode = decode

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        made = input_ids.shape[1] - self.prompt_width
        done = self.limits.to(input_ids.device) <= made
        for row, stops in enumerate(self.stops):
            if stops and not done[row]:
                text = self.decode(input_ids[row, self.prompt_width :], skip_special_tokens=True)
                done[row] = any(stop in text for stop in stops)
        return done  # type: ignore[return-value]


class RowSampling(LogitsProcessor):
    """Each row's own warpers: rows are grouped by (temperature, top_k, top_p); ``None`` means greedy."""

    def __init__(self, settings: Sequence[tuple[float, int, float] | None]) -> None:
        groups: dict[tuple[float, int, float] | None, list[int]] = {}
        for row, setting in enumerate(settings):
            groups.setdefault(setting, []).append(row)
        self.groups = [(setting, torch.tensor(rows)) for setting, rows in groups.items()]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = scores.clone()
        for setting, rows in self.groups:
            part, ids = scores[rows], input_ids[rows]
            if setting is None:
                best = part.argmax(dim=-1, keepdim=True)
                kept = torch.full_like(part, -float("inf")).scatter(-1, best, part.gather(-1, best))
            else:
                temperature, top_k, top_p = setting
                kept = TemperatureLogitsWarper(temperature)(ids, part)
                if top_k:
                    kept = TopKLogitsWarper(top_k)(ids, kept)
                if top_p < 1.0:
                    kept = TopPLogitsWarper(top_p)(ids, kept)
            out[rows] = kept
        return out  # type: ignore[return-value]
