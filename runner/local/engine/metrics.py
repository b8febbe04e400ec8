"""Rule metrics over result rows ``{"output", "response"}``; pure Python (no torch), safe in the server.

Definitions (each metric is the mean over rows, in 0..1):

* ``exact_match``: output equals the reference after stripping surrounding whitespace.
* ``accuracy``: exact match after normalisation (Unicode NFKC, case folding, whitespace collapsed, surrounding
  punctuation removed), the closest standard to the platform's rule evaluator.
* ``similarity``: rapidfuzz's normalised Indel similarity (``fuzz.ratio`` / 100).
* ``bleu``: sacrebleu corpus BLEU / 100 (the ``zh`` tokenizer when the references contain CJK text).
* ``rouge_l``: rouge-score ROUGE-L F1, with jieba word segmentation for CJK text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def _is_filler(char: str) -> bool:
    """Punctuation or whitespace in any script (Unicode categories P* and Z*)."""
    return char.isspace() or unicodedata.category(char)[0] in "PZ"


def _strip_filler(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _is_filler(text[start]):
        start += 1
    while end > start and _is_filler(text[end - 1]):
        end -= 1
    return text[start:end]


def normalise(text: str) -> str:
    """The form compared by ``accuracy``: NFKC, case-folded, single spaces, no surrounding punctuation."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _strip_filler(" ".join(folded.split()))


def _pairs(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for index, row in enumerate(rows, start=1):
        if "response" not in row or row["response"] is None:
            raise ValueError(f"Row {index} has no reference 'response', so it cannot be scored by rules.")
        pairs.append((str(row.get("output") or ""), str(row["response"])))
    return pairs


def exact_match(pairs: list[tuple[str, str]]) -> float:
    return sum(out.strip() == ref.strip() for out, ref in pairs) / len(pairs)


def accuracy(pairs: list[tuple[str, str]]) -> float:
    return sum(normalise(out) == normalise(ref) for out, ref in pairs) / len(pairs)


def similarity(pairs: list[tuple[str, str]]) -> float:
    from rapidfuzz import fuzz

    return sum(fuzz.ratio(out.strip(), ref.strip()) / 100 for out, ref in pairs) / len(pairs)


def bleu(pairs: list[tuple[str, str]]) -> float:
    import sacrebleu

    outputs = [out.strip() for out, _ in pairs]
    refs = [ref.strip() for _, ref in pairs]
    tokenize = "zh" if any(CJK.search(r) for r in refs) else "13a"
    # effective_order: n-gram orders longer than the answers are left out, so short exact answers ("68")
    # score 1.0 instead of 0.0 (plain 4-gram BLEU of one-token answers is always 0).
    scorer = sacrebleu.BLEU(tokenize=tokenize, effective_order=True)
    return float(scorer.corpus_score(outputs, [refs]).score) / 100


class _RougeTokenizer:
    """Words for ROUGE: jieba segments CJK text; other text splits on word characters (lower-cased)."""

    def tokenize(self, text: str) -> list[str]:
        if CJK.search(text):
            import jieba  # type: ignore[import-untyped]

            return [t for t in jieba.lcut(text.lower()) if _strip_filler(t)]
        return re.findall(r"\w+", text.lower())


def rouge_l(pairs: list[tuple[str, str]]) -> float:
    from rouge_score import rouge_scorer  # type: ignore[import-untyped]

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_RougeTokenizer())
    return float(sum(scorer.score(ref, out)["rougeL"].fmeasure for out, ref in pairs)) / len(pairs)


METRICS: dict[str, Callable[[list[tuple[str, str]]], float]] = {
    "accuracy": accuracy,
    "exact_match": exact_match,
    "similarity": similarity,
    "bleu": bleu,
    "rouge_l": rouge_l,
}


def score(rows: Sequence[dict[str, Any]], names: list[str]) -> dict[str, float]:
    """The named metrics over ``rows``; an unknown name or an empty set of rows is an error."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"The metric(s) {', '.join(unknown)} are unknown; use: {', '.join(METRICS)}.")
    if not rows:
        raise ValueError("There are no result rows to score.")
    pairs = _pairs(rows)
    return {name: round(METRICS[name](pairs), 6) for name in names}
