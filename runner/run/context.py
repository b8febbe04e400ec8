"""A stage's run: the executor's implementation of ``StageContext``, and where exactly-once lives.

Each transition is recorded before the next step, so a crash anywhere leaves a state a resumed run can use:

    pending (fingerprint, attempt) -> intent {kind, name} -> create -> submitted {task} -> running -> done

On resume, a recorded task is re-attached; an intent without a task is looked up by its deterministic
name
(the crash fell between "create" and "record") and created only if the platform has no such task. A retry
after a failure keeps a task that succeeded (a service whose smoke test failed is not deployed twice).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner import content_hash
from runner.errors import StageError
from runner.platform.polling import Schedule
from runner.platform.protocol import Dataset, Platform, TaskInfo, TaskKind, TaskRef, TaskRequest, TaskStatus
from runner.platform.registry import PollPolicy
from runner.state.file import StageRecord, StageStatus


class Interrupted(Exception):
    """The run is stopping (Ctrl-C): leave the stage as recorded so that a re-run re-attaches."""


REMEMBERED = "kept:"  # intent keys a stage keeps with ``remember``, never ids ``prepare_task`` gave


def task_name(pipeline: str, stage_id: str, fingerprint: str, attempt: int) -> str:
    """The deterministic name a task is created under (and found again by): stable per attempt.

    Qianfan takes names of 2 to 20 characters for batch inference and services [B2][S1], so the name is a
    short slug of the stage plus a digest of the full intent (``intent_key``), which goes into the task's
    ``description`` where a person can read it.
    """
    digest = content_hash.of_text(intent_key(pipeline, stage_id, fingerprint, attempt))
    slug = re.sub(r"[^a-z0-9]", "", stage_id.lower())[:6] or "stage"
    return f"qf-{slug}-{digest[:10]}"


def intent_key(pipeline: str, stage_id: str, fingerprint: str, attempt: int) -> str:
    """Everything a task name stands for, written into the task's description."""
    return f"qfrun {pipeline}/{stage_id} fingerprint {fingerprint[:16]} attempt {attempt}"


class StageRun:
    """One attempt of one stage: what ``StageType.run`` sees as its context."""

    def __init__(
        self,
        *,
        stage_id: str,
        pipeline: str,
        record: StageRecord,
        previous: StageRecord | None,
        platform: Platform,
        save: Callable[[str, StageRecord, bool], None],
        outputs: Callable[[str], Mapping[str, Any]],
        datasets: Callable[[str, bool], Dataset],
        log: Callable[[str, str], None],
        progress: Callable[[str, int | None, int | None, Mapping[str, float]], None],
        stop: threading.Event,
        poll: PollPolicy,
        timeout_minutes: int | None,
        folder: Path,
    ) -> None:
        self._folder = folder
        self._stage_id = stage_id
        self._pipeline = pipeline
        self.record = record
        self._previous = previous
        self._platform = platform
        self._save = save
        self._outputs = outputs
        self._datasets = datasets
        self._log = log
        self._progress = progress
        self._stop = stop
        self._poll = poll
        self._deadline = time.monotonic() + timeout_minutes * 60 if timeout_minutes else None
        self._timeout_minutes = timeout_minutes
        self._task_used = False

    # -- StageContext --------------------------------------------------------------------------------
    @property
    def stage_id(self) -> str:
        return self._stage_id

    @property
    def platform(self) -> Platform:
        return self._platform

    @property
    def pipeline(self) -> str:
        return self._pipeline

    def upstream_outputs(self, stage_id: str) -> Mapping[str, Any]:
        return self._outputs(stage_id)

    def dataset(self, dataset_id: str, *, version: bool = True) -> Dataset:
        return self._datasets(dataset_id, version)

    def log(self, message: str) -> None:
        self._log(self._stage_id, message)

    def local_path(self, path: str) -> str:
        return str((self._folder / path).resolve())

    def remembered(self, key: str) -> str:
        return (self.record.intent or {}).get(REMEMBERED + key, "")

    def remember(self, key: str, value: str) -> None:
        self.update(intent={**(self.record.intent or {}), REMEMBERED + key: value})

    def run_task(
        self,
        kind: TaskKind,
        params: Mapping[str, Any],
        on_waiting: Callable[[TaskInfo], None] | None = None,
    ) -> TaskInfo:
        if self._task_used:
            raise StageError("a stage creates at most one platform task")  # a bug in a stage module
        self._task_used = True
        ref = self._attach(kind) or self._create(kind, params)
        return self._wait(ref, on_waiting)

    # -- exactly once --------------------------------------------------------------------------------
    def _attach(self, kind: TaskKind) -> TaskRef | None:
        record = self.record
        if record.task and record.task.get("kind") == kind.value:
            self.log(f"re-attaching to task {record.task['task_id']}")
            return _ref(record.task)
        if record.intent and record.intent.get("kind") == kind.value:
            found = self._platform.find_task(kind, record.intent["name"], _prepared(record.intent))
            if found is not None:
                self.log(f"found task {found.task_id} created before the last run stopped")
                self.update(status=StageStatus.SUBMITTED, task=_task(found))
                return found
            return None
        previous = self._previous
        if (
            previous
            and previous.status is StageStatus.FAILED
            and previous.task
            and previous.fingerprint == record.fingerprint
        ):
            if previous.task.get("kind") == kind.value:
                ref = _ref(previous.task)
                status = self._platform.describe_task(ref).status
                if status in (
                    TaskStatus.SUCCEEDED,
                    TaskStatus.RUNNING,
                    TaskStatus.PENDING,
                    TaskStatus.AWAITING_SCORES,
                ):
                    self.log(
                        f"reusing task {ref.task_id} of attempt {previous.attempt}, which is {status.value}"
                    )
                    self.update(status=StageStatus.SUBMITTED, task=_task(ref))
                    return ref
        return None

    def _create(self, kind: TaskKind, params: Mapping[str, Any]) -> TaskRef:
        name = (self.record.intent or {}).get("name") or task_name(
            self._pipeline, self._stage_id, self.record.fingerprint, self.record.attempt
        )
        self.update(intent={**(self.record.intent or {}), "kind": kind.value, "name": name})
        key = intent_key(self._pipeline, self._stage_id, self.record.fingerprint, self.record.attempt)
        request = TaskRequest(kind, name, {"description": key, **params})
        prepared = _prepared(self.record.intent or {})
        if not prepared:
            # What the task is created inside (a fine-tuning job), recorded before the task's create: a crash
            # between the two finds this parent again by the name instead of creating a second one.
            prepared = dict(self._platform.prepare_task(request))
            if prepared:
                self.update(intent={**(self.record.intent or {}), **prepared})
                self.log(f"prepared {', '.join(f'{k} {v}' for k, v in sorted(prepared.items()))}")
        if prepared:
            request = TaskRequest(kind, name, {**request.params, **prepared})
            found = self._platform.find_task(kind, name, prepared)
            if found is not None:  # the parent was made earlier and already holds this intent's task
                self.log(f"found task {found.task_id} created before the last run stopped")
                self.update(status=StageStatus.SUBMITTED, task=_task(found))
                return found
        ref = self._platform.create_task(request)
        self.update(status=StageStatus.SUBMITTED, task=_task(ref))
        self.log(f"created {kind.value.replace('_', ' ')} task {ref.task_id}")
        return ref

    def _wait(self, ref: TaskRef, on_waiting: Callable[[TaskInfo], None] | None) -> TaskInfo:
        # the platform kind's pacing, on the schedule every wait of the client keeps (runner.platform.polling)
        pauses, paused, last_progress = (
            Schedule(self._poll.initial, self._poll.factor, self._poll.maximum),
            0,
            0.0,
        )
        while True:
            info = self._platform.describe_task(ref)
            if info.status is TaskStatus.AWAITING_SCORES:
                # People, not the platform, move the task on: the stage hands in their scores (and polling
                # goes on to the metrics) or raises StageWaiting. No timeout applies: waiting costs nothing.
                if on_waiting is None:
                    raise StageError(
                        f"task {ref.task_id} waits for manual scores, which this stage cannot give"
                    )
                on_waiting(info)
                if self._stop.wait(self._poll.initial):
                    raise Interrupted
                continue
            if info.status is TaskStatus.RUNNING and self.record.status is not StageStatus.RUNNING:
                self.update(status=StageStatus.RUNNING)
            if info.rows_total is not None and (info.rows_done, info.rows_total) != (
                self.record.rows_done,
                self.record.rows_total,
            ):
                # what the task says of itself as it goes (a running loss) rides along, for the user's eyes
                self._progress(self._stage_id, info.rows_done, info.rows_total, info.live)
                now = time.monotonic()
                if info.status.terminal:
                    # The final count rides on the stage's next save (its end, at the latest) instead of a
                    # line of its own: one write fewer a task (issue 17, P3), and a kill before that save
                    # re-attaches to the finished task and counts again.
                    self.record = replace(self.record, rows_done=info.rows_done, rows_total=info.rows_total)
                elif now - last_progress >= self._poll.progress_every:
                    self.update(rows_done=info.rows_done, rows_total=info.rows_total)
                    last_progress = now
            if info.status is TaskStatus.SUCCEEDED:
                return info
            if info.status.terminal:
                why = f": {info.message}" if info.message else ""
                raise StageError(f"task {ref.task_id} {info.status.value}{why}")
            if self._deadline is not None and time.monotonic() >= self._deadline:
                self._platform.cancel_task(ref)
                raise StageError(
                    f"task {ref.task_id} did not finish within timeout_minutes ({self._timeout_minutes}); "
                    "it was cancelled"
                )
            if self._stop.wait(pauses(paused)):
                raise Interrupted
            paused += 1

    def update(self, **changes: Any) -> None:
        """Change the record and save it before going on.

        Every transition is written at once (a killed qfrun keeps it); it is fsync'd — durable across a
        machine crash — only where exactly-once depends on it: the intent, recorded before the task is created
        (a task id lost in a crash is found again by the intent's name), and the stage's end — waiting for
        people included, where the run ends too.
        """
        self.record = replace(self.record, **changes)
        ended = self.record.status.terminal or self.record.status is StageStatus.WAITING
        self._save(self._stage_id, self.record, "intent" in changes or ended)


def _prepared(intent: Mapping[str, str]) -> dict[str, str]:
    """The ids ``prepare_task`` gave, kept in the intent next to its kind and name."""
    return {
        key: value
        for key, value in intent.items()
        if key not in ("kind", "name") and not key.startswith(REMEMBERED)
    }


def _ref(task: Mapping[str, str]) -> TaskRef:
    return TaskRef(TaskKind(task["kind"]), task["task_id"], task.get("name", ""), task.get("instance_id", ""))


def _task(ref: TaskRef) -> dict[str, str]:
    task = {"kind": ref.kind.value, "task_id": ref.task_id, "name": ref.name}
    if ref.instance_id:  # only services have one; older state files simply lack the key
        task["instance_id"] = ref.instance_id
    return task
