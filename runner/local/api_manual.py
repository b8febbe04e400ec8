"""Manual evaluation on the local platform: the dimensions a create names, the answers people score, and
the scores they hand back.

Qianfan opens a task whose ``evalMode`` includes ``manual`` for labelling once inference is done
(``RunningWithManualBegin`` [E2]) and people score in its console; the local platform has no console, so
two local-only actions stand in for it on ``/v2/eval``: ``DescribeEvalManualSamples`` (the answers to
score) and ``SubmitEvalManualScores`` (one score per dimension and answer, which the platform checks,
turns into the metrics and uses to finish the task). A task with manual evaluation cannot be stopped
while it is open, as on Qianfan [E10].
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runner.local.api_common import CONFLICT, ApiError, Body, Context, found, invalid
from runner.local.jobspec import read_rows
from runner.local.rows import AWAITING_SCORES, SUCCEEDED, TaskRow
from runner.platform import wire
from runner.platform.protocol import TaskKind

EVALUATION = TaskKind.EVALUATION

DEFAULT_RANGE = (1, 5)


def manual_params(config: Body) -> dict[str, Any] | None:
    """``evalConfig.manualEvalConfig`` as the task keeps it: dimension names (``满意度`` first, added when
    missing, as the SDK does) with descriptions, and the score range; None when the config names none."""
    manual = config.obj("manualEvalConfig")
    raw = manual.array("evaluationDimension") or config.array("evaluationDimension")  # v1 place, tolerated
    if not raw and not manual.data:
        return None
    dimensions: list[dict[str, str]] = []
    for index, item in enumerate(raw):
        entry = Body(item if isinstance(item, dict) else {}, f"{manual.where}.evaluationDimension[{index}]")
        if not isinstance(item, dict):
            raise invalid(f"{entry.where} must be an object.")
        name = entry.text("dimension")
        if any(known["dimension"] == name for known in dimensions):
            raise invalid(f"{entry.where}: the dimension {name!r} is named twice.")
        dimensions.append({"dimension": name, "description": entry.opt_text("description") or ""})
    if not any(d["dimension"] == wire.SATISFACTION_WIRE for d in dimensions):
        dimensions.insert(0, {"dimension": wire.SATISFACTION_WIRE, "description": ""})
    if len(dimensions) > 1 + wire.MAX_EXTRA_DIMENSIONS:
        raise invalid(
            f"{manual.where}: evaluationDimension may add at most {wire.MAX_EXTRA_DIMENSIONS} dimensions "
            f"to {wire.SATISFACTION_WIRE}, not {len(dimensions) - 1}."
        )
    scale = manual.obj("scoreRange")
    low = scale.opt_integer("min", low=0, high=100)
    high = scale.opt_integer("max", low=0, high=100)
    low, high = (DEFAULT_RANGE[0] if low is None else low), (DEFAULT_RANGE[1] if high is None else high)
    if low >= high:
        raise invalid(f"{scale.where}: min ({low}) must be below max ({high}).")
    return {"dimensions": dimensions, "range": [low, high]}


def stop_refusal(task: TaskRow) -> ApiError | None:
    """Qianfan stops only purely automatic evaluations [E10]: one with manual scoring is refused."""
    if task.params.get("manual") and task.status not in ("succeeded", "failed", "stopped"):
        return ApiError(
            409,
            CONFLICT,
            f"The evaluation task {task.id!r} includes manual evaluation, which cannot be stopped; "
            "score it (SubmitEvalManualScores) to finish it.",
        )
    return None


def _open_task(ctx: Context, body: Body) -> TaskRow:
    task = ctx.store.task(body.text("taskId"))
    task = found(
        task if task is not None and task.kind == EVALUATION.value else None,
        "evaluation task",
        body.text("taskId"),
    )
    if not task.params.get("manual"):
        raise invalid(f"{body.where}: the evaluation task {task.id!r} has no manual evaluation.")
    return task


def _answers(task: TaskRow) -> list[tuple[str, int, dict[str, Any]]]:
    """(model version, position from 1, result row) of every answer, in the task's model order."""
    answers: list[tuple[str, int, dict[str, Any]]] = []
    for version_id, entry in (task.result.get("models") or {}).items():
        path = entry.get("results_path")
        if not isinstance(path, str) or not Path(path).is_file():
            raise invalid(
                f"The answers of evaluation task {task.id!r} for {version_id} are gone from this platform."
            )
        for index, line in enumerate(read_rows(Path(path)), start=1):
            answers.append((str(version_id), index, json.loads(line)))
    return answers


def describe_samples(ctx: Context, body: Body) -> dict[str, Any]:
    task = _open_task(ctx, body)
    if task.status not in (AWAITING_SCORES, SUCCEEDED):
        raise invalid(
            f"{body.where}: the evaluation task {task.id!r} is {task.status}; its answers come once it "
            "is open for manual scoring."
        )
    return {
        "samples": [
            {
                "modelId": version_id,
                "index": index,
                "input": str(row.get("prompt") or ""),
                "expected": str(row.get("response") or ""),
                "output": str(row.get("output") or ""),
            }
            for version_id, index, row in _answers(task)
        ]
    }


def submit_scores(ctx: Context, body: Body) -> dict[str, Any]:
    """Check every score, compute the metrics and finish the task; the same scores again are accepted."""
    task = _open_task(ctx, body)
    manual: Mapping[str, Any] = task.params["manual"]
    names = [str(d["dimension"]) for d in manual["dimensions"]]
    low, high = (int(v) for v in manual["range"])
    scores = _read_scores(body, names, low, high)
    if task.status == SUCCEEDED and task.result.get("manual_scores") == scores:
        return {}
    if task.status != AWAITING_SCORES:
        raise invalid(
            f"{body.where}: the evaluation task {task.id!r} is {task.status}, not open for manual scoring."
        )
    expected = {f"{version_id}#{index}" for version_id, index, _ in _answers(task)}
    missing = sorted(expected - set(scores), key=_order)
    unknown = sorted(set(scores) - expected, key=_order)
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"no scores for {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
        if unknown:
            parts.append(f"scores for answers the task does not have: {', '.join(unknown[:5])}")
        raise invalid(f"{body.where}: {'; '.join(parts)}.")
    models = {version_id: dict(entry) for version_id, entry in (task.result.get("models") or {}).items()}
    for version_id, entry in models.items():
        rows = [s for key, s in scores.items() if key.startswith(f"{version_id}#")]
        entry["metrics"] = {**entry.get("metrics", {}), **manual_metrics(rows, names, high)}
    result = {**task.result, "models": models, "manual_scores": scores}
    if not ctx.store.update_task(task.id, only_if=(AWAITING_SCORES,), status=SUCCEEDED, result=result):
        raise invalid(
            f"{body.where}: the evaluation task {task.id!r} changed while its scores were read; "
            "send them again."
        )
    return {}


def manual_metrics(rows: Sequence[Mapping[str, int]], names: list[str], top: int) -> dict[str, float]:
    """Each dimension's mean score; ``manualAvgScore`` (the mean satisfaction) and ``goodCaseProportion``
    (the share of answers with the top satisfaction score): the report's manual keys [E4], defined here."""
    metrics = {name: statistics.fmean(row[name] for row in rows) for name in names}
    satisfaction = [row[wire.SATISFACTION_WIRE] for row in rows]
    metrics["manualAvgScore"] = statistics.fmean(satisfaction)
    metrics["goodCaseProportion"] = sum(1 for value in satisfaction if value >= top) / len(satisfaction)
    return metrics


def _read_scores(body: Body, names: list[str], low: int, high: int) -> dict[str, dict[str, int]]:
    scores: dict[str, dict[str, int]] = {}
    for position, item in enumerate(body.array("scores", required=True)):
        entry = Body(item if isinstance(item, dict) else {}, f"{body.where} scores[{position}]")
        if not isinstance(item, dict):
            raise invalid(f"{entry.where} must be an object.")
        key = f"{entry.text('modelId')}#{entry.integer('index', low=1)}"
        if key in scores:
            raise invalid(f"{entry.where}: {key} is scored twice.")
        given = entry.obj("scores", required=True)
        for name in given.data:
            if name not in names:
                raise invalid(
                    f"{given.where}: {name!r} is not a dimension of this task ({', '.join(names)})."
                )
        scores[key] = {name: given.integer(name, low=low, high=high) for name in names}
    return scores


def _order(key: str) -> tuple[str, int]:
    version_id, _, index = key.rpartition("#")
    return version_id, int(index)


MANUAL_ACTIONS = {
    wire.EVAL_MANUAL_SAMPLES_ACTION: describe_samples,
    wire.EVAL_MANUAL_SCORES_ACTION: submit_scores,
}
