"""The local platform's task kinds, one module each: what a kind's console actions do, how a stored task
becomes an engine job, and what the job's result registers.

A ``LocalKind`` is the server half of a task kind; its client half is the kind's wire entry
(``runner.platform.wire.kinds.KindApi``), whose route and action names the handlers answer, so the two cannot
drift apart. The console's route table is built from this registry (``console_routes``), the task workers
prepare, run and finish jobs through it, and importing ``runner.local.kinds`` fails for a task kind that runs
as a job here and has no entry. docs/adding-a-stage-type.md walks through adding one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.local.api_common import Handler
from runner.local.home import Home
from runner.local.jobspec import Prepared
from runner.local.rows import TaskRow
from runner.local.store import Store
from runner.platform import wire
from runner.platform.protocol import TaskKind

Prepare = Callable[[Home, Store, TaskRow, Path], Prepared]
Finish = Callable[[Home, Store, TaskRow, Prepared, Mapping[str, Any]], dict[str, Any]]


def keep_outcome(
    home: Home, store: Store, task: TaskRow, prepared: Prepared, outcome: Mapping[str, Any]
) -> dict[str, Any]:
    """The job's result is the task's result (nothing to register)."""
    return dict(outcome)


@dataclass(frozen=True)
class LocalKind:
    """The local platform's half of one task kind."""

    api: wire.KindApi  # the route, action names and status words the handlers answer with
    id_prefix: str  # task ids look like Qianfan's (``infer-``, ``ame-``, ``amva-``)
    noun: str  # "batch inference task", in messages
    actions: Mapping[str, Handler]  # every action of the kind on ``/v2/{api.route}``
    prepare: Prepare  # a stored task -> the engine job's spec (JobSetupError when it cannot run)
    engine: str  # ``module:function`` the job process runs: ``(params, progress_file) -> result``
    finish: Finish = keep_outcome  # the job's result -> the task's result, registering what it made
    # After a platform restart a running task fails, unless the kind can continue it: ``resume`` folds
    # what the dead job wrote into the task's folder and says how many rows are done.
    resume: Callable[[Path], int] | None = None
    # Modules the job imports that the warm worker (runner.local.zygote) imports before forking it, so that
    # later jobs of the kind start with them loaded; a name that fails to import there is the job's to report.
    warm: tuple[str, ...] = ()

    @property
    def kind(self) -> TaskKind:
        return self.api.kind

    @property
    def store_kind(self) -> str:
        """The kind as the store's ``tasks.kind`` column holds it."""
        return self.api.kind.value


LOCAL_KINDS: dict[str, LocalKind] = {}  # by store kind
# Kinds served elsewhere, not as engine jobs: a service is replica processes (runner.local.services).
NOT_JOBS = frozenset({TaskKind.SERVICE})


def register(local: LocalKind) -> LocalKind:
    if LOCAL_KINDS.get(local.store_kind, local) is not local:
        raise ValueError(f"the task kind {local.store_kind!r} has a local entry already")
    LOCAL_KINDS[local.store_kind] = local
    return local


def unregister(kind: TaskKind) -> None:
    """Remove a kind (a test that adds one for a test leaves no trace)."""
    LOCAL_KINDS.pop(kind.value, None)


def check_complete() -> None:
    """Every task kind the client can create is one the platform runs (called at import)."""
    missing = [k.value for k in wire.KIND_API if k not in NOT_JOBS and k.value not in LOCAL_KINDS]
    if missing:
        raise ImportError(f"the task kinds {', '.join(missing)} have no module under runner.local.kinds")


def console_routes(base: Mapping[str, Mapping[str, Handler]]) -> dict[str, dict[str, Handler]]:
    """``base`` (the routes of models, datasets and services) with every kind's actions on its route; an
    action two tables both claim is a programming error, found when the app is built."""
    routes = {route: dict(actions) for route, actions in base.items()}
    for local in LOCAL_KINDS.values():
        table = routes.setdefault(local.api.route, {})
        taken = sorted(set(table) & set(local.actions))
        if taken:
            raise ValueError(f"/v2/{local.api.route} has the actions {', '.join(taken)} twice")
        table.update(local.actions)
    return routes


def wire_status(task: TaskRow) -> str:
    """The documented status word of a stored task (``pending`` -> ``Queuing`` ...)."""
    from runner.platform.protocol import TaskStatus

    return wire.KIND_API[TaskKind(task.kind)].status_word(TaskStatus(task.status))
