"""``PlatformClient``: the ``protocol.Platform`` of both Qianfan's cloud and the local platform over HTTP.

A facade: each operation is one of the action modules of ``runner.platform.actions`` (models, datasets,
tasks, services, evaluations, inference), all on one HTTP session (``runner.platform.http``) and waiting
through one poll helper (``runner.platform.polling``) and the session's pause seam.

The executor polls through ``describe_task``, which costs one request (two when an evaluation has just
finished and its report is read), paced by the platform's shared rate budget. Creates are exactly-once:
when a create's outcome is unknown, the task is looked up by its deterministic name before creating again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from runner.platform.actions.datasets import DatasetActions
from runner.platform.actions.evaluations import EvaluationActions
from runner.platform.actions.inference import InferenceActions
from runner.platform.actions.models import ModelActions
from runner.platform.actions.services import ServiceActions
from runner.platform.actions.session import Session
from runner.platform.actions.tasks import TaskActions
from runner.platform.http import PlatformHttp
from runner.platform.protocol import (
    JSON,
    ChatMessage,
    ChatReply,
    Dataset,
    ManualSample,
    ManualScore,
    ModelVersion,
    SampleRecord,
    ServiceState,
    TaskInfo,
    TaskKind,
    TaskRef,
    TaskRequest,
)
from runner.platform.ratelimit import TokenBucket
from runner.platform.settings import PlatformSettings


class PlatformClient:
    """Every operation qfrun needs, typed; one HTTP session per client (close it, or use ``with``)."""

    def __init__(
        self,
        settings: PlatformSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        bucket: TokenBucket | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        self._http = PlatformHttp(settings, transport=transport, bucket=bucket, **extra)
        self._transport = transport
        session = Session(settings, self._http, transport)
        self._models = ModelActions(session)
        self._datasets = DatasetActions(session)
        self._services = ServiceActions(session)
        self._tasks = TaskActions(session, self._models, self._services)
        self._evaluations = EvaluationActions(session)
        self._inference = InferenceActions(session)

    @property
    def display_name(self) -> str:
        return self.settings.display_name

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PlatformClient({self.display_name})"

    # -- models ----------------------------------------------------------------------------------

    def describe_model_version(self, version_id: str) -> ModelVersion:
        return self._models.describe_version(version_id)

    def import_model(self, *, name: str, path: str) -> ModelVersion:
        return self._models.import_model(name=name, path=path)

    def import_through_bos(self, *, name: str, path: str) -> ModelVersion:
        return self._models.import_through_bos(name=name, path=path)

    def ensure_model_set(self, name: str) -> str:
        return self._models.ensure_model_set(name)

    def publish_trained(
        self, task_id: str, *, model_set_id: str, checkpoint_step: int | None = None
    ) -> ModelVersion:
        return self._models.publish_trained(
            task_id, model_set_id=model_set_id, checkpoint_step=checkpoint_step
        )

    def list_model_versions(self, version_ids: Collection[str]) -> frozenset[str]:
        return self._models.list_versions(version_ids)

    # -- datasets --------------------------------------------------------------------------------

    def ensure_dataset(self, *, name: str, path: str, sha256: str, version: bool = True) -> Dataset:
        return self._datasets.ensure(name=name, path=path, sha256=sha256, version=version)

    def import_dataset_through_bos(self, *, name: str, path: str, content: str, sha256: str) -> Dataset:
        return self._datasets.import_through_bos(name=name, path=path, content=content, sha256=sha256)

    def describe_dataset(self, dataset_id: str) -> Dataset:
        return self._datasets.describe(dataset_id)

    def export_dataset(self, dataset_id: str, *, limit: int | None = None) -> str:
        return self._datasets.export(dataset_id, limit=limit)

    # -- tasks and services ----------------------------------------------------------------------

    def find_task(self, kind: TaskKind, name: str, within: Mapping[str, str] | None = None) -> TaskRef | None:
        return self._tasks.find(kind, name, within)

    def prepare_task(self, request: TaskRequest) -> dict[str, str]:
        return self._tasks.prepare(request)

    def create_task(self, request: TaskRequest) -> TaskRef:
        return self._tasks.create(request)

    def describe_task(self, ref: TaskRef) -> TaskInfo:
        return self._tasks.describe(ref)

    def cancel_task(self, ref: TaskRef) -> None:
        self._tasks.cancel(ref)

    def list_services(self, service_ids: Collection[str]) -> dict[str, ServiceState]:
        return self._services.states(service_ids)

    # -- evaluations -----------------------------------------------------------------------------

    def manual_samples(self, ref: TaskRef) -> list[ManualSample] | None:
        return self._evaluations.manual_samples(ref)

    def submit_manual_scores(self, ref: TaskRef, scores: Sequence[ManualScore]) -> None:
        self._evaluations.submit_manual_scores(ref, scores)

    def manual_scoring_place(self, ref: TaskRef) -> str:
        return self._evaluations.manual_scoring_place(ref)

    def eval_samples(
        self,
        ref: TaskRef,
        limit: int,
        export_id: str = "",
        on_export: Callable[[str], None] | None = None,
    ) -> list[SampleRecord] | None:
        return self._evaluations.samples(ref, limit, export_id, on_export)

    # -- inference -------------------------------------------------------------------------------

    def batch_results(self, output_bos_uri: str, output_dir: str) -> list[dict[str, Any]] | None:
        return self._inference.batch_results(output_bos_uri, output_dir)

    def chat(self, endpoint: str, messages: Sequence[ChatMessage], **params: JSON) -> ChatReply:
        return self._inference.chat(endpoint, messages, **params)
