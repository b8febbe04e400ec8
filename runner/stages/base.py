"""The contract between the runner and a stage type: ``StageType``, the base class every stage type extends.

A stage type says everything that depends on what its stages do, and nothing else lives anywhere else:
which other stages and datasets its fields reference (for the DAG and validation), the checks a schema cannot
make (per platform kind), which local files it reads (confined at validate, hashed into its fingerprint), what
the plan shows and costs, how it runs (what it submits through ``StageContext.run_task`` and which outputs it
returns), and which rows it adds to the report. The executor owns the rest: exactly-once task creation,
polling, state transitions and failure policy. ``runner.stages.registry`` holds the registered types;
docs/adding-a-stage-type.md walks through writing one.
"""

from __future__ import annotations

import abc
import functools
import importlib
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, is_dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from runner.errors import Issue
from runner.pipeline.expr import contains_expression
from runner.stages import fields

if TYPE_CHECKING:
    from runner.pipeline.spec import DatasetSpec
    from runner.pipeline.yamlio import Document
    from runner.platform.protocol import Dataset, Platform, TaskInfo, TaskKind
    from runner.stages.builtin_fields import InferenceParams

KeyPath = tuple[str | int, ...]
# Keys every stage has that say when and how it runs, not what it does: left out of its fingerprint, and added
# to a plugin's schema for it (runner.pipeline.schema).
CONTROL_KEYS = frozenset({"type", "description", "needs", "if", "timeout_minutes"})


@dataclass(frozen=True)
class StageRef:
    """A field of a stage that names another stage (``model: base``)."""

    path: KeyPath
    stage_id: str
    allowed_types: frozenset[str]
    takes_endpoint: bool = (
        False  # whether a model stage that names a preset endpoint will do (batch inference)
    )


@dataclass(frozen=True)
class DatasetRef:
    """A field of a stage that names a dataset (``dataset: qa_eval``).

    ``version`` says whether the stage reads it as a dataset version of the platform's dataset management
    (evaluation, fine-tuning, calibration) or only as batch inference's BOS input [B2], which on Qianfan
    needs no import into the console's datasets."""

    path: KeyPath
    dataset_id: str
    version: bool = True


@dataclass(frozen=True)
class Charge:
    """What one cost-bearing action buys, in Qianfan's units, so that a plan can total them: Qianfan's
    documents publish no prices, so the total is in replica-months and replicas, never in money."""

    payment: str  # "prepaid" or "postpaid"
    replicas: int
    months: int = 0  # prepaid term
    charge: str = ""  # postpaid: "computing_unit" or "tokens"


@dataclass(frozen=True)
class PlanDetail:
    """What ``qfrun plan`` shows for a stage: a one-line summary and any cost-bearing action."""

    summary: str
    cost: str | None = None  # e.g. "2 replicas of GPU-1-1 in bj, prepaid 3 months (6 replica-months)"
    charge: Charge | None = None  # the same, as numbers the plan totals


class StageContext(Protocol):
    """What a running stage may use; implemented by the executor."""

    @property
    def stage_id(self) -> str: ...

    @property
    def platform(self) -> Platform: ...

    @property
    def pipeline(self) -> str:
        """The pipeline's name, for files a stage keeps beside it (``.qfrun/results/<pipeline>/<stage>/``)."""
        ...

    def upstream_outputs(self, stage_id: str) -> Mapping[str, Any]:
        """Outputs of a stage this one depends on (succeeded in this run or up to date)."""
        ...

    def dataset(self, dataset_id: str, *, version: bool = True) -> Dataset:
        """The platform's dataset for a pipeline dataset id (a local file is uploaded once by hash);
        ``version=False`` when the stage reads only its batch input (no dataset version is made for it)."""
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

    def remembered(self, key: str) -> str:
        """What ``remember`` kept under ``key`` for this stage's task ("" when nothing)."""
        ...

    def remember(self, key: str, value: str) -> None:
        """Keep ``value`` in the stage's intent, on disk before this returns: the id of something the stage
        made after its task (a result export), so that a crash does not make it a second time."""
        ...

    def local_path(self, path: str) -> str:
        """A path written in the pipeline, made absolute against the pipeline file's folder."""
        ...


@dataclass(frozen=True)
class LocalInput:
    """A local path a stage's field names: confined at validate (runner.files), hashed into the fingerprint.

    ``kind`` names the confinement rule: a ``file`` or ``folder`` of data, ``code`` (a custom evaluator's
    module: the repository only), or a ``sheet`` (a scoring sheet qfrun writes and reads back, so it is not
    part of the fingerprint). ``label`` is how the fingerprint and the plan name it ("model folder m/adder").
    """

    path: KeyPath  # the field, relative to the stage
    kind: Literal["file", "folder", "code", "sheet"]
    written: str  # the path as the pipeline gives it, relative to the pipeline's folder
    label: str

    @property
    def fingerprinted(self) -> bool:
        return self.kind != "sheet"


@dataclass(frozen=True)
class CheckContext:
    """What a stage type's meaning checks see: the document (for line and column), every stage's mapping,
    the datasets, and the platform kind the pipeline runs on."""

    document: Document
    stages: Mapping[str, Mapping[str, Any]]
    datasets: Mapping[str, DatasetSpec]
    platform_kind: str  # "local" or "qianfan"

    @property
    def local(self) -> bool:
        return self.platform_kind != "qianfan"

    def issue(self, key_path: KeyPath, text: str) -> Issue:
        """An issue at ``key_path`` (from the document's root), worded ``stages.x.field: text``."""
        return Issue(self.document.location(key_path), f"{dotted(key_path)}: {text}")

    def stage_issue(self, stage_id: str, text: str) -> Issue:
        """An issue about the whole stage, placed at its key."""
        return Issue(self.document.key_location(("stages", stage_id)), f"stages.{stage_id}: {text}")


ReportSection = Literal["evaluations", "models", "services"]
PlanFields = TypeVar("PlanFields")  # a stage type's fields as its plan sees them (runner.stages.fields)
RunFields = TypeVar("RunFields")  # ... and as its run sees them


@dataclass(frozen=True)
class ReportEntry:
    """One row a stage adds to a section of the report (runner.render.report)."""

    section: ReportSection
    row: Mapping[str, Any]


class StageType(abc.ABC, Generic[PlanFields, RunFields]):
    """One stage type (``model``, ``infer``, ``evaluate``, ``compress``, ``deploy``, or a plugin's).

    Subclass it with its fields dataclass as the two type arguments (what ``plan`` and ``run`` receive:
    ``StageType[EchoFields, EchoFields]``, or ``StageType[DeployFields[Unresolved], DeployFields[Never]]``
    where a field may be an expression of a non-string type; runner.stages.fields), set ``name``, implement
    ``plan`` and ``run``, override the hooks the type needs, and register an instance with
    ``runner.stages.registry.register``. The built-in types' JSON Schema lives in
    schemas/pipeline.schema.json; a plugin gives its own in ``schema`` and the registry adds it to the
    pipeline schema (its ``type`` value, and the stage mapping's properties).

    The hooks before ``plan`` see the stage's mapping as written or as far as it resolved (they find
    references and paths, skipping expressions); ``plan`` and ``run`` see the typed fields, built once by
    ``planned_fields`` and ``run_fields``.
    """

    name: ClassVar[str]
    schema: ClassVar[Mapping[str, Any] | None] = None  # a plugin's stage mapping schema (built-ins: the file)
    produces_model: ClassVar[bool] = False  # outputs a model version other stages take (``version_id``)
    serves_chat: ClassVar[bool] = False  # outputs a chat service (``url_suffix``): a judge, a status row
    progress_unit: ClassVar[str] = "rows"  # what its task's progress counts, as progress and status say it

    # A type whose module must stay light to import names its fields dataclass in strings,
    # ``StageType["DeployFields[Unresolved]", "DeployFields[Never]"]`` (the import under TYPE_CHECKING), and
    # says here which module defines it: imported when a plan or run first needs it. The built-ins do, because
    # ``qfrun validate`` imports every stage type and building a dataclass takes most of a millisecond.
    fields_module: ClassVar[str | None] = None

    @classmethod
    def fields_class(cls) -> type:
        """The dataclass of the stage's fields: the one its type arguments name."""
        return _fields_class(cls)

    def planned_fields(self, stage_id: str, values: Mapping[str, Any]) -> PlanFields:
        """The fields as ``plan`` sees them: a value that may be an expression and is still text (not known
        before the run, or sensitive) is ``fields.Unresolved``; StageError when one has the wrong type."""
        built: object = fields.build(self.fields_class(), values, where=f"stages.{stage_id}", planned=True)
        return typing.cast(PlanFields, built)

    def run_fields(self, stage_id: str, values: Mapping[str, Any]) -> RunFields:
        """The resolved fields as ``run`` sees them; StageError naming the field when an expression resolved
        to a value of the wrong type."""
        return typing.cast(RunFields, fields.build(self.fields_class(), values, where=f"stages.{stage_id}"))

    def stage_refs(self, spec: Mapping[str, Any]) -> Iterator[StageRef]:
        """The fields that name other stages (for the DAG, validation and the fingerprint)."""
        return iter(())

    def dataset_refs(self, spec: Mapping[str, Any]) -> Iterator[DatasetRef]:
        """The fields that name pipeline datasets."""
        return iter(())

    def checks(self, ctx: CheckContext, stage_id: str, body: Mapping[str, Any]) -> Iterator[Issue]:
        """What the schema cannot say of a stage, including what its platform kind cannot do."""
        return iter(())

    def local_inputs(self, stage_id: str, spec: Mapping[str, Any], *, local: bool) -> Iterator[LocalInput]:
        """The local paths the stage reads or writes; ``spec`` may still hold expressions (skip those)."""
        return iter(())

    def packaged_inputs(self, spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        """What the stage reads from qfrun's own package (a built-in benchmark), as (label, content hash): in
        its fingerprint like a local file, so a qfrun upgrade that changes it re-runs the stage."""
        return iter(())

    def makes_model_version(self, spec: Mapping[str, Any]) -> bool:
        """Whether the model version it outputs is one it made (so a refresh checks it still exists), rather
        than one that existed before, which whoever made it owns."""
        return self.produces_model

    @abc.abstractmethod
    def plan(self, spec: PlanFields) -> PlanDetail:
        """What ``qfrun plan`` shows for the stage, and what it costs."""

    @abc.abstractmethod
    def run(self, ctx: StageContext, spec: RunFields) -> dict[str, Any]:
        """Do the stage's work and return its outputs (JSON values)."""

    def report_entries(
        self, stage: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]
    ) -> Iterator[ReportEntry]:
        """The rows the stage adds to the report, from its report row (``id``, ``type``, ``outputs``,
        ``upstream``) and every stage's row by id."""
        return iter(())


def fields_arguments(stage_type: type) -> tuple[Any, ...] | None:
    """The type arguments a ``StageType`` subclass gives (its own or inherited), None when it gives none."""
    for cls in stage_type.__mro__:
        for base in cls.__dict__.get("__orig_bases__", ()):
            if typing.get_origin(base) is StageType:
                return typing.get_args(base)
    return None


@functools.cache
def _fields_class(stage_type: type[StageType[Any, Any]]) -> type:
    """The one dataclass that both type arguments of a ``StageType`` subclass name (parameterised or not, in
    strings from ``fields_module``)."""
    found: set[Any] = set()
    for argument in fields_arguments(stage_type) or ():
        if isinstance(argument, typing.ForwardRef) and stage_type.fields_module is not None:
            module = importlib.import_module(stage_type.fields_module)
            argument = getattr(module, argument.__forward_arg__.partition("[")[0], None)
        found.add(typing.get_origin(argument) or argument)
    if len(found) != 1 or not is_dataclass(cls := found.pop()) or not isinstance(cls, type):
        raise TypeError(
            f"{stage_type.__name__}: the type arguments of StageType must name one dataclass of its fields "
            "(in strings, with fields_module naming the module that defines it)."
        )
    return cls


def single_ref(
    spec: Mapping[str, Any], key: str, allowed: frozenset[str], *, takes_endpoint: bool = False
) -> Iterator[StageRef]:
    """A reference held by a plain field, skipped when absent or still an unresolved expression."""
    value = spec.get(key)
    if isinstance(value, str) and not contains_expression(value):
        yield StageRef((key,), value, allowed, takes_endpoint)


def list_refs(spec: Mapping[str, Any], key: str, allowed: frozenset[str]) -> Iterator[StageRef]:
    values = spec.get(key)
    if isinstance(values, list):
        for index, value in enumerate(values):
            if isinstance(value, str) and not contains_expression(value):
                yield StageRef((key, index), value, allowed)


def single_dataset(
    spec: Mapping[str, Any], key: str = "dataset", *, version: bool = True
) -> Iterator[DatasetRef]:
    value = spec.get(key)
    if isinstance(value, str) and not contains_expression(value):
        yield DatasetRef((key,), value, version)


def model_version_of(ctx: StageContext, stage_id: str) -> str:
    """The model version id a model or compress stage produced."""
    return str(ctx.upstream_outputs(stage_id)["version_id"])


def inference_params(params: InferenceParams[Any]) -> dict[str, Any]:
    """The generation parameters given, as the platform names them, in a stable order."""
    given = fields.written(params)
    return {key: given[key] for key in sorted(given)}


def describe_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={params[key]}" for key in sorted(params))


def join_ids(ids: Sequence[str]) -> str:
    return ", ".join(ids)


def dotted(key_path: KeyPath) -> str:
    """``stages.x.evaluators.0``: how messages name a place in the pipeline."""
    return ".".join(str(part) for part in key_path)
