"""What the handlers of every task kind share: idempotent create by name, look-up by id, paged lists, stop,
and the generation parameters the engine takes.

Every create is idempotent by name (a second create with a known name returns the existing task: a local
guarantee, Qianfan documents none), checks every id it names before accepting (an unknown id is a 404, a bad
value a 400), stores the task as pending and hands it to the task runner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runner.local.api_common import Body, Context, found, invalid, page
from runner.local.kinds.registry import LocalKind
from runner.local.rows import DuplicateName, TaskRow, new_id
from runner.vocabulary import INFERENCE_PARAMS


def create_task(ctx: Context, kind: LocalKind, name: str, build: Callable[[], dict[str, Any]]) -> TaskRow:
    """The task named ``name`` of ``kind``: the existing one, or a new one from ``build()``'s params."""
    existing = ctx.store.task_by_name(kind.store_kind, name)
    if existing is not None:
        return existing
    params = build()
    try:
        task = ctx.store.create_task(
            task_id=new_id(kind.id_prefix), kind=kind.store_kind, name=name, params=params
        )
    except DuplicateName:
        again = ctx.store.task_by_name(kind.store_kind, name)
        assert again is not None
        return again
    ctx.runner.submit(task.id)
    return task


def task_of(ctx: Context, kind: LocalKind, task_id: str) -> TaskRow:
    """The task ``task_id`` of ``kind``, or a 404 naming what was looked for."""
    task = ctx.store.task(task_id)
    return found(task if task is not None and task.kind == kind.store_kind else None, kind.noun, task_id)


def inference_params(body: Body, key: str) -> dict[str, Any]:
    params = body.obj(key).data
    for name, value in params.items():
        kinds = INFERENCE_PARAMS.get(name)
        if kinds is None:  # refused here, with the names it takes, rather than by the job minutes later
            known = ", ".join(sorted(INFERENCE_PARAMS))
            raise invalid(f"{body.where}: {key}.{name} is not an inference parameter; use {known}.")
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            raise invalid(f"{body.where}: {key}.{name} must be a {'boolean' if bool in kinds else 'number'}.")
    return dict(params)


def listing(
    ctx: Context,
    kind: LocalKind,
    body: Body,
    keep: Callable[[TaskRow], bool],
    render: Callable[[TaskRow], Any],
) -> Any:
    """One page of the kind's tasks that ``keep`` accepts, each as ``render`` describes it."""
    tasks = [task for task in ctx.store.tasks(kind.store_kind) if keep(task)]
    return page(body, tasks, lambda task: task.id, render, kind.api.list_field)


def stop(ctx: Context, kind: LocalKind, body: Body) -> None:
    ctx.runner.cancel(task_of(ctx, kind, body.text(kind.api.request_id_field)).id)


def failure(task: TaskRow) -> str:
    return task.message if task.status in ("failed", "stopped") else ""
