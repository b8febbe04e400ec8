"""Task actions: finding a task by its deterministic name, preparing what it is created in (a fine-tuning
job [F1]), creating it exactly once, describing it (with an evaluation's report once it succeeded) and
stopping it. A service is a task here too; its own lookups are ``services``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from runner.errors import PlatformStatusError
from runner.platform import wire
from runner.platform.actions.creates import create_once
from runner.platform.actions.models import ModelActions
from runner.platform.actions.services import ServiceActions
from runner.platform.actions.session import Session, page_body, page_of
from runner.platform.bos import batch_output_folder
from runner.platform.http import Reply
from runner.platform.protocol import TaskInfo, TaskKind, TaskRef, TaskRequest, TaskStatus

log = logging.getLogger(__name__)


class TaskActions:
    def __init__(self, session: Session, models: ModelActions, services: ServiceActions) -> None:
        self._session = session
        self._models = models
        self._services = services

    def find(self, kind: TaskKind, name: str, within: Mapping[str, str] | None = None) -> TaskRef | None:
        """The task named ``name``, looked for on every page of the kind's list.

        Qianfan's lists filter by name fuzzily or not at all [B6][C3][E3], so the lookup pages through to the
        end and matches the name exactly; a task on page 2 is found like one on page 1. A kind created inside
        a parent (a fine-tuning task in its job [F2]) is looked for among the children of the parent that
        ``within`` names; without one, no such task was created.
        """
        if kind is TaskKind.SERVICE:
            return self._services.find(name)
        api = wire.KIND_API[kind]
        if api.parent is not None:
            parent_id = (within or {}).get(api.parent.param)
            return self._find_child(kind, name, parent_id) if parent_id else None
        # DescribeEvalTasks lists automatic or manual evaluations, never both [E3]: a manual one is looked
        # for too, or a crash before its id was recorded would create it a second time.
        fixed_sets = (
            [{**api.list_fixed, "evalType": t} for t in wire.EVAL_TYPES]
            if kind is TaskKind.EVALUATION
            else [dict(api.list_fixed)]
        )
        for fixed in fixed_sets:
            found = self._first_listed(kind, name, fixed, lambda item: item.get(api.name_field) == name)
            if found is not None:
                return found
        return None

    def _find_child(self, kind: TaskKind, name: str, parent_id: str) -> TaskRef | None:
        """The task in the parent ``parent_id``: the one of that name where the list names its tasks (the
        local platform), else the first one, since a parent is made for one intent only."""
        api = wire.KIND_API[kind]
        assert api.parent is not None
        fixed = {**api.list_fixed, api.parent.child_filter: parent_id}
        return self._first_listed(kind, name, fixed, lambda item: item.get(api.name_field, name) == name)

    def _first_listed(
        self,
        kind: TaskKind,
        name: str,
        fixed: Mapping[str, Any],
        matches: Callable[[Mapping[str, Any]], bool],
    ) -> TaskRef | None:
        """The first task of the kind's list (its ``fixed`` filters applied) that ``matches``."""
        api = wire.KIND_API[kind]
        for reply, item in self._session.every_item(
            api.route,
            api.list,
            lambda marker, size: wire.list_body(kind, name, marker=marker, max_keys=size, fixed=fixed),
            lambda result, size: wire.list_page(kind, result, size),
            f"the task {name}",
        ):
            if matches(item):
                task_id = self._session.parse(
                    reply, wire.req_str, item, api.result_id_field, f"result.{api.list_field}[]"
                )
                return TaskRef(kind, task_id, name)
        return None

    def prepare(self, request: TaskRequest) -> dict[str, str]:
        """What a task is created inside, found by the task's name or created under it: ``{param: id}`` (a
        fine-tuning job [F1]); ``{}`` for a kind created on its own. The caller records the ids before the
        task is created, so a second call for the same request finds the same parent."""
        parent = wire.KIND_API[request.kind].parent
        if parent is None:
            return {}
        session = self._session
        api = wire.KIND_API[request.kind]

        def find() -> str | None:
            for reply, item in session.every_item(
                api.route,
                parent.list,
                page_body,
                page_of(parent.list_field),
                f"the {parent.create.removeprefix('Create')} {request.name}",
            ):
                if item.get(parent.name_field) == request.name:
                    return session.parse(
                        reply, wire.req_str, item, parent.id_field, f"result.{parent.list_field}[]"
                    )
            return None

        body = parent.create_body(request, session.local)
        found = find()
        if found is None:
            found = create_once(
                session,
                api.route,
                parent.create,
                body,
                created=lambda reply: session.parse(
                    reply,
                    lambda result: wire.req_str(wire.obj(result, "result"), parent.id_field),
                    reply.body["result"],
                ),
                find=find,
                looking=f"looking {request.name} up",
            )
        return {parent.param: found}

    def create(self, request: TaskRequest) -> TaskRef:
        """CreateX once: a lost answer is looked up by the task's name before it is sent again, a taken name
        adopts the task that holds it, and a create refused because the account's task slots are full
        waits for one (runner.platform.actions.creates)."""
        session = self._session
        api = wire.KIND_API[request.kind]
        model_set_id = ""
        if api.needs_model_set:
            model_set_id = self._models.describe_version(str(request.params["model_version_id"])).model_id
        if request.kind is TaskKind.BATCH_INFERENCE and request.params.get("input_bos_uri"):
            if not request.params.get("output_bos_uri"):
                output = batch_output_folder(session.settings)  # no request: the folder comes from settings
                request = replace(request, params={**request.params, "output_bos_uri": output})
        body = wire.create_body(request, model_set_id=model_set_id, local=session.local)

        def created(reply: Reply) -> TaskRef:
            task_id = session.parse(reply, wire.created_id, request.kind, reply.body["result"])
            instance = ""
            if request.kind is TaskKind.SERVICE:
                instance = session.parse(reply, wire.service_instance_id, reply.body["result"])
            return TaskRef(request.kind, task_id, request.name, instance)

        def adopted(refused: PlatformStatusError, found: TaskRef) -> None:
            # qfrun's names are deterministic digests of the stage's intent, so a task of that name is the
            # one this create wanted.
            log.warning("%s; adopting the task %s of that name.", refused, found.task_id)

        return create_once(
            session,
            api.route,
            api.create,
            body,
            created=created,
            find=lambda: self.find(request.kind, request.name),
            looking=f"looking the task up by its name {request.name}",
            adopted=adopted,
            wait_for_a_slot=request.name,
        )

    def describe(self, ref: TaskRef) -> TaskInfo:
        session = self._session
        api = wire.KIND_API[ref.kind]
        reply = session.http.console(api.route, api.describe, {api.request_id_field: ref.task_id})
        result = reply.body["result"]
        status = session.parse(reply, lambda: wire.status_of(ref.kind, wire.obj(result, "result")))
        if api.report_action and status is TaskStatus.SUCCEEDED:
            report = session.http.console(api.route, api.report_action, {"taskId": ref.task_id})
            return session.parse(report, wire.task_info, ref.kind, ref, result, report.body["result"])
        return session.parse(reply, wire.task_info, ref.kind, ref, result)

    def cancel(self, ref: TaskRef) -> None:
        """Stop a task: StopBatchInferenceTask answers a bool [B7], StopEvalTask ``{}`` [E5] and
        CancelModelCompTask no ``result`` at all [C4]; a service's compute unit is released [S5]."""
        if ref.kind is TaskKind.SERVICE:
            self._services.release(ref, self.describe)
            return
        api = wire.KIND_API[ref.kind]
        reply = self._session.http.console(
            api.route, api.cancel, {api.request_id_field: ref.task_id}, result_required=False
        )
        if reply.body.get("result") is False:
            raise self._session.refused(
                f"{api.cancel} answered false for the task {ref.task_id}: the platform did not stop it"
            )
