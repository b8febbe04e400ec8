"""The contract between the executor and the five stage modules.

A stage module says, for its stage type: which other stages and datasets its fields reference (for the DAG
and validation), what the plan shows and costs, and how it runs — what it submits through
``StageContext.run_task``, and which outputs it returns. The executor owns everything else: exactly-once task
creation, polling, state transitions and failure policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from runner.pipeline.expr import contains_expression
from runner.platform.protocol import Dataset, Platform, TaskInfo, TaskKind

KeyPath = tuple[str | int, ...]

MODEL_PRODUCERS = frozenset({"model", "compress"})


@dataclass(frozen=True)
class StageRef:
    """A field of a stage that names another stage (``model: base``)."""

    path: KeyPath
    stage_id: str
    allowed_types: frozenset[str]


@dataclass(frozen=True)
class DatasetRef:
    """A field of a stage that names a dataset (``dataset: qa_eval``)."""

    path: KeyPath
    dataset_id: str


@dataclass(frozen=True)
class PlanDetail:
    """What ``qfrun plan`` shows for a stage: a one-line summary and any cost-bearing action."""

    summary: str
    cost: str | None = None  # e.g. "2 replicas of GPU-1-1 in bj, prepaid 3 months (6 replica-months)"


class StageContext(Protocol):
    """What a running stage may use; implemented by the executor."""

    @property
    def stage_id(self) -> str: ...

    @property
    def platform(self) -> Platform: ...

    def upstream_outputs(self, stage_id: str) -> Mapping[str, Any]:
        """Outputs of a stage this one depends on (succeeded in this run or up to date)."""
        ...

    def dataset(self, dataset_id: str) -> Dataset:
        """The platform's dataset for a pipeline dataset id (a local file is uploaded once by hash)."""
        ...

    def run_task(
        self,
        kind: TaskKind,
        params: Mapping[str, Any],
        on_waiting: Callable[[TaskInfo], None] | None = None,
    ) -> TaskInfo:
        """Create (exactly once) and wait for a platform task; raises StageError unless it succeeds.

        While the task waits for manual scores, ``on_waiting`` is called: it hands the scores in (and the
        wait goes on to the metrics) or raises ``runner.errors.StageWaiting`` to end the stage as waiting."""
        ...

    def log(self, message: str) -> None:
        """A progress line shown to the user and kept with the stage."""
        ...

    def local_path(self, path: str) -> str:
        """A path written in the pipeline, made absolute against the pipeline file's folder."""
        ...


class StageType(Protocol):
    """One stage type: ``model``, ``infer``, ``evaluate``, ``compress`` or ``deploy``."""

    name: str

    def stage_refs(self, spec: Mapping[str, Any]) -> Iterator[StageRef]: ...

    def dataset_refs(self, spec: Mapping[str, Any]) -> Iterator[DatasetRef]: ...

    def plan(self, spec: Mapping[str, Any]) -> PlanDetail: ...

    def run(self, ctx: StageContext, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Do the stage's work and return its outputs (JSON values)."""
        ...


def single_ref(spec: Mapping[str, Any], key: str, allowed: frozenset[str]) -> Iterator[StageRef]:
    """A reference held by a plain field, skipped when absent or still an unresolved expression."""
    value = spec.get(key)
    if isinstance(value, str) and not contains_expression(value):
        yield StageRef((key,), value, allowed)


def list_refs(spec: Mapping[str, Any], key: str, allowed: frozenset[str]) -> Iterator[StageRef]:
    values = spec.get(key)
    if isinstance(values, list):
        for index, value in enumerate(values):
            if isinstance(value, str) and not contains_expression(value):
                yield StageRef((key, index), value, allowed)


def single_dataset(spec: Mapping[str, Any], key: str = "dataset") -> Iterator[DatasetRef]:
    value = spec.get(key)
    if isinstance(value, str) and not contains_expression(value):
        yield DatasetRef((key,), value)


def model_version_of(ctx: StageContext, stage_id: str) -> str:
    """The model version id a model or compress stage produced."""
    return str(ctx.upstream_outputs(stage_id)["version_id"])


def inference_params(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The generation parameters of an infer/evaluate stage, as the platform names them."""
    params = spec.get("params") or {}
    return {key: params[key] for key in sorted(params)}


def describe_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={params[key]}" for key in sorted(params))


def join_ids(ids: Sequence[str]) -> str:
    return ", ".join(ids)
