"""Batched generation (left-padded, KV cache) and the JSONL batch-inference job built on it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from transformers import LogitsProcessorList, StoppingCriteriaList

from runner.local.engine.greedy import RowEnd, fits, greedy_tokens
from runner.local.engine.loading import LoadedModel, load_model, render_chat
from runner.local.engine.row_controls import RowLimits, RowSampling

ALIASES = {"max_tokens": "max_output_tokens", "max_new_tokens": "max_output_tokens"}


@dataclass(frozen=True)
class InferenceParams:
    """Sampling settings; ``temperature == 0`` (or ``do_sample`` false) means greedy decoding."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_output_tokens: int = 16
    do_sample: bool | None = None
    seed: int | None = None
    penalty_score: float = 1.0
    stop: tuple[str, ...] = ()  # the answer ends before the first of these it holds

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> InferenceParams:
        """Build from a stage's ``inference_params``; an unknown name is an error, not silently dropped."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in (raw or {}).items():
            name = ALIASES.get(key, key)
            if name not in known:
                allowed = ", ".join(sorted(known | set(ALIASES)))
                raise ValueError(f"The inference parameter '{key}' is unknown; use one of: {allowed}.")
            if value is not None:
                values[name] = _stop_strings(value) if name == "stop" else value
        params = cls(**values)
        params.check()
        return params

    def check(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"The temperature must be 0 or more, not {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], not {self.top_p}.")
        if self.top_k < 0:
            raise ValueError(f"top_k must be 0 (off) or more, not {self.top_k}.")
        if not 1 <= self.max_output_tokens <= 4096:
            raise ValueError(f"max_output_tokens must be between 1 and 4096, not {self.max_output_tokens}.")
        if self.penalty_score < 1:
            raise ValueError(f"penalty_score must be 1.0 or more, not {self.penalty_score}.")
        if not all(isinstance(stop, str) and stop for stop in self.stop):
            raise ValueError("stop must be a non-empty string or a list of them.")

    @property
    def sampling(self) -> bool:
        return self.temperature > 0 if self.do_sample is None else (self.do_sample and self.temperature > 0)

    def generate_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_output_tokens,
            "do_sample": self.sampling,
            "repetition_penalty": self.penalty_score,
        }
        if self.sampling:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k or None)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs


def _stop_strings(value: Any) -> tuple[str, ...]:
    """``stop`` as given (one string or a list of them) as the tuple the settings hold."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError("stop must be a non-empty string or a list of them.")


@dataclass(frozen=True)
class Generation:
    """One completion with its token counts (for the API's usage block)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"


def batch_key(params: InferenceParams) -> tuple[float, int | None]:
    """What chats in one ``generate`` call must share: the repetition penalty (transformers applies one per
    call) and, when sampling with a seed, the seed (the random draws of a batch are shared, so a seeded chat
    runs alone to get the answer its seed gives). Everything else may differ from row to row."""
    return (params.penalty_score, params.seed if params.sampling else None)


@torch.inference_mode()
def generate(
    model: LoadedModel,
    prompts: list[list[dict[str, Any]]],
    params: InferenceParams | Sequence[InferenceParams],
) -> list[Generation]:
    """Generate for a batch of chats together, left-padded: greedy batches without a repetition penalty in
    the lighter loop of ``greedy``, others in one ``generate`` call (same answers either way).

    ``params`` is one setting for every chat or one per chat; per-chat settings must share ``batch_key``.
    """
    if not prompts:
        return []
    rows = [params] * len(prompts) if isinstance(params, InferenceParams) else list(params)
    if len(rows) != len(prompts):
        raise ValueError(f"{len(prompts)} chats were given {len(rows)} settings.")
    if len({batch_key(row) for row in rows}) > 1:
        raise ValueError("Chats with different repetition penalties or seeds cannot share a batch.")
    tokenizer = model.tokenizer
    texts = [render_chat(tokenizer, messages) for messages in prompts]
    encoded = tokenizer(texts, return_tensors="pt", padding=True)
    width = encoded["input_ids"].shape[1]
    if rows[0].seed is not None:
        torch.manual_seed(rows[0].seed)
    network: Any = model.model
    if _plain_greedy(rows) and fits(network):
        ends = [RowEnd(row.max_output_tokens, row.stop) for row in rows]
        made = greedy_tokens(
            network,
            encoded["input_ids"],
            encoded["attention_mask"],
            ends,
            tokenizer.eos_token_id,
            tokenizer.decode,
        )
    else:
        output = network.generate(
            **encoded,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **_batch_kwargs(rows, width, tokenizer),
        )
        made = [[int(t) for t in output[row, width:]] for row in range(len(rows))]
    results: list[Generation] = []
    special = {tokenizer.pad_token_id, tokenizer.eos_token_id}
    for row, settings in enumerate(rows):
        # A row stopped early by its own limit is padded to the batch's longest: cut at its limit first.
        new_ids = made[row][: settings.max_output_tokens]
        stopped = tokenizer.eos_token_id in new_ids
        if stopped:
            new_ids = new_ids[: new_ids.index(tokenizer.eos_token_id)]
        new_ids = [t for t in new_ids if t not in special]
        text = str(tokenizer.decode(new_ids, skip_special_tokens=True))
        cut = _cut_at_stop(text, settings.stop)
        results.append(
            Generation(
                text=(text if cut is None else cut).strip(),
                prompt_tokens=int(encoded["attention_mask"][row].sum()),
                completion_tokens=len(new_ids) + (1 if stopped else 0),
                finish_reason="stop" if stopped or cut is not None else "length",
            )
        )
    return results


def _plain_greedy(rows: list[InferenceParams]) -> bool:
    """Whether the batch can take the lighter greedy loop: no row samples and no repetition penalty applies
    (those stay with ``generate()``, whose random draws and processors they must match)."""
    return all(not row.sampling and row.penalty_score == 1.0 for row in rows)


def _batch_kwargs(rows: list[InferenceParams], width: int, tokenizer: Any) -> dict[str, Any]:
    """``generate``'s keyword arguments: plain ones when every row asks the same, per-row controls else."""
    first = rows[0]
    if all(row == first for row in rows) and not first.stop:
        return first.generate_kwargs()
    kwargs: dict[str, Any] = {
        **first.generate_kwargs(),
        "max_new_tokens": max(row.max_output_tokens for row in rows),
        "stopping_criteria": StoppingCriteriaList(
            [
                RowLimits(
                    width,
                    [row.max_output_tokens for row in rows],
                    [row.stop for row in rows],
                    tokenizer.decode,
                )
            ]
        ),
    }
    if any(row.sampling for row in rows):
        kwargs.update(do_sample=True, temperature=None, top_p=None, top_k=None)
        settings = [(row.temperature, row.top_k, row.top_p) if row.sampling else None for row in rows]
        kwargs["logits_processor"] = LogitsProcessorList([RowSampling(settings)])
    return kwargs


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> str | None:
    """The text before its first stop string (the stop string itself is not returned), or None."""
    places = [text.index(stop) for stop in stops if stop in text]
    return text[: min(places)] if places else None


def read_rows(path: Path) -> list[dict[str, Any]]:
    """JSONL rows with a string ``prompt`` (and optionally ``response``); errors name the line."""
    rows: list[dict[str, Any]] = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: the line is not valid JSON ({error.msg}).") from None
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                raise ValueError(f"{path}:{number}: the row needs a string field 'prompt'.")
            rows.append(row)
    return rows


def _batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def run_batch(
    model_dir: Path,
    in_jsonl: Path,
    out_jsonl: Path,
    params: dict[str, Any],
    batch_size: int,
    progress: Callable[[int, int], None],
    model: LoadedModel | None = None,
) -> int:
    """Infer every row of ``in_jsonl`` and write ``{"prompt", "response"?, "output"}`` rows in order.

    Resumable: rows already in ``out_jsonl`` (from an interrupted run) are kept and skipped, so a restarted
    task continues mid-dataset. Each batch is appended and flushed before progress is reported.
    """
    if batch_size < 1:
        raise ValueError(f"The batch size must be 1 or more, not {batch_size}.")
    settings = InferenceParams.from_dict(params)
    rows = read_rows(in_jsonl)
    out_jsonl = Path(out_jsonl)
    done = _completed_rows(out_jsonl, rows)
    total = len(rows)
    progress(done, total)
    if done == total:
        return total
    loaded = model if model is not None else load_model(Path(model_dir))
    out_jsonl.parent.mkdir(parents=True, exist_ok=True)
    with out_jsonl.open("a", encoding="utf-8") as out:
        for batch in _batches(rows[done:], batch_size):
            chats = [[{"role": "user", "content": row["prompt"]}] for row in batch]
            for row, generation in zip(batch, generate(loaded, chats, settings), strict=True):
                record: dict[str, Any] = {"prompt": row["prompt"]}
                if "response" in row:
                    record["response"] = row["response"]
                record["output"] = generation.text
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            done += len(batch)
            progress(done, total)
    return total


def _completed_rows(out_jsonl: Path, rows: list[dict[str, Any]]) -> int:
    """How many leading rows a previous run already wrote; a torn last line is cut off."""
    if not out_jsonl.exists():
        return 0
    good: list[str] = []
    for line in out_jsonl.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break
        if (
            not line.endswith("\n")
            or len(good) >= len(rows)
            or record.get("prompt") != rows[len(good)]["prompt"]
        ):
            break
        good.append(line)
    out_jsonl.write_text("".join(good), encoding="utf-8")
    return len(good)
