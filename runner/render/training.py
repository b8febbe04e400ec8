"""Training curves in the report: the per-step loss a training task logged, summarised and drawn.

A stage that trained keeps its curve in its outputs as ``loss_curve``: ``[{"step", "loss"}]`` for the training
loss and, where the platform evaluated a validation dataset, ``{"step", "eval_loss"}`` points in
``eval_curve`` (or in the same list or points, as older states have them). The local platform reports
both (DescribeFineTuningTask's ``lossCurve`` and ``evalCurve``, local additions); Qianfan documents no
per-step curve, only a task's final ``metrics`` and a link to its VisualDL page (docs/platform-api.md §7a),
so a Qianfan run shows no chart rather than an invented one. The report keeps at most about
``charts.MAX_POINTS`` points per curve (the first, the last and the lowest always), and summarises every
point the state has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from runner.render.charts import thinned
from runner.render.report_model import CurveSummary, Training

SERIES = {"loss": "training loss", "eval_loss": "validation loss"}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value  # not NaN


def curves_of(points: Any) -> dict[str, list[list[float]]]:
    """The curves in a stage's ``loss_curve`` output; points that are not numbers (a state edited by hand,
    a diverged run's NaN) are left out rather than failing the report."""
    curves: dict[str, list[list[float]]] = {}
    for point in points if isinstance(points, list) else []:
        if not isinstance(point, Mapping) or not _number(point.get("step")):
            continue
        for key in SERIES:
            if _number(point.get(key)):
                curves.setdefault(key, []).append([float(point["step"]), float(point[key])])
    return {key: sorted(line) for key, line in curves.items()}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def summarise(line: Sequence[Sequence[float]]) -> CurveSummary:
    lowest = min(line, key=lambda point: point[1])
    return {"first": line[0][1], "last": line[-1][1], "min": lowest[1], "min_step": lowest[0]}


def trainings(rows: Iterable[Mapping[str, Any]]) -> list[Training]:
    """One entry per stage whose outputs carry a loss curve, in the report's (pipeline) order."""
    found: list[Training] = []
    for row in rows:
        outputs = row.get("outputs") or {}
        # The fine-tuning stage keeps the validation loss apart (``eval_curve``); older states mixed it in.
        points = [*_listed(outputs.get("loss_curve")), *_listed(outputs.get("eval_curve"))]
        curves = curves_of(points)
        if not curves:
            continue
        found.append(
            {
                "stage": str(row["id"]),
                "steps": max(line[-1][0] for line in curves.values()),
                # report.json stays small for a long run; the summary is of every point
                "curves": {key: [list(point) for point in thinned(line)] for key, line in curves.items()},
                "summary": {key: summarise(line) for key, line in curves.items()},
            }
        )
    return found


def summary_text(training: Training) -> str:
    """``logged at steps 10 to 320; training loss 4.67 → 0.0674 (lowest 0.0389 at step 310)``."""
    first = min(line[0][0] for line in training["curves"].values())
    parts = [f"logged at steps {first:g} to {training['steps']:g}"]
    for key, summary in training["summary"].items():
        parts.append(
            f"{SERIES[key]} {summary['first']:.4g} → {summary['last']:.4g} "
            f"(lowest {summary['min']:.4g} at step {summary['min_step']:g})"
        )
    return "; ".join(parts)
