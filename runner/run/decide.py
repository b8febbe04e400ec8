"""What a stage does in a run, decided in one place for both ``qfrun plan`` and ``qfrun run``.

``decide`` is pure: from the stage, its state record and what it sees of each upstream stage it returns
an ``Action`` with the reasons, the resolved fields and the fingerprint. The executor calls it with every
upstream value known; the planner calls it before anything ran, where a stage that will run first is
``Pending`` and the values read from it are ``expr.KnownAfter`` — so the plan and the run cannot drift
apart, and a plan's decision that waited on such a value says which stage it waited for (``waits_on``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import networkx as nx

from runner.pipeline import dag, expr
from runner.pipeline.spec import StageSpec
from runner.run.fingerprint import changes, digest
from runner.run.inputs import InputError, Inputs, Pending, Upstream
from runner.run.refresh import Drift
from runner.stages import STAGE_TYPES
from runner.state.file import StageRecord, StageStatus


class Action(enum.StrEnum):
    """What a run does with a stage (the words ``qfrun plan`` shows)."""

    RUN = "run"
    RERUN = "re-run"
    RESUME = "resume"
    UP_TO_DATE = "up to date"
    GATED = "gated"
    BLOCKED = "blocked"
    INVALID = "invalid"

    @property
    def will_run(self) -> bool:
        return self in (Action.RUN, Action.RERUN, Action.RESUME)


@dataclass(frozen=True)
class Blocked:
    """An upstream stage that gives this one nothing to run on; ``why`` completes "upstream stage X ..."."""

    stage_id: str
    why: str


UpstreamValue = Upstream | Pending | Blocked


@dataclass(frozen=True)
class Selection:
    """The stages a command covers and those it re-runs even when up to date: computed once per command."""

    stages: frozenset[str]
    forced: frozenset[str]


def select_stages(
    graph: nx.DiGraph[str], select: Iterable[str], from_stages: Iterable[str], force: Iterable[str]
) -> Selection:
    """``--select`` / ``--from`` (these and all downstream) / ``--force``, checked against the graph."""
    select, from_stages, force = tuple(select), tuple(from_stages), tuple(force)
    forced = {stage for name in force for stage in dag.stages_named(graph, name, "--force")}
    downstream = dag.downstream_of(graph, from_stages, "--from")
    forced |= {stage for name in from_stages for stage in dag.stages_named(graph, name, "--from")}
    stages = (dag.select(graph, select) | downstream) if select else (downstream or set(graph))
    return Selection(frozenset(stages), frozenset(forced))


def unselected(stage_id: str, record: StageRecord | None, drift: Drift | None = None) -> Upstream | Blocked:
    """What a stage outside the selection gives the selected ones: its last success, else nothing; nothing too
    when what that success made changed outside qfrun (the selected stages would read a deleted version)."""
    if drift is not None:
        return Blocked(stage_id, f"is not selected and its {drift.describe()} outside qfrun")
    if record and record.last_success:
        return Upstream(record.last_success["fingerprint"], record.last_success["outputs"])
    return Blocked(stage_id, "is not selected and has never succeeded")


@dataclass(frozen=True)
class Decision:
    action: Action
    reasons: tuple[str, ...]
    fields: Mapping[str, Any]  # resolved, with ``expr.KnownAfter`` where only a run tells
    fingerprint: str = ""  # known unless the decision waits on an upstream stage
    material: Mapping[str, Any] | None = None
    waits_on: str | None = None  # the pending upstream stage whose outputs could change this decision


def decide(
    stage: StageSpec,
    record: StageRecord | None,
    upstream: Mapping[str, UpstreamValue],
    inputs: Inputs,
    *,
    forced: bool,
    drift: Drift | None = None,
) -> Decision:
    """The stage's action, in the order the run meets the questions: blocked, gated, invalid, then state.

    ``drift`` is what a refresh found changed outside qfrun in what the stage's last success made: that
    success no longer counts, so the stage re-runs.
    """
    for upstream_id in stage.upstream:
        value = upstream[upstream_id]
        if isinstance(value, Blocked):
            return Decision(Action.BLOCKED, (f"upstream stage {upstream_id} {value.why}",), stage.fields)
    seen = {u: v for u, v in upstream.items() if not isinstance(v, Blocked)}
    waits_on: str | None = None
    try:
        is_open, reason = inputs.gate(stage, seen)
    except expr.NotKnownYet as unknown:
        is_open, reason, waits_on = True, "", unknown.stage_id
    except InputError as error:
        return Decision(Action.INVALID, (str(error),), _shown(stage, inputs, seen))
    if not is_open:
        return Decision(Action.GATED, (reason,), _shown(stage, inputs, seen))
    note = (f"if its if: is still true after {waits_on} runs",) if waits_on else ()
    try:
        fields = inputs.resolve(stage, seen)
    except InputError as error:
        return Decision(Action.INVALID, (str(error), *note), _shown(stage, inputs, seen), waits_on=waits_on)
    return _by_state(stage, record, seen, inputs, fields, note, waits_on, forced, drift)


def _by_state(
    stage: StageSpec,
    record: StageRecord | None,
    upstream: Mapping[str, Upstream | Pending],
    inputs: Inputs,
    fields: dict[str, Any],
    note: tuple[str, ...],
    waits_on: str | None,
    forced: bool,
    drift: Drift | None,
) -> Decision:
    """A stage free to run: what its fingerprint and its record make of it."""
    last = record.last_success if record else None
    outside = (f"its {drift.describe()} outside qfrun; {drift.remedy}",) if drift and last else ()
    waiting = _waiting(stage, upstream, fields, last is not None)
    if waiting:
        return replace(waiting, reasons=(*outside, *waiting.reasons)) if outside else waiting
    try:
        material = inputs.material(stage, fields, upstream)  # refuses files a pipeline may not read
    except InputError as error:
        return Decision(Action.INVALID, (str(error), *note), fields, waits_on=waits_on)
    fingerprint = digest(material)

    def decision(action: Action, *reasons: str) -> Decision:
        return Decision(action, reasons, fields, fingerprint, material, waits_on)

    if record and not record.status.terminal and record.fingerprint == fingerprint:
        return decision(Action.RESUME, _in_flight(record))
    if forced:
        return decision(Action.RERUN if last else Action.RUN, "forced", *outside)
    if last and last.get("fingerprint") == fingerprint:
        return decision(Action.RERUN, *outside) if outside else decision(Action.UP_TO_DATE, *note)
    if last:
        return decision(Action.RERUN, *outside, *changes(last.get("inputs", {}), material))
    if record and record.error:
        return decision(Action.RUN, f"its last attempt failed: {record.error}")
    if record and record.reason and record.status is StageStatus.PENDING:
        return decision(Action.RUN, record.reason)  # e.g. its service was released by qfrun destroy
    return decision(Action.RUN, "it has not run yet")


def _waiting(
    stage: StageSpec, upstream: Mapping[str, Upstream | Pending], fields: dict[str, Any], succeeded: bool
) -> Decision | None:
    """A stage whose fields or consumed outputs are known only after an upstream stage runs: it runs too."""
    fresh = Action.RERUN if succeeded else Action.RUN
    later = _known_after(fields)
    if later:
        why = f"upstream stage {later} will run first; the rest is known then"
        return Decision(fresh, (why if succeeded else "it has not run yet",), fields, waits_on=later)
    # Only the stages whose outputs the fields consume count; one that merely gates this stage (if:) or
    # orders it (needs:) may re-run without making this one re-run.
    consumed = {ref.stage_id for ref in STAGE_TYPES[stage.type].stage_refs(fields)}
    waiting = [u for u in stage.upstream if u in consumed and isinstance(upstream[u], Pending)]
    if waiting:
        why = f"upstream stage {waiting[0]} will run first"
        return Decision(fresh, (why if succeeded else "it has not run yet",), fields, waits_on=waiting[0])
    return None


def _in_flight(record: StageRecord) -> str:
    """Why an unfinished attempt of the same inputs is resumed, whether or not it reached the platform."""
    task = (record.task or {}).get("task_id") or (record.intent or {}).get("name")
    if task and record.status is StageStatus.WAITING:
        # What it waits for ("waiting for scores in FILE") is the reason: the run reads them and goes on.
        return f"{record.reason}; the run takes them to task {task} if they are in"
    if task:
        return f"its task {task} is in flight; the run re-attaches to it"
    # Stopped after its pending record and before its task intent (a forced re-run, say): nothing exists on
    # the platform yet, and the run goes on with this attempt rather than calling the stage up to date.
    return f"its attempt {record.attempt} stopped before its task was created; the run goes on with it"


def _known_after(value: Any) -> str | None:
    """The first upstream stage a resolved value still waits for, if any."""
    if isinstance(value, expr.KnownAfter):
        return value.stage_id
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else ()
    for item in items:
        if type(item) in _PLAIN:  # the common leaf, told apart without the ABCs' slower checks
            continue
        if isinstance(item, expr.KnownAfter | Mapping | list) and (found := _known_after(item)):
            return found
    return None


_PLAIN = frozenset({str, int, float, bool, type(None)})  # exact types: KnownAfter is a str subclass


def _shown(stage: StageSpec, inputs: Inputs, upstream: Mapping[str, Upstream | Pending]) -> dict[str, Any]:
    """The fields as far as they resolve, for a stage that will not run (what failed is left as written)."""
    try:
        return inputs.resolve(stage, upstream)
    except InputError:
        return dict(expr.resolve(stage.fields, inputs.context(upstream, stage), lambda *_: None))
