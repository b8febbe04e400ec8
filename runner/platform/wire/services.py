"""Services [S1]-[S6]: CreateService, DescribeService(s) and ReleaseComputeUnit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.platform.protocol import ServiceState, TaskKind, TaskRef, TaskRequest
from runner.platform.wire.fields import WireError, obj, opt_int, opt_str, req_str
from runner.platform.wire.kinds import KindApi, register, status_of
from runner.platform.wire.statuses import FAILED, PENDING, RUNNING, STOPPED, SUCCEEDED

SERVICE_RELEASE_ROUTE = "serviceresources"  # ReleaseComputeUnit {serviceId, instanceId} -> true [S5]
_CHARGE_TYPES = {"computing_unit": "ComputingUnit", "tokens": "Tokens"}


def service_description(intent: str) -> str:
    """What qfrun writes into a service's ``description`` and later matches exactly to find it again.

    A service's ``name`` is the user's (2-20 characters, shown in the console), so the full intent key, which
    would not fit, goes here.
    """
    return f"qfrun task {intent}"


def service_create_body(request: TaskRequest, model_set_id: str) -> dict[str, Any]:
    """CreateService exactly as [S1]: buy compute by resource type, paid by the month or postpaid."""
    p = request.params
    billing_spec = p["billing"]
    if billing_spec["payment"] == "prepaid":
        billing: dict[str, Any] = {
            "paymentTiming": "Prepaid",
            "reservation": {"reservationTimeUnit": "Month", "reservationLength": billing_spec["months"]},
        }
    else:
        billing = {"paymentTiming": "Postpaid", "chargeType": _CHARGE_TYPES[billing_spec["charge"]]}
    body: dict[str, Any] = {
        "modelSetId": model_set_id,
        "modelId": p["model_version_id"],
        "name": p["name"],
        "description": service_description(request.name),
        "urlSuffix": p["url_suffix"],
    }
    # resourceConfig is required when buying compute units; a service postpaid by tokens may leave it out.
    if p.get("resource_type"):
        resources: dict[str, Any] = {"type": p["resource_type"]}
        if p.get("region"):
            resources["region"] = p["region"]
        if p.get("qps") is not None:
            resources["qps"] = p["qps"]
        resources["replicasCount"] = p.get("replicas", 1)
        body["resourceConfig"] = resources
    body["billing"] = billing
    return body


def service_instance_id(result: Any) -> str:
    """CreateService's ``result.instanceId`` (the compute to release later); '' when it is not there."""
    return opt_str(obj(result, "result"), "instanceId")


def service_outcome(data: Mapping[str, Any]) -> dict[str, Any]:
    """A DescribeService result [S2] as the deploy stage's values.

    Qianfan documents replicas and type under ``resourceConfig`` and no ``urlSuffix``/``expireTime`` at the
    top level; both are read when present (the local platform adds them), the suffix otherwise from ``url``.
    """
    resources = obj(data.get("resourceConfig") or {}, "result.resourceConfig")
    url = opt_str(data, "url")
    return {
        "service_id": req_str(data, "serviceId"),
        "url_suffix": opt_str(data, "urlSuffix") or url.rstrip("/").rsplit("/", 1)[-1],
        "url": url,
        "replicas": opt_int(resources, "replicasCount", "result.resourceConfig")
        or opt_int(data, "replicasCount"),
        "resource_type": opt_str(resources, "type", "result.resourceConfig") or None,
        "expires_at": opt_str(data, "expireTime") or None,
        "instance_id": opt_str(data, "instanceId") or None,
    }


def service_items(result: Any) -> tuple[list[Mapping[str, Any]], str | None]:
    """One DescribeServices page [S3]: its services and the next marker (None on the last page).

    Paging is ``result.pageInfo`` {marker, maxKeys, isTruncated, nextMarker} [M3][E6][B6]; a flat page (the
    fields beside the list) is read too. The list's name is not captured in Qianfan's pages: ``serviceList``
    is what the SDK reads (python/qianfan/dataset/stress_test/load_runner.py at 6cacf60); a page that names
    it otherwise is read from its only array field.
    """
    data = obj(result, "result")
    items = data.get("serviceList")
    if items is None:
        arrays = [value for value in data.values() if isinstance(value, list)]
        items = arrays[0] if len(arrays) == 1 else []
    if not isinstance(items, list):
        raise WireError(f"the field 'result.serviceList' should be an array, not {type(items).__name__}")
    parsed = [obj(item, f"result.serviceList[{i}]") for i, item in enumerate(items)]
    paging = obj(data.get("pageInfo") or data, "result.pageInfo")
    truncated = paging.get("isTruncated") is True
    next_marker = opt_str(paging, "nextMarker", "result.pageInfo") if truncated else ""
    return parsed, next_marker or None


def release_body(ref: TaskRef) -> dict[str, str]:
    """ReleaseComputeUnit on /v2/serviceresources [S5]: the service and the compute instance it runs on."""
    return {"serviceId": ref.task_id, "instanceId": ref.instance_id}


def released(result: Any) -> None:
    """ReleaseComputeUnit answers ``result: true`` [S5][S6]; anything else means it was not released."""
    if result is not True:
        raise WireError(f"the field 'result' of ReleaseComputeUnit should be true, not {result!r}")


# A service is released, not deleted: the client sends ``cancel`` to SERVICE_RELEASE_ROUTE (release_body) and
# finds a service by the intent in its description (service_description). The list field is not captured in
# Qianfan's pages; ``serviceList`` is what the SDK reads (service_items).
SERVICE = register(
    KindApi(
        kind=TaskKind.SERVICE,
        route="service",
        create="CreateService",
        describe="DescribeService",
        list="DescribeServices",
        cancel="ReleaseComputeUnit",
        request_id_field="serviceId",
        result_id_field="serviceId",
        name_field="name",
        list_field="serviceList",
        list_filter="name",
        list_fixed={},
        status_field="runStatus",
        status_words={
            "New": PENDING,
            "Deploying": RUNNING,
            "Serving": SUCCEEDED,
            "Failed": FAILED,
            "Stopped": STOPPED,
        },
        create_body=lambda request, model_set_id, local: service_create_body(request, model_set_id),
        outcome=lambda data, status, report: service_outcome(data),
        needs_model_set=True,
    )
)


def service_state(item: Mapping[str, Any], where: str) -> ServiceState | None:
    """What a DescribeServices item or a DescribeService result says of a service's life [S2][S3]; None when
    it names no ``runStatus`` (the list's item fields are not captured [S3], so such an item is described)."""
    if item.get("runStatus") in (None, ""):
        return None
    try:
        status = status_of(TaskKind.SERVICE, item)
    except WireError as error:
        raise WireError(str(error).replace("'result.", f"'{where}.", 1)) from None
    why = opt_str(item, "failedReason", where) or opt_str(item, "statusMessage", where)
    return ServiceState(req_str(item, "serviceId", where), status, why)
