"""Background task workers: each platform task runs as one engine job in a subprocess.

Why subprocesses: the model runtime (torch) stays out of the server process, a crashing job cannot take the
platform down, and a job can be stopped by a signal. A semaphore lets at most ``max_jobs`` heavy jobs run at
once (1 by default: these machines have 2 cores). The worker copies the job's progress file into the store
while it runs, and its result or error when it exits. The process is forked from the warm worker
(runner.local.warm) when it can be, which saves each job the seconds of importing torch.

After a platform restart, ``recover`` finds the tasks the dead platform left behind: pending ones are queued
again, a batch inference continues after the last row it wrote, and any other running task is marked failed
with the reason, never silently re-run from zero.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.atomic import write_json
from runner.local import jobspec
from runner.local.home import Home
from runner.local.kinds import LOCAL_KINDS, LocalKind
from runner.local.processes import ChildProcess, kill_orphan, terminate_group
from runner.local.rows import AWAITING_SCORES, FAILED, PENDING, RUNNING, STOPPED, SUCCEEDED, TaskRow
from runner.local.store import Store
from runner.local.warm import launch
from runner.platform.settings import ENV_LOCAL_TOKEN

log = logging.getLogger(__name__)

JOB_MODULE = "runner.local.engine.job"
INTERRUPTED = "The task was interrupted by a platform restart; create it again under a new name to re-run it."
POLL_SECONDS = 0.25


@dataclass
class _Running:
    process: ChildProcess | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class TaskRunner:
    """Runs the store's tasks as engine jobs on background threads."""

    def __init__(
        self,
        home: Home,
        store: Store,
        *,
        max_jobs: int = 1,
        python: str | None = None,
        replica_token: str = "",
    ) -> None:
        self.home = home
        self.store = store
        self.python = python or sys.executable
        self.replica_token = replica_token
        self._slots = threading.BoundedSemaphore(max_jobs)
        self._jobs: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()

    # -- public --------------------------------------------------------------------------------------------
    def submit(self, task_id: str) -> None:
        """Queue a pending (or resumable running) task; it starts when a job slot is free."""
        with self._lock:
            if self._closing.is_set() or task_id in self._jobs:
                return
            job = _Running()
            job.thread = threading.Thread(target=self._run, args=(task_id, job), name=f"task-{task_id}")
            self._jobs[task_id] = job
        job.thread.start()

    def cancel(self, task_id: str) -> bool:
        """Stop a pending or running task; returns whether it was still active."""
        stopped = self.store.update_task(
            task_id, only_if=(PENDING, RUNNING), status=STOPPED, message="The task was stopped on request."
        )
        with self._lock:
            job = self._jobs.get(task_id)
        if job is not None:
            job.cancelled.set()
            # A job being started holds the lock while the warm worker finishes its imports (seconds): the
            # caller does not wait for that; the starting thread sees the flag once its child exists.
            if job.lock.acquire(blocking=False):
                try:
                    if job.process is not None:
                        terminate_group(job.process, wait=False)
                finally:
                    job.lock.release()
        return stopped

    def recover(self) -> None:
        """Take over what a previous platform process left: queue, resume or fail its active tasks."""
        for task in self.store.tasks(statuses=(PENDING, RUNNING)):
            if task.worker_pid is not None:
                kill_orphan(task.worker_pid, JOB_MODULE, task.id)
            if task.status == PENDING:
                self.submit(task.id)
            elif (kind := LOCAL_KINDS.get(task.kind)) is not None and kind.resume is not None:
                done = kind.resume(self.home.task_dir(task.id))
                self.store.update_task(
                    task.id,
                    worker_pid=None,
                    message=f"Resumed after a platform restart at row {done}.",
                )
                self.submit(task.id)
            else:
                self.store.update_task(task.id, status=FAILED, worker_pid=None, message=INTERRUPTED)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every job process and wait for the threads; running tasks stay running for ``recover``."""
        self._closing.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            with job.lock:
                if job.process is not None:
                    terminate_group(job.process, wait=False)
        deadline = time.monotonic() + timeout
        for job in jobs:
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))

    def active(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    # -- one task ------------------------------------------------------------------------------------------
    def _run(self, task_id: str, job: _Running) -> None:
        try:
            with self._slots:
                if not self._closing.is_set():
                    self._run_in_slot(task_id, job)
        except Exception as exc:  # a worker thread must record, never lose, a failure
            log.exception("task %s failed inside the platform", task_id)
            self.store.update_task(
                task_id,
                only_if=(PENDING, RUNNING),
                status=FAILED,
                message=f"The local platform failed while running task {task_id}: {exc}",
            )
        finally:
            with self._lock:
                self._jobs.pop(task_id, None)

    def _run_in_slot(self, task_id: str, job: _Running) -> None:
        task = self.store.task(task_id)
        if task is None or task.status not in (PENDING, RUNNING) or job.cancelled.is_set():
            return
        workdir = self.home.task_dir(task_id)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            prepared = _kind(task).prepare(self.home, self.store, task, workdir)
        except jobspec.JobSetupError as exc:
            self.store.update_task(task_id, only_if=(PENDING, RUNNING), status=FAILED, message=str(exc))
            return
        if not self.store.update_task(task_id, only_if=(PENDING, RUNNING), status=RUNNING):
            return
        if "total" in prepared.extra:
            self.store.update_task(
                task_id, progress_done=prepared.offset, progress_total=prepared.extra["total"]
            )
        if prepared.spec is None:  # nothing left to compute (a resumed task whose rows were all written)
            self._finish(task, prepared, {})
            return
        spec_path = workdir / "spec.json"
        write_json(spec_path, prepared.spec)
        progress_path = Path(prepared.spec["progress_file"])
        progress_path.unlink(missing_ok=True)
        (workdir / "result.json").unlink(missing_ok=True)
        with job.lock:
            if job.cancelled.is_set() or self._closing.is_set():
                return
            with (workdir / "job.log").open("ab") as job_log:
                job.process = launch(
                    self.python,
                    JOB_MODULE,
                    [str(spec_path)],
                    env={**job_env(), **self._judge_env(prepared.spec)},
                    worker_env=job_env(),
                    stdout=job_log,
                    stderr=job_log,
                    warm=_kind(task).warm,
                )
            if job.cancelled.is_set():  # stopped while it was being started (see cancel)
                terminate_group(job.process, wait=False)
        process = job.process
        self.store.update_task(task_id, worker_pid=process.pid)
        last: tuple[int, int] | None = None
        while process.poll() is None:
            time.sleep(POLL_SECONDS)
            last = self._copy_progress(task_id, progress_path, prepared.offset, last)
        self._copy_progress(task_id, progress_path, prepared.offset, last)
        returncode = process.wait()  # it has ended: poll() said so
        if self._closing.is_set() and not job.cancelled.is_set():
            return  # the platform is stopping: leave the task running so the next start can recover it
        if job.cancelled.is_set():
            self.store.update_task(task_id, worker_pid=None)
            return
        outcome = _read_json(workdir / "result.json")
        if returncode == 0 and isinstance(outcome, dict) and "error" not in outcome:
            self._finish(task, prepared, outcome)
        else:
            message = _failure_message(task, returncode, outcome, workdir / "job.log")
            self.store.update_task(
                task_id, only_if=(RUNNING,), status=FAILED, message=message, worker_pid=None
            )

    def _finish(self, task: TaskRow, prepared: jobspec.Prepared, outcome: Mapping[str, Any]) -> None:
        try:
            result = _kind(task).finish(self.home, self.store, task, prepared, outcome)
        except jobspec.JobSetupError as exc:
            self.store.update_task(
                task.id, only_if=(RUNNING,), status=FAILED, message=str(exc), worker_pid=None
            )
            return
        # An evaluation with manual scoring is not done when its answers are: it opens for people to score
        # (Qianfan's RunningWithManualBegin) and finishes when they hand their scores in (api_manual).
        status = AWAITING_SCORES if task.params.get("manual") else SUCCEEDED
        self.store.update_task(
            task.id, only_if=(RUNNING,), status=status, result=result, message="", worker_pid=None
        )

    def _judge_env(self, spec: dict[str, Any]) -> dict[str, str]:
        """The token for a job that asks a deployed service (an LLM judge): replicas require it. Other
        jobs never call a replica or the platform, so they do not get it."""
        evaluators = (spec.get("params") or {}).get("evaluators") or []
        asks = any(isinstance(item, dict) and item.get("judge_url") for item in evaluators)
        return {ENV_LOCAL_TOKEN: self.replica_token} if asks and self.replica_token else {}

    def _copy_progress(
        self, task_id: str, path: Path, offset: int, last: tuple[int, int] | None
    ) -> tuple[int, int] | None:
        progress = _read_json(path)
        if not isinstance(progress, dict):
            return last
        try:
            done, total = int(progress["done"]) + offset, int(progress["total"]) + offset
        except (KeyError, TypeError, ValueError):
            return last
        if (done, total) != last:
            self.store.update_task(task_id, progress_done=done, progress_total=total)
        return done, total


def _kind(task: TaskRow) -> LocalKind:
    kind = LOCAL_KINDS.get(task.kind)
    if kind is None:
        raise jobspec.JobSetupError(
            f"Task {task.id} has kind {task.kind!r}, which the local platform does not run."
        )
    return kind


def job_env() -> dict[str, str]:
    """The environment of engine processes: the platform's, without its token or keys (they never call it)."""
    secret = {ENV_LOCAL_TOKEN, "QFRUN_LOCAL_ACCESS_KEY", "QFRUN_LOCAL_SECRET_KEY"}
    env = {key: value for key, value in os.environ.items() if key not in secret}
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _failure_message(task: TaskRow, returncode: int, outcome: Any, job_log: Path) -> str:
    if isinstance(outcome, dict) and isinstance(outcome.get("error"), str) and outcome["error"].strip():
        return str(outcome["error"]).strip()
    tail = ""
    with contextlib.suppress(OSError):
        lines = [line for line in job_log.read_text(encoding="utf-8", errors="replace").splitlines() if line]
        tail = " | ".join(lines[-3:])
    reason = f"signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
    text = f"The {task.kind} job of task {task.id} ended with {reason} and no result"
    return f"{text}: {tail}" if tail else f"{text}."
