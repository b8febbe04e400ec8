"""The LLM judge: ask a grader model (a local folder or any ``ask(prompt) -> str``) to score each answer.

The server judges through a deployed service by passing a callable; batch evaluation passes the grader's
folder, which is asked in batches. Scores are parsed as the first integer in the reply and clamped to
``0..max_score``; a reply without one scores 0 and is counted in ``judge_unparsed``, so a broken judge shows.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

DEFAULT_TEMPLATE = "Question: {question}\nAnswer: {answer}\nScore:"
PLACEHOLDER = re.compile(r"\{(question|answer|reference)\}")
INTEGER = re.compile(r"-?\d+")
JUDGE_BATCH = 64


def fill(template: str, row: dict[str, Any]) -> str:
    """Replace ``{question}``, ``{answer}`` and ``{reference}``; other braces stay as written."""
    values = {
        "question": str(row.get("prompt", "")),
        "answer": str(row.get("output", "")),
        "reference": str(row.get("response", "") or ""),
    }
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def parse_score(reply: str, max_score: float) -> float | None:
    """The first integer in the reply, clamped to ``0..max_score``; ``None`` when there is none."""
    found = INTEGER.search(reply)
    if found is None:
        return None
    return float(min(max(int(found.group()), 0), max_score))


@functools.lru_cache(maxsize=2)
def _model_asker(model_dir: Path) -> Callable[[list[str]], list[str]]:
    """A batch asker over a grader folder, loaded once per process (an evaluation judges several models)."""
    from runner.local.engine.inference import InferenceParams, generate
    from runner.local.engine.loading import load_model

    loaded = load_model(model_dir)
    params = InferenceParams(temperature=0.0, max_output_tokens=4)

    def ask_many(prompts: list[str]) -> list[str]:
        replies: list[str] = []
        for start in range(0, len(prompts), JUDGE_BATCH):
            chats = [[{"role": "user", "content": p}] for p in prompts[start : start + JUDGE_BATCH]]
            replies += [g.text for g in generate(loaded, chats, params)]
        return replies

    return ask_many


def judge_scores(
    judge: Path | str | Callable[[str], str],
    rows: Sequence[dict[str, Any]],
    prompt_template: str | None = None,
    max_score: float = 10,
) -> dict[str, float]:
    """Mean judge score over ``rows`` (``{"prompt", "output", "response"?}``), normalised and raw."""
    return judge_summary(judge_replies(judge, rows, prompt_template, max_score), max_score)


def judge_replies(
    judge: Path | str | Callable[[str], str],
    rows: Sequence[dict[str, Any]],
    prompt_template: str | None = None,
    max_score: float = 10,
) -> list[tuple[float | None, str]]:
    """The judge's score (None when its reply holds no integer) and its reply, one per row, in order."""
    if max_score <= 0:
        raise ValueError(f"The judge's max_score must be more than 0, not {max_score}.")
    if not rows:
        raise ValueError("There are no result rows for the judge to score.")
    template = prompt_template or DEFAULT_TEMPLATE
    if "{answer}" not in template:
        raise ValueError(
            "The judge's prompt template must contain {answer}, or the judge never sees the answer."
        )
    prompts = [fill(template, row) for row in rows]
    if callable(judge):
        ask: Callable[[str], str] = judge
        replies = [ask(p) for p in prompts]
    else:
        replies = _model_asker(Path(judge))(prompts)
    return [(parse_score(reply, max_score), reply) for reply in replies]


def judge_summary(judged: Sequence[tuple[float | None, str]], max_score: float) -> dict[str, float]:
    """The mean of the judged scores, normalised and raw, and how many replies held no score."""
    scores = [score for score, _ in judged]
    unparsed = sum(s is None for s in scores)
    raw = sum(s or 0.0 for s in scores) / len(scores)
    return {
        "judge_score": round(raw / max_score, 6),
        "judge_score_raw": round(raw, 6),
        "judge_unparsed": float(unparsed),
    }
