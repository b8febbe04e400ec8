"""The runner <-> platform seam: typed values and the ``Platform`` Protocol.

The executor and the stage modules talk to a platform only through this module, so they never import
httpx; the HTTP client (``runner.platform.client``) implements ``Platform`` for both the local platform
and Qianfan's cloud, and tests implement it in memory.

A *task* is the platform-side unit of work a stage creates. Each task carries a deterministic ``name``
(derived from pipeline, stage and fingerprint) so that a run that died between "create" and "record" can
find its task again instead of creating a second one (``find_task``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

JSON = Any  # a value that json.dumps accepts; kept loose on purpose at this seam


class TaskKind:
    """A kind of platform task a stage creates; its value is stable (it goes into the state file).

    An open set rather than an enum: a task-kind plugin defines its own with ``TaskKind.define`` next to its
    wire entry (runner.platform.wire.kinds) and its local module (runner.local.kinds), touching nothing else.
    Each value has one instance, so kinds compare with ``is`` like enum members; ``TaskKind(value)`` reads a
    stored value back and refuses one nobody defined.
    """

    __slots__ = ("value",)
    _known: ClassVar[dict[str, TaskKind]] = {}
    BATCH_INFERENCE: ClassVar[TaskKind]
    EVALUATION: ClassVar[TaskKind]
    COMPRESSION: ClassVar[TaskKind]
    SERVICE: ClassVar[TaskKind]
    value: str

    def __new__(cls, value: str) -> TaskKind:
        try:
            return cls._known[value]
        except KeyError:
            known = ", ".join(cls._known)
            raise ValueError(f"{value!r} is not a task kind qfrun knows (it knows {known})") from None

    @classmethod
    def define(cls, value: str) -> TaskKind:
        """The kind named ``value``, created on first use."""
        if value not in cls._known:
            kind = object.__new__(cls)
            object.__setattr__(kind, "value", value)
            cls._known[value] = kind
        return cls._known[value]

    @classmethod
    def known(cls) -> tuple[TaskKind, ...]:
        return tuple(cls._known.values())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a TaskKind cannot change")

    def __reduce__(self) -> tuple[type[TaskKind], tuple[str]]:
        return TaskKind, (self.value,)  # copies and pickles stay the one instance

    def __repr__(self) -> str:
        return f"TaskKind({self.value!r})"


TaskKind.BATCH_INFERENCE = TaskKind.define("batch_inference")
TaskKind.EVALUATION = TaskKind.define("evaluation")
TaskKind.COMPRESSION = TaskKind.define("compression")
TaskKind.SERVICE = TaskKind.define("service")


class TaskStatus(enum.Enum):
    """Where a platform task is, normalised from each platform's own status words."""

    PENDING = "pending"  # accepted, not started
    RUNNING = "running"
    AWAITING_SCORES = "awaiting_scores"  # an evaluation open for people to score (RunningWithManualBegin)
    SUCCEEDED = "succeeded"  # for a service: deployed and answering
    FAILED = "failed"
    STOPPED = "stopped"  # cancelled, or a service whose term ended

    @property
    def terminal(self) -> bool:
        return self in {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.STOPPED}


@dataclass(frozen=True)
class ModelVersion:
    """A model version in a platform's registry (Qianfan: ``amv-...`` inside a model set ``am-...``)."""

    version_id: str
    model_id: str
    name: str
    version: str = ""
    size_bytes: int | None = None
    source: str = ""  # e.g. "import", "compression:<task id>"
    details: Mapping[str, JSON] = field(default_factory=dict)  # scheme, recipe, lineage, ...


@dataclass(frozen=True)
class Dataset:
    """A dataset on a platform, ready to be read by inference and evaluation tasks."""

    dataset_id: str
    name: str
    rows: int | None = None
    sha256: str | None = None  # content hash of a local file uploaded by qfrun
    batch_input_uri: str | None = None  # the rows as batch inference reads them: a BOS folder [B2]


@dataclass(frozen=True)
class TaskRequest:
    """Everything needed to create a task; ``params`` holds the kind's resolved fields.

    Parameter keys by kind (all values JSON):
      BATCH_INFERENCE: model_version_id, dataset_id, inference_params{temperature, top_p, ...}, batch_size
      EVALUATION: model_version_ids[], dataset_id, evaluators[] (see schemas/pipeline.schema.json; a
                  ``manual`` one carries dimensions[{name, description}] and scale{min, max}),
                  result_dataset_ids{version_id: dataset_id} when scoring earlier inference results
      COMPRESSION: model_version_id, strategy ("Quantization"|"Sparsity"), weight ("INT8-PTQ"|...|None),
                   dataset_id (calibration) or None
      SERVICE: model_version_id, name (the user's, 2-20 characters), url_suffix, replicas,
               billing{payment: "prepaid", months} or billing{payment: "postpaid", charge}, and optional
               resource_type, region, qps (see the deploy stage in schemas/pipeline.schema.json)
    """

    kind: TaskKind
    name: str
    params: Mapping[str, JSON]


@dataclass(frozen=True)
class TaskRef:
    """Enough to find a task again: recorded in the state file as soon as the platform returns it."""

    kind: TaskKind
    task_id: str
    name: str
    instance_id: str = ""
    """A service's compute instance (Qianfan's CreateService ``instanceId``): releasing the service needs it,
    so it is kept with the task id; empty for the other kinds and where the platform did not say."""


@dataclass(frozen=True)
class TaskInfo:
    """A task as polled: status, progress and, once it succeeded, its result."""

    ref: TaskRef
    status: TaskStatus
    rows_done: int | None = None
    rows_total: int | None = None
    message: str = ""  # the platform's reason when FAILED/STOPPED
    result: Mapping[str, JSON] = field(default_factory=dict)
    """Kind-specific, on success:
      BATCH_INFERENCE: result_dataset_id, rows
      EVALUATION: models{version_id: {metrics{name: float}, samples: int}}
      COMPRESSION: version_id, model_id, size_bytes, scheme, seconds
      SERVICE: service_id, url_suffix, url (chat URL), replicas, resource_type, expires_at (prepaid),
               instance_id (when the platform reports it)
    """
    live: Mapping[str, float] = field(default_factory=dict)
    """What a task reports of itself as it goes, besides its progress, for qfrun's progress lines: a
    fine-tuning task's latest ``loss`` and ``eval_loss`` (local platform); empty where none is reported."""


@dataclass(frozen=True)
class ServiceState:
    """A service as a refresh finds it: its status on the platform and the platform's reason, if any."""

    service_id: str
    status: TaskStatus
    message: str = ""


@dataclass(frozen=True)
class ManualSample:
    """One answer of an evaluation open for manual scoring: what a person reads before scoring it."""

    version_id: str  # the model version that answered
    index: int  # the sample's position in the dataset, from 1
    input: str
    expected: str
    output: str


@dataclass(frozen=True)
class SampleRecord:
    """One sample of a finished evaluation as one model answered it: what was asked and expected, the
    answer, each metric of that sample (qfrun's names), the judge's reply, and whether it passed (None when
    no metric decides; runner.local.engine.sample_records)."""

    version_id: str
    index: int  # the sample's position in the dataset (a benchmark item's, in its benchmark), from 1
    input: str
    expected: str
    output: str
    metrics: Mapping[str, float]
    reason: str = ""
    passed: bool | None = None
    benchmark: str = ""  # an OpenCompass benchmark's item (its index counts within it); "" a dataset sample


@dataclass(frozen=True)
class ManualScore:
    """A person's scores for one answer: ``scores`` maps each dimension's name to a whole number."""

    version_id: str
    index: int
    scores: Mapping[str, int]


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class ChatReply:
    """The answer of a deployed service to one chat call."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    request_id: str = ""


@runtime_checkable
class Platform(Protocol):
    """What qfrun needs of a platform. Every method may raise ``runner.errors.PlatformError``."""

    @property
    def display_name(self) -> str:
        """How messages name this platform, e.g. ``local http://127.0.0.1:8765``; never a credential."""
        ...

    def describe_model_version(self, version_id: str) -> ModelVersion: ...

    def import_model(self, *, name: str, path: str) -> ModelVersion:
        """Register a local Hugging Face folder as a model version (local platform only).

        Idempotent: the same folder content under the same name returns the existing version.
        """
        ...

    def ensure_dataset(self, *, name: str, path: str, sha256: str, version: bool = True) -> Dataset:
        """Upload a local JSONL file once per content hash and return the platform's dataset.

        Its ``batch_input_uri`` is the BOS folder batch inference reads [B2]; its ``dataset_id`` the dataset
        version evaluation and fine-tuning read. ``version=False`` when only batch inference reads the file:
        on Qianfan it then goes to BOS only, and no dataset is imported into the console (``dataset_id`` is
        empty).
        """
        ...

    def describe_dataset(self, dataset_id: str) -> Dataset: ...

    def find_task(self, kind: TaskKind, name: str, within: Mapping[str, str] | None = None) -> TaskRef | None:
        """The task of that kind created under that deterministic name, if any; ``within`` holds what
        ``prepare_task`` gave for a kind created inside a parent (a fine-tuning job)."""
        ...

    def prepare_task(self, request: TaskRequest) -> Mapping[str, str]:
        """What the task is created inside (``{"job_id": ...}`` for fine-tuning), found by the request's name
        or created under it; ``{}`` for a kind created on its own. Recorded before ``create_task``, and
        merged into its params."""
        ...

    def create_task(self, request: TaskRequest) -> TaskRef: ...

    def ensure_model_set(self, name: str) -> str:
        """The id of the user's model (set) of that name, created once when there is none."""
        ...

    def publish_trained(
        self, task_id: str, *, model_set_id: str, checkpoint_step: int | None = None
    ) -> ModelVersion:
        """A finished fine-tuning task as a new version of ``model_set_id``, once per task and step (a second
        call returns the version the first made)."""
        ...

    def describe_task(self, ref: TaskRef) -> TaskInfo: ...

    def cancel_task(self, ref: TaskRef) -> None:
        """Stop a task; for a service, release its compute (a second release is harmless)."""
        ...

    def manual_samples(self, ref: TaskRef) -> list[ManualSample] | None:
        """The answers of an evaluation that waits for manual scores (``AWAITING_SCORES``); None where people
        score in the platform's own console (Qianfan) rather than through the API."""
        ...

    def submit_manual_scores(self, ref: TaskRef, scores: Sequence[ManualScore]) -> None:
        """Hand an open manual evaluation its scores; the platform computes the metrics and finishes it."""
        ...

    def manual_scoring_place(self, ref: TaskRef) -> str:
        """Where people score a manual evaluation on this platform, for messages (a console page)."""
        ...

    def eval_samples(
        self,
        ref: TaskRef,
        limit: int,
        export_id: str = "",
        on_export: Callable[[str], None] | None = None,
    ) -> list[SampleRecord] | None:
        """The per-sample records of a finished evaluation, at most ``limit`` of them in file order, read
        through the platform's result export: ``export_id`` names one made before (reused unless gone or
        failed); a new export's id goes to ``on_export`` before it is waited for. None where the platform
        has no export."""
        ...

    def batch_results(self, output_bos_uri: str, output_dir: str) -> list[dict[str, JSON]] | None:
        """The output lines of a finished batch inference task, read back from ``outputBosUri`` +
        ``outputDir`` [B5][B8]; None when they are too large to read back whole."""
        ...

    def chat(self, endpoint: str, messages: Sequence[ChatMessage], **params: JSON) -> ChatReply:
        """Call a deployed chat service by its URL suffix (``endpoint``)."""
        ...


@runtime_checkable
class Inventory(Protocol):
    """What a refresh asks a platform: whether the resources a state file records still exist, each kind in
    one paged list rather than one request per resource (``runner.run.refresh``)."""

    def list_services(self, service_ids: Collection[str]) -> Mapping[str, ServiceState]:
        """The state of each of these services the platform still knows; a service it no longer knows is
        left out."""
        ...

    def list_model_versions(self, version_ids: Collection[str]) -> frozenset[str]:
        """Those of these model versions that still exist."""
        ...
