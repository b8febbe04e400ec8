"""A benchmark's prompts and scores: the pure half of running it (no model), so both are unit-tested alone.

``prompts`` puts the in-context examples (the retriever's rows, each through ``ice_template``) where the
prompt template has its ``ice_token``, and fills the columns in. ``postprocess`` and ``score`` turn the
model's answers into the benchmark's metric, as OpenCompass's ``pred_postprocessor`` and evaluator do, with
values from 0 to 1 (OpenCompass reports percentages; qfrun's metrics are fractions).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from runner.benchmarks import Benchmark

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_CAPITAL = re.compile(r"[A-Z]")


def _fill(template: str, row: dict[str, str]) -> str:
    return template.format_map(row)


def _ice(benchmark: Benchmark) -> str:
    """The in-context examples as one text (empty for zero-shot)."""
    if not benchmark.shots or benchmark.ice_template is None:
        return ""
    parts = []
    for index in benchmark.shots:
        row = benchmark.train[index]
        template = benchmark.ice_template
        if isinstance(template, dict):  # one template per label: the example's own answer picks it
            template = template.get(row[benchmark.output_column], next(iter(template.values())))
        parts.append(_fill(template, row))
    return "".join(parts)


def prompts(benchmark: Benchmark, row: dict[str, str]) -> str | dict[str, str]:
    """The text the model sees for ``row``: one prompt (generation) or one text per label (likelihood)."""
    ice = _ice(benchmark)

    def render(template: str) -> str:
        if benchmark.ice_token:
            before, _, after = template.partition(benchmark.ice_token)
            return _fill(before, row) + ice + _fill(after, row)
        return _fill(template, row)

    if isinstance(benchmark.template, dict):
        return {label: render(text) for label, text in benchmark.template.items()}
    return render(benchmark.template)


def postprocess(name: str | None, text: str) -> str:
    """OpenCompass-style post-processing of one answer before it is scored."""
    if name is None:
        return text
    if name == "first_line":
        return text.strip().split("\n", 1)[0].strip()
    if name == "first_number":
        found = _NUMBER.search(text)
        return found.group(0) if found else ""
    if name == "first_capital":
        found = _CAPITAL.search(text)
        return found.group(0) if found else ""
    # general: lower case, no punctuation, no articles, single spaces (OpenCompass's general_postprocess)
    cleaned = text.strip().split("\n", 1)[0].lower()
    cleaned = cleaned.translate(str.maketrans("", "", string.punctuation))
    cleaned = re.sub(r"\b(a|an|the)\b", " ", cleaned)
    return " ".join(cleaned.split())


def score(metric: str, predictions: Sequence[str], references: Sequence[str]) -> float:
    """The share of answers that are right: equal (accuracy, as OpenCompass's AccEvaluator compares them),
    equal after the general post-processing of both (exact_match, as its EMEvaluator), or containing the
    reference (contains)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references.")
    if not references:
        return 0.0
    if metric == "accuracy":
        right = sum(p == r for p, r in zip(predictions, references, strict=True))
    elif metric == "exact_match":
        right = sum(
            postprocess("general", p) == postprocess("general", r)
            for p, r in zip(predictions, references, strict=True)
        )
    elif metric == "contains":
        right = sum(r.strip() in p for p, r in zip(predictions, references, strict=True))
    else:
        raise ValueError(f"The benchmark metric {metric!r} is unknown.")
    return right / len(references)
