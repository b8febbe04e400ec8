"""What every task kind shares on the wire: the create body, the created id and the describe result, each
through the kind's entry (runner.platform.wire.kinds), so no kind is handled by another's branch.

Sources: [B1]-[B7], [E1]-[E5], [C1]-[C4], [S1]-[S3].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.platform.protocol import TaskInfo, TaskKind, TaskRef, TaskRequest
from runner.platform.wire.fields import WireError, obj, opt_int, req_str
from runner.platform.wire.kinds import KIND_API, status_of


def create_body(request: TaskRequest, *, model_set_id: str = "", local: bool = False) -> dict[str, Any]:
    """The body of the create action for ``request``.

    ``model_set_id`` is needed by kinds that name a model set (compression, services); ``local`` adds the
    local platform's documented extensions (fields Qianfan does not take), which are never sent to Qianfan.
    """
    return KIND_API[request.kind].create_body(request, model_set_id, local)


def created_id(kind: TaskKind, result: Any) -> str:
    """The new task's id: a bare string for evaluation [E2] and compression [C2], ``result.taskId`` for
    batch inference [B4], ``result.serviceId`` for a service [S2]."""
    api = KIND_API[kind]
    field = api.result_id_field
    if api.bare_created_id:
        if isinstance(result, str) and result:
            return result
        if isinstance(result, Mapping):  # tolerated: an object naming the id
            return req_str(result, field if field in result else "taskId")
        raise WireError(
            f"the field 'result' should be the new task's id (a string), not {type(result).__name__}"
        )
    return req_str(obj(result, "result"), field)


def task_info(kind: TaskKind, ref: TaskRef, result: Any, report: Any = None) -> TaskInfo:
    """A describe result (and, for a kind with a report, its report) as a ``TaskInfo``."""
    api = KIND_API[kind]
    data = obj(result, "result")
    status = status_of(kind, data)
    done = opt_int(data, "progress")
    total = opt_int(data, "totalCount") or None  # (name not captured [B5]); 0 means "not known yet"
    return TaskInfo(
        ref,
        status,
        rows_done=done,
        rows_total=total,
        message=api.message(data, status),
        result=api.outcome(data, status, report),
        live=api.live(data, status),
    )
