"""The ``opencompass`` evaluator's model half: run each benchmark over the model under test, in a job process.

The model is spoken to as OpenCompass speaks to a base model: raw text, no chat template (a benchmark's
templates write the model's own prompt format). A ``GenInferencer`` benchmark generates greedily and scores
the post-processed answers; a ``PPLInferencer`` one picks, per item, the label whose text the model finds
likeliest. The likelihood is the text's summed token log-probability rather than OpenCompass's mean loss:
label texts differ in length ("99" against "100"), and a mean would favour the longer one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from runner.benchmarks import Benchmark, parse_benchmark
from runner.benchmarks.scoring import postprocess, prompts, score
from runner.local.engine.job import require
from runner.local.engine.loading import LoadedModel, load_model
from runner.local.engine.sample_records import benchmark_records

BATCH = 32


@torch.inference_mode()
def _generate(model: LoadedModel, texts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy continuations of raw texts, one left-padded batch at a time."""
    tokenizer = model.tokenizer
    network: Any = model.model
    answers: list[str] = []
    for start in range(0, len(texts), BATCH):
        encoded = tokenizer(texts[start : start + BATCH], return_tensors="pt", padding=True)
        output = network.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        width = encoded["input_ids"].shape[1]
        answers.extend(str(tokenizer.decode(row[width:], skip_special_tokens=True)).strip() for row in output)
    return answers


@torch.inference_mode()
def _log_likelihoods(model: LoadedModel, texts: list[str]) -> list[float]:
    """Each text's summed token log-probability (the first token has no context and is left out)."""
    tokenizer = model.tokenizer
    network: Any = model.model
    values: list[float] = []
    for start in range(0, len(texts), BATCH):
        encoded = tokenizer(texts[start : start + BATCH], return_tensors="pt", padding=True)
        ids, mask = encoded["input_ids"], encoded["attention_mask"]
        # Left padding shifts a row's positions unless they are counted from its first real token.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = network(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float()
        picked = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        # A token counts where it and the one predicting it are both real (not the first after padding).
        values.extend(float(v) for v in (picked * mask[:, 1:] * mask[:, :-1]).sum(-1))
    return values


def _answers(model: LoadedModel, benchmark: Benchmark) -> list[str]:
    """The model's answer to every test item: generated text, or the likeliest label."""
    rendered = [prompts(benchmark, row) for row in benchmark.test]
    if benchmark.inferencer == "GenInferencer":
        return _generate(model, [str(text) for text in rendered], benchmark.max_out_len)
    per_label = [text for text in rendered if isinstance(text, dict)]
    flat = [text for labels in per_label for text in labels.values()]
    likelihoods = iter(_log_likelihoods(model, flat))
    answers = []
    for labels in per_label:
        scored = {label: next(likelihoods) for label in labels}
        answers.append(max(scored, key=scored.__getitem__))
    return answers


def run_benchmarks(
    model_dir: Path,
    benchmarks: list[dict[str, Any]],
    load: Callable[[Path], LoadedModel] = load_model,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Every benchmark's metric for the model in ``model_dir`` (``{abbr}_{metric}`` -> a fraction), and one
    record per benchmark item (runner.local.engine.sample_records).

    ``benchmarks`` are as the task carries them (``{source, text}``): each is checked again here, since the
    platform runs what a request sent, not what the runner checked.
    """
    model = load(model_dir)
    metrics: dict[str, float] = {}
    records: list[dict[str, Any]] = []
    for entry in benchmarks:
        benchmark = parse_benchmark(str(entry.get("text", "")), str(entry.get("source", "a benchmark")))
        raw = _answers(model, benchmark)
        answers = [postprocess(benchmark.postprocessor, a) for a in raw]
        references = [row[benchmark.output_column] for row in benchmark.test]
        metrics[benchmark.metric_name] = score(benchmark.metric, answers, references)
        records += benchmark_records(benchmark, raw)
    return metrics, records


def without_benchmarks(evaluators: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The evaluators that score a model's answers to the dataset (every kind but ``opencompass``)."""
    return [evaluator for evaluator in evaluators if evaluator.get("kind") != "opencompass"]


def benchmark_results(
    model: dict[str, Any], evaluators: list[dict[str, Any]]
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """The metrics and per-item records of every opencompass evaluator's benchmarks for one model of an
    evaluation job (none without such an evaluator)."""
    benchmarks = [b for e in evaluators if e.get("kind") == "opencompass" for b in e.get("benchmarks") or []]
    if not benchmarks:
        return {}, []
    return run_benchmarks(Path(require(model, "model_dir", "evaluation model with benchmarks")), benchmarks)
