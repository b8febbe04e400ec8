"""What changed per stage between two snapshots of a pipeline's state (``qfrun diff``, the report).

A snapshot (``runner.state.history.snapshot``) holds per stage its status, fingerprint, fingerprint material
and outputs. Inputs are explained by ``runner.run.fingerprint.changes``, the function ``qfrun plan`` uses for
"re-run because ..."; metrics and services are read through each stage type's report rows, so a plugin's
stage type shows here as it does in the report; a gate is evaluated by ``Inputs.gate`` (the executor's own)
on each side's outputs, so a metric that crosses a threshold says which stage it lets through or holds back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.pipeline import expr
from runner.pipeline.spec import Pipeline
from runner.run.fingerprint import changes
from runner.run.inputs import InputError, Inputs, Upstream
from runner.stages import STAGE_TYPES
from runner.state.history import Snapshot

SERVICE_FIELDS = ("url", "url_suffix", "billing", "replicas", "resource_type")


@dataclass(frozen=True)
class MetricDelta:
    name: str
    model: str  # the stage whose model was scored
    before: float | None
    after: float | None

    @property
    def delta(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return round(self.after - self.before, 12)  # 0.52 - 1.0 is -0.48, not -0.48000000000000004


@dataclass(frozen=True)
class GateChange:
    condition: str
    before: bool  # whether the if: let the stage run
    after: bool


@dataclass(frozen=True)
class StageChange:
    stage_id: str
    type: str
    change: str  # added | removed | changed | unchanged
    status: tuple[str, str]
    inputs: tuple[str, ...] = ()  # which inputs changed, when the fingerprint did
    metrics: tuple[MetricDelta, ...] = ()  # every metric of either side, changed or not
    service: tuple[tuple[str, Any, Any], ...] = ()  # (field, before, after) of the service, changed only
    gate: GateChange | None = None
    family: str | None = None

    @property
    def changed_metrics(self) -> tuple[MetricDelta, ...]:
        return tuple(m for m in self.metrics if m.before != m.after)


@dataclass(frozen=True)
class Comparison:
    pipeline: str
    before: str  # what the old side is ("main", "run 20261207-...")
    after: str
    stages: tuple[StageChange, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> tuple[StageChange, ...]:
        return tuple(stage for stage in self.stages if stage.change != "unchanged")


def compare(pipeline: Pipeline, before: Snapshot, after: Snapshot, *, labels: tuple[str, str]) -> Comparison:
    """Every stage of either side, in the pipeline's order, then those only the old side had."""
    old, new = before.get("stages", {}), after.get("stages", {})
    order = [s for s in pipeline.stages if s in old or s in new]
    order += sorted((set(old) | set(new)) - set(order))
    inputs = Inputs(pipeline, environ={})
    old_rows, new_rows = _report_rows(pipeline, old), _report_rows(pipeline, new)
    gates_before, gates_after = _gates(pipeline, inputs, old), _gates(pipeline, inputs, new)
    stages = []
    for stage_id in order:
        was, now = old.get(stage_id), new.get(stage_id)
        spec = pipeline.stages.get(stage_id)
        kind = spec.type if spec else str((now or was or {}).get("type", ""))
        status = (str((was or {}).get("status", "")), str((now or {}).get("status", "")))
        reasons: tuple[str, ...] = ()
        if was and now and was.get("fingerprint") != now.get("fingerprint"):
            reasons = tuple(changes(was.get("inputs") or {}, now.get("inputs") or {}))
        gate = None
        if gates_before.get(stage_id) is not None and gates_after.get(stage_id) is not None:
            if gates_before[stage_id] != gates_after[stage_id] and spec is not None:
                condition = " ".join(str(spec.condition).split())
                gate = GateChange(condition, bool(gates_before[stage_id]), bool(gates_after[stage_id]))
        metrics = tuple(_metric_deltas(old_rows.get(stage_id, {}), new_rows.get(stage_id, {})))
        service = tuple(_service_changes(old_rows.get(stage_id, {}), new_rows.get(stage_id, {}), status))
        if was is None or now is None:
            change = "added" if was is None else "removed"
        elif (
            reasons or status[0] != status[1] or gate or service or any(m.before != m.after for m in metrics)
        ):
            change = "changed"
        else:
            change = "unchanged"
        family = spec.family if spec else None
        stages.append(StageChange(stage_id, kind, change, status, reasons, metrics, service, gate, family))
    return Comparison(pipeline.name, labels[0], labels[1], tuple(stages))


def metrics_of(pipeline: Pipeline, snapshot: Snapshot) -> dict[str, dict[str, dict[str, float]]]:
    """``{stage: {metric: {model: value}}}``: the metrics of one snapshot, as the report shows them."""
    rows = _report_rows(pipeline, snapshot.get("stages", {}))
    return {stage_id: row["metrics"] for stage_id, row in rows.items() if row.get("metrics")}


def _report_rows(pipeline: Pipeline, stages: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each stage's metrics (``{metric: {model: value}}``) and service, as its stage type reports them."""
    rows: dict[str, dict[str, Any]] = {}
    for stage_id, entry in stages.items():
        spec = pipeline.stages.get(stage_id)
        kind = spec.type if spec else str(entry.get("type", ""))
        upstream = [u for u in (spec.upstream if spec else ()) if u in stages]
        rows[stage_id] = {
            "id": stage_id,
            "type": kind,
            "outputs": entry.get("outputs") or {},
            "upstream": upstream,
        }
    found: dict[str, dict[str, Any]] = {}
    for stage_id, row in rows.items():
        stage_type = STAGE_TYPES.get(str(row["type"]))
        if stage_type is None:
            continue  # a stage type this qfrun no longer has: its outputs cannot be read
        for entry in stage_type.report_entries(row, rows):
            if entry.section == "evaluations":
                found.setdefault(stage_id, {})["metrics"] = entry.row["metrics"]
            elif entry.section == "services":
                found.setdefault(stage_id, {})["service"] = entry.row
    return found


def _metric_deltas(before: Mapping[str, Any], after: Mapping[str, Any]) -> Iterator[MetricDelta]:
    old, new = before.get("metrics") or {}, after.get("metrics") or {}
    for name in sorted(set(old) | set(new)):
        models = set(old.get(name, {})) | set(new.get(name, {}))
        for model in sorted(models):
            yield MetricDelta(name, model, old.get(name, {}).get(model), new.get(name, {}).get(model))


def _service_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], status: tuple[str, str]
) -> Iterator[tuple[str, Any, Any]]:
    old, new = before.get("service"), after.get("service")
    if old is None and new is None:
        return
    if status[0] != status[1]:
        yield "status", status[0] or None, status[1] or None
    for key in SERVICE_FIELDS:
        was, now = (old or {}).get(key), (new or {}).get(key)
        if was != now:
            yield key, was, now


def _gates(pipeline: Pipeline, inputs: Inputs, stages: Mapping[str, Any]) -> dict[str, bool | None]:
    """Whether each stage's ``if:`` is true on this side's outputs; None where it cannot tell (an upstream
    stage this side never ran, an expression that fails on its values)."""
    found: dict[str, bool | None] = {}
    for stage_id, spec in pipeline.stages.items():
        if spec.condition is None or spec.condition is True:
            continue
        seen = {
            u: Upstream(str(stages[u].get("fingerprint", "")), stages[u].get("outputs") or {})
            for u in spec.upstream
            if u in stages and stages[u].get("outputs")
        }
        try:
            found[stage_id] = inputs.gate(spec, seen)[0] if len(seen) == len(spec.upstream) else None
        except (InputError, expr.ExpressionError):
            found[stage_id] = None
    return found
