"""Write the benchmark subset that ships with qfrun (data/benchmarks/*.json), seeded so it is reproducible.

The items are two-digit sums written for this project (no third-party content). Each file has the shape of an
OpenCompass dataset config (reader_cfg, infer_cfg, eval_cfg) with its rows under ``splits``; see
runner/benchmarks/__init__.py for the format and docs/pipeline-format.md for the evaluator.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "data" / "benchmarks"
LABELS = ("A", "B", "C", "D")


def _sums(rng: random.Random, count: int) -> list[tuple[int, int]]:
    return [(rng.randint(10, 99), rng.randint(10, 99)) for _ in range(count)]


def multiple_choice(rng: random.Random) -> dict[str, Any]:
    """Four options per sum: the answer and three near misses (off by one, by ten, by eleven)."""

    def item(a: int, b: int) -> dict[str, Any]:
        options = [a + b, a + b + 1, a + b - 10, a + b + 11]
        rng.shuffle(options)
        row: dict[str, Any] = {"question": f"{a}+{b}=?"}
        row.update({label: str(value) for label, value in zip(LABELS, options, strict=True)})
        row["answer"] = LABELS[options.index(a + b)]
        return row

    return {
        "abbr": "arith_mc",
        "description": "Two-digit sums as four-option multiple choice scored by likelihood (PPL), zero-shot.",
        "reader_cfg": {
            "input_columns": ["question", *LABELS],
            "output_column": "answer",
            "train_split": "dev",
            "test_split": "test",
        },
        "infer_cfg": {
            "prompt_template": {"template": {label: f"Q: {{question}} A: {{{label}}}" for label in LABELS}},
            "retriever": {"type": "ZeroRetriever"},
            "inferencer": {"type": "PPLInferencer"},
        },
        "eval_cfg": {"evaluator": {"type": "AccEvaluator"}},
        "splits": {
            "dev": [item(a, b) for a, b in _sums(rng, 4)],
            "test": [item(a, b) for a, b in _sums(rng, 40)],
        },
    }


def generation(rng: random.Random) -> dict[str, Any]:
    """Sums answered by generation; the first number of the answer must equal the sum."""
    return {
        "abbr": "arith_gen",
        "description": "Two-digit sums answered by generation, first number of the answer against the sum.",
        "reader_cfg": {
            "input_columns": ["question"],
            "output_column": "answer",
            "train_split": "dev",
            "test_split": "test",
        },
        "infer_cfg": {
            "ice_template": {"template": "Q: {question} A: {answer}\n"},
            "prompt_template": {"template": "</E>Q: {question} A:", "ice_token": "</E>"},
            "retriever": {"type": "ZeroRetriever"},
            "inferencer": {"type": "GenInferencer", "max_out_len": 6},
        },
        "eval_cfg": {"evaluator": {"type": "EMEvaluator"}, "pred_postprocessor": {"type": "first_number"}},
        "splits": {
            "dev": [{"question": f"{a}+{b}=?", "answer": str(a + b)} for a, b in _sums(rng, 4)],
            "test": [{"question": f"{a}+{b}=?", "answer": str(a + b)} for a, b in _sums(rng, 40)],
        },
    }


def main() -> None:
    rng = random.Random(20261207)
    OUT.mkdir(parents=True, exist_ok=True)
    for benchmark in (multiple_choice(rng), generation(rng)):
        text = json.dumps(benchmark, indent=1, ensure_ascii=False) + "\n"
        (OUT / f"{benchmark['abbr']}.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
