"""``qfrun plan``: what a run would do per stage, decided exactly as the executor decides, changing nothing.

Values that only a run can produce (the outputs of a stage that will run first) are shown as known after that
stage runs, the way Terraform shows "(known after apply)"; such a stage may still turn out up to date when it
runs, so the plan says "re-run" only with the reason "upstream X will re-run".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.pipeline import dag, expr
from runner.pipeline.spec import Pipeline, StageSpec
from runner.run.fingerprint import changes, digest
from runner.run.inputs import InputError, Inputs, Upstream
from runner.stages import STAGE_TYPES
from runner.state.file import StageRecord, StageStatus, StateFile

RUN, RERUN, RESUME, UP_TO_DATE, GATED, BLOCKED, INVALID = (
    "run",
    "re-run",
    "resume",
    "up to date",
    "gated",
    "blocked",
    "invalid",
)
WILL_RUN = frozenset({RUN, RERUN, RESUME})
# Not a stage's action: what a stage outside the selection that never succeeded means to those it feeds.
UNAVAILABLE = "not selected and has never succeeded"
# The local platform runs a "bought" service on this machine: the plan still shows what Qianfan would sell
# (so a pipeline's cost is visible before it moves to the cloud) and says that here it costs nothing.
LOCAL_COST_NOTE = "free on the local platform, which runs it on this machine"


@dataclass(frozen=True)
class StagePlan:
    stage_id: str
    type: str
    action: str
    reasons: tuple[str, ...]
    summary: str
    fields: Mapping[str, Any]
    cost: str | None  # a cost-bearing action this run would take (deployments)
    upstream: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    pipeline: str
    path: str
    platform: str
    state_path: str
    stages: tuple[StagePlan, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = ()  # e.g. a prepaid service whose term ends soon

    def count(self, action: str) -> int:
        return sum(1 for stage in self.stages if stage.action == action)

    @property
    def costs(self) -> list[StagePlan]:
        return [stage for stage in self.stages if stage.cost]


def make_plan(
    pipeline: Pipeline,
    state: StateFile,
    *,
    select: tuple[str, ...] = (),
    from_stages: tuple[str, ...] = (),
    force: tuple[str, ...] = (),
    expiry_days: int = 7,
    now: datetime | None = None,
) -> Plan:
    graph = pipeline.graph
    for name in force:
        dag.check_stage(graph, name, "--force")
    forced_from = dag.downstream_of(graph, from_stages, "--from")
    selected = (dag.select(graph, select) | forced_from) if select else (forced_from or set(graph))
    forced = set(from_stages) | set(force)
    inputs = Inputs(pipeline)
    known: dict[str, Upstream] = {}
    actions: dict[str, str] = {}
    plans: list[StagePlan] = []
    for stage_id in dag.topological(graph):
        record = state.stages.get(stage_id)
        if stage_id not in selected:
            if record and record.last_success:
                known[stage_id] = Upstream(record.last_success["fingerprint"], record.last_success["outputs"])
                actions[stage_id] = UP_TO_DATE
            else:
                actions[stage_id] = UNAVAILABLE
            continue
        stage_plan = _plan_stage(
            pipeline.stages[stage_id], record, inputs, known, actions, stage_id in forced
        )
        actions[stage_id] = stage_plan.action
        plans.append(stage_plan)
    platform = pipeline.platform.get("kind", "local")
    if platform == "local":
        plans = [replace(p, cost=f"{p.cost}; {LOCAL_COST_NOTE}") if p.cost else p for p in plans]
    warnings = tuple(expiry_warnings(pipeline, state, within_days=expiry_days, now=now))
    return Plan(pipeline.name, str(pipeline.path), str(platform), str(state.path), tuple(plans), warnings)


def expiry_warnings(
    pipeline: Pipeline, state: StateFile, *, within_days: int, now: datetime | None = None
) -> Iterator[str]:
    """The deployed services whose prepaid term ends within ``within_days`` (or has ended), from the state."""
    moment = now or datetime.now(UTC)
    for stage_id, stage in pipeline.stages.items():
        record = state.stages.get(stage_id)
        if stage.type != "deploy" or record is None or record.status is not StageStatus.SUCCEEDED:
            continue
        expires = record.outputs.get("expires_at")
        try:
            end = datetime.strptime(str(expires), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            continue  # postpaid (no term), or a date this qfrun does not read
        left = end - moment
        service = record.outputs.get("service_id", "")
        if left.total_seconds() <= 0:
            yield (
                f"{stage_id}: service {service} expired at {expires}; `qfrun destroy --select {stage_id}` "
                "and a run deploy it anew"
            )
        elif left.days < within_days:
            days = f"{left.days} day{'s' if left.days != 1 else ''}" if left.days else "less than a day"
            yield f"{stage_id}: service {service} expires at {expires}, in {days}; renew it or plan a new one"


def _plan_stage(
    stage: StageSpec,
    record: StageRecord | None,
    inputs: Inputs,
    known: dict[str, Upstream],
    actions: Mapping[str, str],
    forced: bool,
) -> StagePlan:
    stage_type = STAGE_TYPES[stage.type]
    last = record.last_success if record else None

    def result(action: str, *reasons: str, fields: Mapping[str, Any] | None = None) -> StagePlan:
        # A plan is shown and posted (a pull-request comment): values read from env never appear in it.
        shown = inputs.redact_fields(stage, dict(fields if fields is not None else stage.fields))
        try:
            detail = stage_type.plan(shown)
        except (KeyError, TypeError, ValueError):  # fields still holding expressions of unknown type
            detail = None
        cost = detail.cost if detail and action in WILL_RUN else None
        summary = detail.summary if detail else stage.type
        shown_reasons = tuple(inputs.redact(reason) for reason in reasons)
        return StagePlan(stage.id, stage.type, action, shown_reasons, summary, shown, cost, stage.upstream)

    for upstream_id in stage.upstream:
        if actions[upstream_id] in (GATED, BLOCKED, INVALID, UNAVAILABLE):
            return result(BLOCKED, f"upstream stage {upstream_id} is {actions[upstream_id]}")
    pending = [u for u in stage.upstream if actions[u] in WILL_RUN]
    context_upstream = {u: known[u] for u in stage.upstream if u in known}
    unknown = {u: Upstream("", _UnknownOutputs(u)) for u in pending}
    upstream = {**context_upstream, **unknown}
    try:
        fields = inputs.resolve(stage, upstream)
    except InputError as error:
        later = _known_after(str(error), pending)
        if later is None:
            return result(INVALID, str(error))
        shown = _known_later(stage, inputs, upstream, later)
        if not last:
            return result(RUN, "it has not run yet", fields=shown)
        return result(RERUN, f"upstream stage {later} will run first; the rest is known then", fields=shown)
    gate_note: tuple[str, ...] = ()
    try:
        is_open, reason = inputs.gate(stage, upstream)
    except InputError as error:
        later = _known_after(str(error), pending)
        if later is None:
            return result(INVALID, str(error))
        is_open, gate_note = True, (f"if its if: is still true after {later} runs",)
    if not is_open:
        return result(GATED, reason, fields=fields)
    # Like the executor: only the stages whose outputs the fields consume count; one that merely gates this
    # stage (if:) or orders it (needs:) may re-run without making this one re-run.
    consumed = {ref.stage_id for ref in stage_type.stage_refs(fields)}
    waiting = [u for u in pending if u in consumed]
    if waiting:
        why = f"upstream stage {waiting[0]} will run first" if last else "it has not run yet"
        return result(RERUN if last else RUN, why, fields=fields)
    material = inputs.material(stage, fields, upstream)
    fingerprint = digest(material)
    if record and not record.status.terminal and record.fingerprint == fingerprint and record.intent:
        task = (record.task or {}).get("task_id") or record.intent.get("name", "")
        if record.status is StageStatus.WAITING:
            # What it waits for ("waiting for scores in FILE") is the reason: the run reads them and goes on.
            return result(
                RESUME, f"{record.reason}; the run takes them to task {task} if they are in", fields=fields
            )
        return result(RESUME, f"its task {task} is in flight; the run re-attaches to it", fields=fields)
    if forced:
        return result(RERUN if last else RUN, "forced", fields=fields)
    if last and last.get("fingerprint") == fingerprint:
        known[stage.id] = Upstream(fingerprint, last["outputs"])
        return result(UP_TO_DATE, *gate_note, fields=fields)
    if last:
        return result(RERUN, *changes(last.get("inputs", {}), material), fields=fields)
    if record and record.error:
        return result(RUN, f"its last attempt failed: {record.error}", fields=fields)
    if record and record.reason and record.status is StageStatus.PENDING:
        return result(RUN, record.reason, fields=fields)  # e.g. its service was released by qfrun destroy
    return result(RUN, "it has not run yet", fields=fields)


class _UnknownOutputs(dict[str, Any]):
    """Outputs not known before the run: reading any key fails with a recognisable message."""

    def __init__(self, stage_id: str) -> None:
        super().__init__()
        self.stage_id = stage_id

    def __getitem__(self, key: str) -> Any:
        raise expr.ExpressionError(f"known after stage {self.stage_id} runs")

    def __contains__(self, key: object) -> bool:
        return True


def _known_later(
    stage: StageSpec, inputs: Inputs, upstream: Mapping[str, Upstream], later: str
) -> dict[str, Any]:
    """The fields with what only a run can tell marked so, like Terraform's "(known after apply)"."""
    failed: list[tuple[str | int, ...]] = []
    fields = expr.resolve(stage.fields, inputs.context(upstream), lambda path, _: failed.append(path))
    for path in failed:
        holder: Any = fields
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = f"(known after {later} runs)"
    return dict(fields)


def _known_after(message: str, pending: list[str]) -> str | None:
    for stage_id in pending:
        if f"known after stage {stage_id} runs" in message:
            return stage_id
    return None


def default_state_path(pipeline: Pipeline) -> Path:
    return pipeline.path.parent / ".qfrun" / f"{pipeline.name}.state.json"
