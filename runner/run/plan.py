"""``qfrun plan``: what a run would do per stage, changing nothing.

Each stage's action comes from ``runner.run.decide``, the function the executor calls too. Values that only a
run can produce (the outputs of a stage that will run first) are shown as known after that stage runs, the
way Terraform shows "(known after apply)"; such a stage may still turn out up to date when it runs, so the
plan says "re-run" only with the reason "upstream X will run first", and names X in ``waits_on``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import networkx as nx

from runner.errors import StageError
from runner.pipeline import dag
from runner.pipeline.expr import contains_expression
from runner.pipeline.spec import Pipeline, StageSpec
from runner.platform.destinations import Destination, credential_destinations
from runner.platform.envfile import platform_environment
from runner.render.units import size_text
from runner.run.decide import Action, Blocked, Decision, UpstreamValue, decide, select_stages, unselected
from runner.run.inputs import Inputs, Pending, Upstream
from runner.run.refresh import SERVICE, Drift
from runner.stages import STAGE_TYPES
from runner.stages.base import Charge
from runner.state.file import StageRecord, StageStatus, StateFile

# The actions by their old names, which the formats and the CLI read.
RUN, RERUN, RESUME, UP_TO_DATE, GATED, BLOCKED, INVALID = (
    Action.RUN,
    Action.RERUN,
    Action.RESUME,
    Action.UP_TO_DATE,
    Action.GATED,
    Action.BLOCKED,
    Action.INVALID,
)
WILL_RUN = frozenset(action for action in Action if action.will_run)
# The local platform runs a "bought" service on this machine: the plan still shows what Qianfan would sell
# (so a pipeline's cost is visible before it moves to the cloud) and says that here it costs nothing.
LOCAL_COST_NOTE = "free on the local platform, which runs it on this machine"


@dataclass(frozen=True)
class StagePlan:
    stage_id: str
    type: str
    action: Action
    reasons: tuple[str, ...]
    summary: str
    fields: Mapping[str, Any]
    cost: str | None  # a cost-bearing action this run would take (deployments)
    upstream: tuple[str, ...]
    waits_on: str | None = None  # the stage that runs first and whose outputs may still change this action
    family: str | None = None  # the matrix stage this one is a member of
    charge: Charge | None = None  # ``cost`` as numbers, for the plan's total


@dataclass(frozen=True)
class OutsideChange:
    """A resource that changed outside qfrun (found by refresh), and what the planned run does about it."""

    stage_id: str
    change: str  # "service svco-1 is stopped (released)"
    then: str  # "qfrun run deploys it again (re-run deploy)"


@dataclass(frozen=True)
class Plan:
    pipeline: str
    path: str
    platform: str
    state_path: str
    stages: tuple[StagePlan, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = ()  # e.g. a prepaid service whose term ends soon
    # What leaves the machine: each host that would receive a credential, and which kind (never a value).
    destinations: tuple[Destination, ...] = ()
    code: tuple[str, ...] = ()  # the repository's files a run executes (custom evaluators), one line each
    # What refresh found changed outside qfrun, as Terraform's "Objects have changed outside of Terraform".
    outside: tuple[OutsideChange, ...] = ()
    refreshed: bool = False  # whether the platform was asked (not with --refresh=false)
    target: str | None = None  # the named target planned for (None: the pipeline has one platform:)
    sources: tuple[str, ...] = ()  # how this target gets each dataset and imported model, one line each
    local: bool = False  # the local platform: what Qianfan would charge costs nothing here

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
    drift: Mapping[str, Drift] | None = None,
) -> Plan:
    """``drift`` is what a refresh found (``runner.run.refresh``); None when the platform was not asked."""
    selection = select_stages(pipeline.graph, select, from_stages, force)
    inputs = Inputs(pipeline)
    changed = drift or {}
    seen: dict[str, UpstreamValue] = {}
    plans: list[StagePlan] = []
    for stage_id in dag.topological(pipeline.graph):
        record = state.stages.get(stage_id)
        if stage_id not in selection.stages:
            seen[stage_id] = unselected(stage_id, record, changed.get(stage_id))
            continue
        stage = pipeline.stages[stage_id]
        upstream = {u: seen[u] for u in stage.upstream}
        decision = decide(
            stage,
            record,
            upstream,
            inputs,
            forced=stage_id in selection.forced,
            drift=changed.get(stage_id),
        )
        seen[stage_id] = _as_upstream(stage_id, decision, record)
        plans.append(_stage_plan(stage, decision, inputs))
    platform = pipeline.platform_spec.name
    if pipeline.platform_spec.local:
        plans = [replace(p, cost=f"{p.cost}; {LOCAL_COST_NOTE}") if p.cost else p for p in plans]
    warnings = tuple(expiry_warnings(pipeline, state, within_days=expiry_days, now=now))
    return Plan(
        pipeline.name,
        str(pipeline.path),
        str(platform),
        state.label,
        tuple(plans),
        warnings,
        tuple(
            credential_destinations(pipeline.platform, platform_environment(pipeline.path, pipeline.platform))
        ),
        tuple(code_lines(pipeline)),
        tuple(outside_changes(pipeline, changed, plans)),
        drift is not None,
        pipeline.target if pipeline.targets_declared else None,
        tuple(source_lines(pipeline)) if pipeline.targets_declared else (),
        bool(pipeline.platform_spec.local),
    )


def _dataset_reads(pipeline: Pipeline) -> dict[str, bool]:
    """The datasets some stage reads, each with whether one reads it as a dataset version (evaluation,
    fine-tuning, calibration), which a Qianfan target imports into its dataset management, rather than only
    as batch inference's BOS input. A dataset field that is an expression could name any of them, as a
    version: the plan cannot tell which."""
    reads: dict[str, bool] = {}
    for stage in pipeline.stages.values():
        if any(contains_expression(str(value)) for key, value in stage.fields.items() if "dataset" in key):
            return dict.fromkeys(pipeline.datasets, True)
        for ref in STAGE_TYPES[stage.type].dataset_refs(stage.fields):
            reads[ref.dataset_id] = reads.get(ref.dataset_id, False) or ref.version
    return reads


def source_lines(pipeline: Pipeline) -> Iterator[str]:
    """How the target gets each dataset and each model the pipeline brings along: what promotion changes
    between targets, so a plan for production says what it uploads and imports there."""
    local = pipeline.platform_spec.local
    reads = _dataset_reads(pipeline)
    for dataset in pipeline.datasets.values():
        if dataset.path is None:
            yield f"dataset {dataset.id}: the Qianfan dataset version {dataset.qianfan_dataset_id}"
            continue
        written = _relative(pipeline, dataset.path)
        if local:
            yield f"dataset {dataset.id}: {written}, imported into the local platform once by content hash"
        elif dataset.id not in reads:
            yield f"dataset {dataset.id}: {written}, read by no stage, so nothing is uploaded"
        elif reads[dataset.id]:
            yield (
                f"dataset {dataset.id}: {written}{_size(dataset.path)}, uploaded to BOS once by content hash "
                "(batch inference input) and imported into Qianfan's datasets once (CreateDataset, "
                "CreateImportTask)"
            )
        else:
            yield (
                f"dataset {dataset.id}: {written}{_size(dataset.path)}, uploaded to BOS once by content hash "
                "(batch inference input), not imported into Qianfan's datasets: only batch inference reads it"
            )
    for stage in pipeline.stages.values():
        if stage.type != "model":
            continue
        fields = stage.fields
        if "import" in fields:
            written = _relative(pipeline, pipeline.files.base / str(fields["import"]))
            how = (
                "imported into the local platform (ImportLocalModel)"
                if local
                else "uploaded to BOS once by content hash and imported (CreateCustomModel, "
                "sourceType Import)"
            )
            yield f"model {stage.id}: the folder {written}, {how}"
        elif "version_id" in fields:
            yield f"model {stage.id}: the existing model version {fields['version_id']}"
        elif "endpoint" in fields:
            yield f"model {stage.id}: the preset endpoint {fields['endpoint']}"


def _size(path: Path) -> str:
    """`` (3.1 KiB)``: what an upload will send; nothing when the file cannot be read now (the run says)."""
    try:
        return f" ({size_text(path.stat().st_size)})"
    except OSError:
        return ""


def _relative(pipeline: Pipeline, path: Path) -> str:
    """``path`` as the pipeline's folder sees it: a plan is read beside the file."""
    return Path(os.path.relpath(path, pipeline.files.base)).as_posix()


def outside_changes(
    pipeline: Pipeline, drift: Mapping[str, Drift], plans: list[StagePlan]
) -> Iterator[OutsideChange]:
    """Each drift in pipeline order, with what the planned run does about it: the stage that made the resource
    runs again and so do the stages after it that will run, or, when it is not run, why not."""
    if not drift:
        return
    by_id = {plan.stage_id: plan for plan in plans}
    for stage_id in dag.topological(pipeline.graph):
        if stage_id not in drift:
            continue
        found = drift[stage_id]
        plan = by_id.get(stage_id)
        if plan is None:
            then = f"nothing: {stage_id} is not selected, and the selected stages that use it are blocked"
        elif plan.action.will_run:
            verb = "deploys it again" if found.what == SERVICE else f"re-runs {stage_id}"
            below = nx.descendants(pipeline.graph, stage_id)
            after = [d for d in by_id if d in below and by_id[d].action.will_run]
            then = f"qfrun run {verb}" + (f", then {', '.join(after)}" if after else "")
        else:
            then = f"nothing: {stage_id} is {plan.action}"
        yield OutsideChange(stage_id, found.describe(), then)


def code_lines(pipeline: Pipeline) -> Iterator[str]:
    """Each custom evaluator the pipeline names, with the repository file its code comes from."""
    local = pipeline.platform_spec.local
    for stage in pipeline.stages.values():
        for item in STAGE_TYPES[stage.type].local_inputs(stage.id, stage.fields, local=local):
            if item.kind == "code":
                module = os.path.relpath(pipeline.files.base / item.written, pipeline.files.repository)
                yield f"{stage.id}: {item.label} runs {Path(module).as_posix()} of the repository"


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


def _as_upstream(stage_id: str, decision: Decision, record: StageRecord | None) -> UpstreamValue:
    """What the stages downstream see of this one before the run: its outputs, a promise, or nothing."""
    if decision.action.will_run:
        return Pending(stage_id)
    if decision.action is Action.UP_TO_DATE:
        # up to date means it succeeded with these inputs before
        assert record is not None
        assert record.last_success is not None
        return Upstream(decision.fingerprint, record.last_success["outputs"])
    return Blocked(stage_id, f"is {decision.action}")


def _stage_plan(stage: StageSpec, decision: Decision, inputs: Inputs) -> StagePlan:
    """The decision as the plan shows it: posted as a pull-request comment, it never holds env values."""
    shown = inputs.redact_fields(stage, decision.fields)
    stage_type = STAGE_TYPES[stage.type]
    try:
        detail = stage_type.plan(stage_type.planned_fields(stage.id, shown))
    except StageError:  # a value that resolved to the wrong type: the run fails the stage and says why
        detail = None
    return StagePlan(
        stage.id,
        stage.type,
        decision.action,
        tuple(inputs.redact(reason) for reason in decision.reasons),
        detail.summary if detail else stage.type,
        shown,
        detail.cost if detail and decision.action.will_run else None,
        stage.upstream,
        decision.waits_on,
        stage.family,
        detail.charge if detail and decision.action.will_run else None,
    )


def default_state_path(pipeline: Pipeline) -> Path:
    return pipeline.path.parent / ".qfrun" / f"{pipeline.state_name}.state.json"
