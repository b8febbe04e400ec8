"""The evaluators an evaluation job applies to one model's result rows: rule metrics, an LLM judge (a model
folder, or a deployed service's URL), and custom scorers run from the source sent with the task."""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.local.engine import sample_records
from runner.local.engine.job import require
from runner.vocabulary import RULE_METRICS


def _rule_names(evaluator: dict[str, Any]) -> list[str]:
    extra = sorted(set(evaluator) - {"kind", *RULE_METRICS})
    if extra:
        raise ValueError(
            f"The rule evaluator has unknown field(s) {', '.join(extra)}; use {', '.join(RULE_METRICS)}."
        )
    names = [name for name in RULE_METRICS if evaluator.get(name)]
    if not names:
        raise ValueError(
            f"The rule evaluator turns on no metric; set one of {', '.join(RULE_METRICS)} to true."
        )
    return names


def load_custom(reference: str, source: str) -> Callable[[list[dict[str, Any]]], dict[str, float]]:
    """The function ``module:function`` of a custom evaluator's module ``source``.

    The source is what qfrun read from the pipeline's repository and sent with the task; nothing is
    imported by name, so a task cannot make the worker run a module that merely lies on its Python path.
    """
    module_name, _, function_name = reference.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"The custom evaluator '{reference}' must be written as module:function.")
    # A name of its own: registered as ``module_name`` it could replace a module the worker uses (``json``).
    module = types.ModuleType(f"qfrun_custom_evaluator.{module_name}")
    module.__file__ = f"<custom evaluator {module_name}>"
    sys.modules[module.__name__] = module  # what dataclasses look a class's module up by
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    except Exception as error:  # noqa: BLE001 - the user's module failed as it loaded: one sentence says so
        raise ValueError(
            f"The custom evaluator's module '{module_name}' failed to load: {type(error).__name__}: {error}."
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(
            f"The module '{module_name}' has no function '{function_name}' for the custom evaluator."
        )
    return function  # type: ignore[no-any-return]


def _url_judge(url: str) -> Callable[[str], str]:
    import httpx

    # The platform hands a judging job its token (replicas answer nobody without it), and no other job.
    headers = {"Authorization": f"Bearer {os.environ.get('QFRUN_LOCAL_TOKEN', '')}"}

    def ask(prompt: str) -> str:
        reply = httpx.post(
            url,
            json={"messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": 4},
            headers=headers,
            timeout=60,
        )
        reply.raise_for_status()
        return str(reply.json()["choices"][0]["message"]["content"])

    return ask


def apply_evaluators(rows: list[dict[str, Any]], evaluators: list[dict[str, Any]]) -> dict[str, float]:
    """Every evaluator's metrics over one model's result rows, merged into one dict."""
    return evaluate(rows, evaluators)[0]


def evaluate(
    rows: list[dict[str, Any]], evaluators: list[dict[str, Any]]
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Every evaluator's metrics over one model's result rows, and one record per row (runner.local.engine
    .sample_records): what was asked, expected and answered, each metric of that row, the judge's reply."""
    from runner.local.engine.judge import judge_replies, judge_summary
    from runner.local.engine.metrics import score

    metrics: dict[str, float] = {}
    records = sample_records.new_records(rows)
    for index, evaluator in enumerate(evaluators):
        kind = evaluator.get("kind")
        if kind == "rule":
            names = _rule_names(evaluator)
            metrics.update(score(rows, names))
            sample_records.add_rule_metrics(records, rows, names)
        elif kind == "llm_judge":
            judge: Path | Callable[[str], str]
            if evaluator.get("judge_url"):
                judge = _url_judge(str(evaluator["judge_url"]))
            else:
                judge = Path(require(evaluator, "judge_model_dir", "llm_judge evaluator"))
            max_score = float(evaluator.get("max_score") or 10)
            judged = judge_replies(judge, rows, evaluator.get("prompt"), max_score)
            metrics.update(judge_summary(judged, max_score))
            sample_records.add_judgements(records, judged, max_score)
        elif kind == "custom":
            function = str(require(evaluator, "function", "custom evaluator"))
            scorer = load_custom(function, str(require(evaluator, "source", "custom evaluator")))
            result = scorer(rows)
            if not _numbers(result):
                raise ValueError(
                    f"The custom evaluator {evaluator['function']} must return a dict of numbers."
                )
            metrics.update({str(k): float(v) for k, v in result.items()})
            sample_records.add_custom_metrics(records, rows, scorer)
        else:
            raise ValueError(f"evaluators[{index}] has kind '{kind}'; use rule, llm_judge or custom.")
    sample_records.decide(records)
    return metrics, records


def _numbers(result: Any) -> bool:
    """Whether a custom scorer's answer is a dict of numbers (a bool is not a score)."""
    return isinstance(result, dict) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in result.values()
    )
