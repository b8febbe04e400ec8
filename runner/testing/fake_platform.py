"""An in-memory platform that implements the Platform Protocol, with scripted outcomes.

For unit tests of the executor and the stage modules only: the tests that prove features work talk to the
real
local platform over HTTP. Optionally backed by a JSON file (``store=``) so that a run killed with SIGKILL
and a
resumed run in another process see the same tasks, as they would on a real platform.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import PlatformNotFound, PlatformServerError, PlatformUnavailable
from runner.platform.protocol import (
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
    TaskStatus,
)


@dataclass
class Script:
    """How the tasks of one stage behave."""

    polls: int = 0  # describe_task calls answered RUNNING before the outcome
    outcome: TaskStatus = TaskStatus.SUCCEEDED
    message: str = ""
    create_error: Exception | None = None  # raised by create_task (the task is NOT created)
    # The answer to the next create is lost and so is the lookup the client makes then (the client raises the
    # lookup's error); True: the platform made the task first, False: it never saw the request.
    lost_answer: bool | None = None
    result: Mapping[str, Any] | None = None  # replaces the default result
    rows: int = 10


@dataclass
class FakePlatform:
    scripts: dict[str, Script] = field(default_factory=dict)  # by stage id
    replies: dict[str, str] = field(default_factory=dict)  # chat reply by endpoint
    store: Path | None = None
    on_create: Callable[[TaskRequest], None] | None = None  # called after the task exists, before returning
    display_name: str = "fake"
    failing_lookups: int = 0  # the next find_task calls that fail as an unreachable platform would
    parents: Mapping[str, str] = field(default_factory=lambda: {"finetuning": "job_id"})  # kind -> param
    on_prepare: Callable[[TaskRequest], None] | None = None  # called after the parent exists

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self.data: dict[str, Any] = {"tasks": {}, "creates": [], "polls": {}, "chats": [], "events": []}
        if self.store is not None and self.store.exists():
            self.data = json.loads(self.store.read_text())

    # -- bookkeeping -----------------------------------------------------------------------------------
    def _save(self) -> None:
        if self.store is not None:
            temporary = self.store.with_suffix(".tmp")
            temporary.write_text(json.dumps(self.data))
            os.replace(temporary, self.store)

    @property
    def created(self) -> list[str]:
        """Task names in the order they were created (a name twice means a task was created twice)."""
        return list(self.data["creates"])

    def created_for(self, stage_id: str) -> list[str]:
        return [name for name in self.created if self.data.get("stages", {}).get(name) == stage_id]

    @property
    def events(self) -> list[tuple[str, str]]:
        """("create", stage) and ("done", stage) in the order they happened."""
        return [tuple(event) for event in self.data["events"]]

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        return dict(self.data["tasks"])

    # -- Platform --------------------------------------------------------------------------------------
    def describe_model_version(self, version_id: str) -> ModelVersion:
        if not version_id.startswith("amv-") or version_id in self.data.get("deleted_versions", []):
            raise PlatformNotFound(f"there is no model version {version_id}", platform="fake", status=404)
        return ModelVersion(version_id, "am-1", f"model-{version_id}", size_bytes=1000)

    def import_model(self, *, name: str, path: str) -> ModelVersion:
        return ModelVersion(f"amv-import-{name}", "am-import", name, size_bytes=2000, source="import")

    def ensure_dataset(self, *, name: str, path: str, sha256: str, version: bool = True) -> Dataset:
        self.data.setdefault("datasets_ensured", []).append((name, version))
        return Dataset(f"ds-{sha256[:8]}", name, rows=10, sha256=sha256)

    def describe_dataset(self, dataset_id: str) -> Dataset:
        return Dataset(dataset_id, dataset_id, rows=10)

    def prepare_task(self, request: TaskRequest) -> Mapping[str, str]:
        """A parent per task name for the kinds in ``parents``; ``data["parents_created"]`` counts creates."""
        param = self.parents.get(request.kind.value)
        if param is None:
            return {}
        with self._lock:
            parents = self.data.setdefault("parents", {})
            if request.name not in parents:
                parents[request.name] = f"job-{len(parents) + 1}"
                self.data["parents_created"] = self.data.get("parents_created", 0) + 1
                self._save()
        if self.on_prepare is not None:
            self.on_prepare(request)
        return {param: parents[request.name]}

    def ensure_model_set(self, name: str) -> str:
        with self._lock:
            sets = self.data.setdefault("model_sets", {})
            sets.setdefault(name, f"am-{len(sets) + 2}")
            self._save()
            return str(sets[name])

    def publish_trained(
        self, task_id: str, *, model_set_id: str, checkpoint_step: int | None = None
    ) -> ModelVersion:
        with self._lock:
            published = self.data.setdefault("published", {})
            key = f"{task_id}@{checkpoint_step}"
            if key not in published:
                # the version a script names for the task's stage (a test's own id), else a new one
                stage = self.data["tasks"].get(task_id, {}).get("stage", "")
                named = (self.scripts.get(stage, Script()).result or {}).get("version_id")
                published[key] = str(named or f"amv-trained-{len(published) + 1}")
                self._save()
            return ModelVersion(published[key], model_set_id, "trained", size_bytes=1000, source="train")

    def find_task(self, kind: TaskKind, name: str, within: Mapping[str, str] | None = None) -> TaskRef | None:
        with self._lock:
            self.data["lookups"] = self.data.get("lookups", 0) + 1
            if self.failing_lookups > 0:
                self.failing_lookups -= 1
                raise PlatformUnavailable("the lookup by name timed out", platform="fake")
            for task_id, task in self.data["tasks"].items():
                if task["kind"] == kind.value and task["name"] == name:
                    return TaskRef(kind, task_id, name)
        return None

    def create_task(self, request: TaskRequest) -> TaskRef:
        stage = _stage_of(request)
        script = self.scripts.get(stage, Script())
        if script.create_error is not None:
            raise script.create_error
        lost, script.lost_answer = script.lost_answer, None
        if lost is False:
            raise PlatformUnavailable("the create's answer was lost, and so was the lookup", platform="fake")
        with self._lock:
            task_id = f"{request.kind.value}-{len(self.data['tasks']) + 1}"
            self.data["tasks"][task_id] = {
                "kind": request.kind.value,
                "name": request.name,
                "stage": stage,
                "params": dict(request.params),
            }
            self.data["creates"].append(request.name)
            self.data.setdefault("stages", {})[request.name] = stage
            self.data["events"].append(["create", stage])
            self._save()
        if self.on_create is not None:
            self.on_create(request)
        if lost:
            raise PlatformUnavailable("the create's answer was lost, and so was the lookup", platform="fake")
        # A service's compute instance id, as Qianfan returns it with the service id (needed to release it).
        instance = f"unit-{task_id}" if request.kind is TaskKind.SERVICE else ""
        return TaskRef(request.kind, task_id, request.name, instance)

    def describe_task(self, ref: TaskRef) -> TaskInfo:
        with self._lock:
            task = self.data["tasks"].get(ref.task_id)
            if task is None or task.get("gone"):
                raise PlatformNotFound(f"there is no task {ref.task_id}", platform="fake", status=404)
            script = self.scripts.get(task["stage"], Script())
            polls = self.data["polls"].get(ref.task_id, 0) + 1
            self.data["polls"][ref.task_id] = polls
            if task.get("cancelled"):
                return TaskInfo(ref, TaskStatus.STOPPED, message="cancelled")
            if polls <= script.polls:
                return TaskInfo(ref, TaskStatus.RUNNING, rows_done=polls, rows_total=script.polls + 1)
            if "final" in task:  # a finished task stays as it finished, whatever the scripts say now
                status, message, result = task["final"]
                return TaskInfo(ref, TaskStatus(status), script.rows, script.rows, message, result)
            self.data["events"].append(["done", task["stage"]])
            result = {}
            if script.outcome is TaskStatus.SUCCEEDED:
                result = dict(script.result) if script.result is not None else _result(ref, task, script)
            task["final"] = [script.outcome.value, script.message, result]
            self._save()
            return TaskInfo(ref, script.outcome, script.rows, script.rows, script.message, result)

    def cancel_task(self, ref: TaskRef) -> None:
        with self._lock:
            self.data["tasks"][ref.task_id]["cancelled"] = True
            self._save()

    # -- Inventory (refresh) ---------------------------------------------------------------------------
    def list_services(self, service_ids: Collection[str]) -> dict[str, ServiceState]:
        with self._lock:
            self.data["lists"] = self.data.get("lists", 0) + 1
            found: dict[str, ServiceState] = {}
            for service_id in service_ids:
                task = self.data["tasks"].get(service_id)
                if task is None or task["kind"] != TaskKind.SERVICE.value or task.get("gone"):
                    continue
                stopped = task.get("cancelled")
                status = TaskStatus.STOPPED if stopped else TaskStatus.SUCCEEDED
                found[service_id] = ServiceState(service_id, status, "released" if stopped else "")
                if "failed" in task:
                    found[service_id] = ServiceState(service_id, TaskStatus.FAILED, task["failed"])
            return found

    def list_model_versions(self, version_ids: Collection[str]) -> frozenset[str]:
        with self._lock:
            self.data["lists"] = self.data.get("lists", 0) + 1
            deleted = set(self.data.get("deleted_versions", []))
            return frozenset(v for v in version_ids if v.startswith("amv-") and v not in deleted)

    @property
    def list_requests(self) -> int:
        """How many list requests refreshes sent."""
        return int(self.data.get("lists", 0))

    def release_outside(self, service_id: str, *, forget: bool = False) -> None:
        """A service released in the console (``forget``: and gone from the platform's lists)."""
        with self._lock:
            self.data["tasks"][service_id]["cancelled"] = True
            if forget:
                self.data["tasks"][service_id]["gone"] = True
            self._save()

    def fail_outside(self, service_id: str, reason: str) -> None:
        """A service whose replicas failed on the platform, after qfrun saw it serving."""
        with self._lock:
            self.data["tasks"][service_id]["failed"] = reason
            self._save()

    def delete_version_outside(self, version_id: str) -> None:
        """A model version deleted in the console."""
        with self._lock:
            self.data.setdefault("deleted_versions", []).append(version_id)
            self._save()

    def batch_results(self, output_bos_uri: str, output_dir: str) -> list[dict[str, Any]] | None:
        return None  # the fake's batch tasks write no BOS output

    def manual_samples(self, ref: TaskRef) -> list[ManualSample] | None:
        return None  # like Qianfan: people score in a console, not through the API

    def submit_manual_scores(self, ref: TaskRef, scores: Sequence[ManualScore]) -> None:
        raise PlatformServerError("the fake takes no scores", platform="fake", status=400)

    def eval_samples(
        self,
        ref: TaskRef,
        limit: int,
        export_id: str = "",
        on_export: Callable[[str], None] | None = None,
    ) -> list[SampleRecord] | None:
        return None  # the fake's evaluations keep aggregates only

    def manual_scoring_place(self, ref: TaskRef) -> str:
        return f"the fake console (task {ref.task_id})"

    def chat(self, endpoint: str, messages: Sequence[ChatMessage], **params: Any) -> ChatReply:
        if endpoint not in self.replies and not any(
            t["kind"] == "service" for t in self.data["tasks"].values()
        ):
            raise PlatformServerError(f"no service answers {endpoint}", platform="fake", status=503)
        self.data["chats"].append(endpoint)
        return ChatReply(self.replies.get(endpoint, "5"))


def _stage_of(request: TaskRequest) -> str:
    """The stage id in a task's description ``qfrun <pipeline>/<stage> fingerprint ...`` (the name is a
    digest of it, short enough for Qianfan's 20 characters)."""
    words = str(request.params.get("description", "")).split()
    return words[1].split("/", 1)[1] if len(words) > 1 and "/" in words[1] else request.name


def _result(ref: TaskRef, task: Mapping[str, Any], script: Script) -> dict[str, Any]:
    params = task["params"]
    number = ref.task_id.rsplit("-", 1)[-1]
    if ref.kind is TaskKind.BATCH_INFERENCE:
        return {"result_dataset_id": f"ds-result-{number}", "rows": script.rows}
    if ref.kind is TaskKind.EVALUATION:
        return {
            "models": {
                vid: {"metrics": {"accuracy": 0.9}, "samples": script.rows}
                for vid in params["model_version_ids"]
            }
        }
    if ref.kind is TaskKind.COMPRESSION:
        return {
            "version_id": f"amv-comp-{number}",
            "model_id": "am-1",
            "size_bytes": 300,
            "scheme": params.get("weight") or "sparse-2:4",
        }
    if ref.kind is not TaskKind.SERVICE:  # a kind the fake knows no result for (fine-tuning): its checkpoints
        return {"task_id": ref.task_id, "job_id": params.get("job_id"), "checkpoints": [{"step": 1}]}
    return {
        "service_id": f"svc-{number}",
        "url_suffix": params["url_suffix"],
        "url": f"http://fake/chat/{params['url_suffix']}",
        "replicas": params["replicas"],
        "resource_type": params.get("resource_type"),
        "expires_at": "2030-01-01T00:00:00Z" if params["billing"]["payment"] == "prepaid" else None,
    }


class ClosingFake(FakePlatform):
    """The fake platform with the close() that the CLI calls on the client it opened."""

    closed = False

    def close(self) -> None:
        self.closed = True
