"""Service actions: finding the service made for an intent by its description, the state of recorded
services [S3], and releasing one's compute unit [S5]."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from runner.errors import PlatformNotFound
from runner.platform import wire
from runner.platform.actions.session import Session, page_body
from runner.platform.protocol import ServiceState, TaskInfo, TaskKind, TaskRef

LISTED = "result.serviceList[]"


class ServiceActions:
    def __init__(self, session: Session) -> None:
        self._session = session

    def find(self, intent: str) -> TaskRef | None:
        """The service created for ``intent``: paged to the end, matched exactly on its description.

        A service's ``name`` is the user's and DescribeServices filters names fuzzily [S3], so the intent
        key in ``description`` is what identifies it; a list item without a description is described.
        """
        session, api = self._session, _api()
        wanted = wire.service_description(intent)
        for reply, item in session.every_item(
            api.route, api.list, page_body, _services, f"the service of {intent}"
        ):
            service_id = session.parse(reply, wire.req_str, item, api.result_id_field, LISTED)
            if "description" not in item:
                detail = session.http.console(api.route, api.describe, {api.request_id_field: service_id})
                item = session.parse(detail, wire.obj, detail.body["result"], "result")
            if item.get("description") == wanted:
                instance = session.parse(reply, wire.opt_str, item, "instanceId", LISTED)
                return TaskRef(TaskKind.SERVICE, service_id, intent, instance)
        return None

    def states(self, service_ids: Collection[str]) -> dict[str, ServiceState]:
        """The state of each of ``service_ids`` from one paged DescribeServices [S3].

        A service the list does not name, or names without a ``runStatus`` (the list's item fields are not
        captured [S3]), is described once: only a DescribeService that answers "not found" makes it gone, so
        a list that leaves a service out (another ``protocolVersion``, say) never has it deployed twice.
        """
        session, api = self._session, _api()
        wanted = set(service_ids)
        if not wanted:
            return {}
        found: dict[str, ServiceState] = {}
        for reply, item in session.every_item(
            api.route, api.list, page_body, _services, "the recorded services"
        ):
            service_id = session.parse(reply, wire.req_str, item, api.result_id_field, LISTED)
            if service_id in wanted:
                state = session.parse(reply, wire.service_state, item, LISTED)
                if state is not None:
                    found[service_id] = state
        for service_id in sorted(wanted - set(found)):
            try:
                reply = session.http.console(api.route, api.describe, {api.request_id_field: service_id})
            except PlatformNotFound:
                continue  # gone: released and forgotten, or deleted in the console
            state = session.parse(
                reply, wire.service_state, wire.obj(reply.body["result"], "result"), "result"
            )
            if state is None:
                raise session.http.protocol_error(reply, "the field 'result.runStatus' is missing")
            found[service_id] = state
        return found

    def release(self, ref: TaskRef, describe: Callable[[TaskRef], TaskInfo]) -> None:
        """ReleaseComputeUnit [S5]; the instance id comes from the create, else from ``describe``
        (DescribeService)."""
        session, api = self._session, _api()
        if not ref.instance_id:
            info = describe(ref)
            instance = str(info.result.get("instance_id") or "") if info.result else ""
            if not instance:
                raise session.refused(
                    f"the service {ref.task_id} cannot be released: the platform did not say which compute "
                    "instance it runs on; release it in Qianfan's console"
                )
            ref = TaskRef(ref.kind, ref.task_id, ref.name, instance)
        reply = session.http.console(wire.SERVICE_RELEASE_ROUTE, api.cancel, wire.release_body(ref))
        session.parse(reply, wire.released, reply.body["result"])


def _api() -> wire.KindApi:
    return wire.KIND_API[TaskKind.SERVICE]


def _services(result: Any, size: int) -> tuple[list[Mapping[str, Any]], str | None]:
    """A DescribeServices page (its own reader: the list's name is not captured [S3])."""
    return wire.service_items(result)
