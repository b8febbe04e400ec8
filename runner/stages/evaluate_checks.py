"""What the schema cannot say of an ``evaluate`` stage: its evaluators, and what Qianfan's evaluation cannot
express [E1][E11]. Called through ``EvaluateStage.checks``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from runner.benchmarks import built_in_names, is_path
from runner.errors import Issue
from runner.stages.base import CheckContext, KeyPath
from runner.stages.registry import chat_servers
from runner.vocabulary import (
    JUDGE_METRICS,
    LOCAL_RULE_METRICS,
    MANUAL_METRICS,
    QIANFAN_RULE_METRICS,
    RULE_METRICS,
)

_QIANFAN_METRICS = " and ".join(sorted(QIANFAN_RULE_METRICS))  # "accuracy and similarity"
# Names a dimension cannot take: the default dimension, and the other metrics an evaluation reports.
RESERVED_DIMENSIONS = frozenset({*MANUAL_METRICS, *JUDGE_METRICS, *RULE_METRICS})


def _listed(value: Any) -> list[Any]:
    """A list as written; a value of another type is a schema issue, read as an empty list."""
    return value if isinstance(value, list) else []


def evaluator_issues(ctx: CheckContext, stage_id: str, body: Mapping[str, Any]) -> Iterator[Issue]:
    """One manual evaluator at most, its dimensions and scale; every rule evaluator turns a metric on."""
    manual_seen = False
    for index, evaluator in enumerate(_listed(body.get("evaluators"))):
        key_path: KeyPath = ("stages", stage_id, "evaluators", index)
        if isinstance(evaluator, Mapping) and evaluator.get("kind") == "manual":
            if manual_seen:
                yield ctx.issue(
                    key_path,
                    "a stage takes one manual evaluator (Qianfan scores one set of dimensions per "
                    "evaluation task).",
                )
            manual_seen = True
            yield from _manual_issues(ctx, key_path, evaluator)
        if isinstance(evaluator, Mapping) and evaluator.get("kind") == "opencompass":
            yield from _opencompass_issues(ctx, key_path, evaluator)
        if isinstance(evaluator, Mapping) and evaluator.get("kind") == "rule":
            if not any(evaluator.get(metric) is True for metric in RULE_METRICS):
                yield ctx.issue(
                    key_path,
                    f"a rule evaluator needs at least one metric set to true ({', '.join(RULE_METRICS)}).",
                )


def _opencompass_issues(
    ctx: CheckContext, key_path: KeyPath, evaluator: Mapping[str, Any]
) -> Iterator[Issue]:
    """Each benchmark a name qfrun ships or a file of the repository (the file's content is checked when the
    stage runs, and its path is confined like every local input)."""
    benchmarks = evaluator.get("benchmarks")
    known = built_in_names()
    for number, name in enumerate(benchmarks if isinstance(benchmarks, list) else []):
        if isinstance(name, str) and not is_path(name) and name not in known:
            yield ctx.issue(
                (*key_path, "benchmarks", number),
                f"there is no built-in benchmark {name!r}; the built-in ones are {', '.join(known)}, "
                "or name a .json benchmark file of yours.",
            )


def _manual_issues(ctx: CheckContext, key_path: KeyPath, evaluator: Mapping[str, Any]) -> Iterator[Issue]:
    """Unique dimension names that are not metric names already, and a score range whose lowest is below
    its highest."""
    dims = evaluator.get("dimensions")  # at most four: the schema says so [E1]
    seen: set[str] = set()
    for number, dimension in enumerate(dims if isinstance(dims, list) else []):
        name = dimension.get("name") if isinstance(dimension, Mapping) else None
        if not isinstance(name, str):
            continue
        where = (*key_path, "dimensions", number, "name")
        if name.lower() in RESERVED_DIMENSIONS:
            always = " (satisfaction is always scored)" if name.lower() == "satisfaction" else ""
            yield ctx.issue(
                where,
                f"{name!r} is already a metric of the evaluation{always}; give the dimension another name.",
            )
        elif name.lower() in seen:
            yield ctx.issue(where, f"the dimension {name!r} is named twice.")
        seen.add(name.lower())
    scale = evaluator.get("scale")
    if isinstance(scale, Mapping):
        low, high = scale.get("min", 1), scale.get("max", 5)
        if isinstance(low, int) and isinstance(high, int) and low >= high:
            yield ctx.issue(
                (*key_path, "scale"), f"the lowest score ({low}) must be below the highest ({high})."
            )


def qianfan_issues(ctx: CheckContext, stage_id: str, body: Mapping[str, Any]) -> Iterator[Issue]:
    """Evaluators Qianfan's CreateEvalTask cannot express [E1] (local metrics, custom scorers, a judge that
    is not a service), and a dataset it cannot read (a local file rather than a console dataset version)."""
    for index, evaluator in enumerate(_listed(body.get("evaluators"))):
        if not isinstance(evaluator, Mapping):
            continue
        key_path: KeyPath = ("stages", stage_id, "evaluators", index)
        kind = evaluator.get("kind")
        if kind == "rule":
            for metric in LOCAL_RULE_METRICS:
                if evaluator.get(metric) is True:
                    yield ctx.issue(
                        (*key_path, metric),
                        f"Qianfan's rule evaluation scores only {_QIANFAN_METRICS}; "
                        f"{metric} works on the local platform only.",
                    )
        elif kind == "custom":
            yield ctx.issue(
                key_path,
                "a custom scorer runs on the local platform only; Qianfan's evaluation takes rule metrics "
                "and an LLM judge.",
            )
        elif kind == "opencompass":
            yield ctx.issue(
                key_path,
                "Qianfan's evaluation has no OpenCompass mode (evalMode is rule, model or manual), and "
                "the qianfan SDK runs OpenCompass evaluators on the caller's machine; run this stage on the "
                "local platform (platform: local).",
            )
        elif kind == "llm_judge":
            judge = evaluator.get("judge")
            judge_type = ctx.stages.get(judge, {}).get("type") if isinstance(judge, str) else None
            servers = chat_servers()
            if judge_type is not None and judge_type not in servers:
                yield ctx.issue(
                    (*key_path, "judge"),
                    "on Qianfan the judge is a deployed service (autoModelEvalConfig.apiName), so name a "
                    f"{' or '.join(sorted(servers))} stage, not the {judge_type} stage {judge!r}.",
                )
    # A dataset with a local ``path`` is fine: qfrun imports it into Qianfan's dataset management
    # (runner.platform.dataset_import) and the evaluation reads that version (evalModelConfig.versionId).
