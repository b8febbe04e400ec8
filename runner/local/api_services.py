"""The service actions of Qianfan's console ([S1]-[S6] of the reference) and the chat paths in front of them.

CreateService buys what Qianfan sells: Prepaid by the month (1 to 12; the service stops when the term
ends) or Postpaid by compute unit or by tokens, on a documented resource type, or deploys on compute units
already bought (``deploymentConfig``). It answers ``{serviceId, instanceId}``; the instance is what
``ReleaseComputeUnit`` releases, on ``/v2/serviceresources`` {serviceId, instanceId} [S5] or
``/v2/computeunit`` {instanceId} [S6]. Names are not unique (Qianfan documents no such rule); a URL suffix
that a live service already answers is refused (409). The Qianfan chat path answers in the v1 shape
(``result``, ``usage``; errors as ``error_code``/``error_msg``) and ``/v1/chat/completions`` in OpenAI's.

Local tolerances, so that the official SDK runs unchanged: ``reservationTimeUnit: "Hour"``, the resource
types DescribeService documents (``GPU-I-2``, ``GPU-I-4``, ``CPU-I-2``), a ``serviceType`` field on create,
and ReleaseComputeUnit on ``/v2/charge`` (where the SDK sends it; ReleaseServiceResource is the legacy name).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from runner.local.api_common import ApiError, Body, Context, found, invalid, not_found, page
from runner.local.api_models import version_or_404
from runner.local.chat_limits import ChatLimitError, check_numbers, check_prompt, check_stop
from runner.local.replica_http import ReplicaClient, ReplicaUnreachable
from runner.local.rows import SERVICE_STOPPED, SERVING, ServiceRow, new_id
from runner.local.services import MONTH_HOURS, hour_seconds, iso
from runner.platform import wire
from runner.platform.protocol import TaskKind

CHAT_PATH = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"
_SUFFIX = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,18}[a-z0-9])$")
RESOURCE_TYPES = (
    "CPU-1-1", "GPU-1-1", "GPU-1-2", "GPU-1-4", "GPU-1-8", "GPU-5-1", "GPU-5-2", "GPU-6-1", "GPU-6-2",
    "GPU-7-1", "GPU-7-2",
)  # fmt: skip
SDK_RESOURCE_TYPES = ("GPU-I-2", "GPU-I-4", "CPU-I-2")  # DescribeService's words; the SDK sends them [S2]
REGIONS = ("bj", "bd")
RUN_STATUSES = tuple(wire.KIND_API[TaskKind.SERVICE].status_words)  # [S2][S3]
CHARGE_TYPES = ("ComputingUnit", "Tokens")
SERVICE_TYPES = ("chat", "completions", "text2image", "image2text")
MAX_REPLICAS = 8  # replicas are processes on this machine
# Words a store written by an earlier qfrun may hold, as Qianfan spells them now [S2].
_LEGACY_STATUS = {"DeployFailed": "Failed", "Expired": SERVICE_STOPPED}


def run_status(service: ServiceRow) -> str:
    return _LEGACY_STATUS.get(service.status, service.status)


def describe(service: ServiceRow, base_url: str = "") -> dict[str, Any]:
    """DescribeService's result [S2], plus the local fields ``urlSuffix``, ``instanceId``, ``expireTime``
    and ``failedReason`` (Qianfan documents none of them at the top level; docs/platform-api.md lists them).
    """
    params = service.params
    resources: dict[str, Any] = {"replicasCount": params.get("replicas", 1)}
    for key, field in (("resource_type", "type"), ("qps", "qps"), ("region", "region")):
        if params.get(key) is not None:
            resources[field] = params[key]
    status = run_status(service)
    return {
        "serviceId": service.id,
        "modelSetId": params.get("model_set_id", ""),
        "modelId": service.model_version_id,
        "name": service.name,
        "description": params.get("description", ""),
        "url": f"{base_url}{CHAT_PATH}{service.endpoint_suffix}",
        "serviceType": "chat",
        "runStatus": status,
        "updateStatus": "None",
        "chargeType": params.get("charge_type", "ComputingUnit"),
        "payType": "Prepay" if params.get("payment") == "Prepaid" else "Postpay",
        "chargeStatus": "Free",  # nothing is charged on this machine
        "resourceConfig": resources,
        "createTime": service.created_at,
        "urlSuffix": service.endpoint_suffix,
        "instanceId": params.get("instance_id", ""),
        "expireTime": service.expires_at or "",
        "failedReason": service.message if status != SERVING else "",
    }


def _service(ctx: Context, service_id: str) -> ServiceRow:
    return found(ctx.store.service(service_id), "service", service_id)


def _name(body: Body) -> str:
    name = body.text("name")
    if not 2 <= len(name) <= 20:
        count = f"{len(name)} character{'' if len(name) == 1 else 's'}"
        raise invalid(f"{body.where}: the name {name!r} has {count}; Qianfan allows 2 to 20.")
    return name


def _suffix(body: Body) -> str:
    suffix = body.text("urlSuffix")
    if not _SUFFIX.match(suffix):
        raise invalid(
            f"{body.where}: the urlSuffix {suffix!r} must be 2 to 20 lower-case letters, digits, '_' or '-', "
            "starting and ending with a letter or digit."
        )
    return suffix


def _qps(body: Body) -> float | None:
    value = body.data.get("qps")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 50:
        raise invalid(
            f"{body.where}: the field 'qps' must be a number above 0 and at most 50, not {value!r}."
        )
    return float(value)


def _billing(body: Body) -> dict[str, Any]:
    """The purchase: payment, charge type and the term in seconds (None: no end) [S1]."""
    billing = body.obj("billing", required=True)
    payment = billing.choice("paymentTiming", ("Prepaid", "Postpaid"))
    if payment == "Prepaid":
        reservation = billing.obj("reservation", required=True)
        # "Month" is the only documented unit; "Hour" is what the SDK may send (a local tolerance).
        unit = reservation.choice("reservationTimeUnit", ("Month", "Hour"))
        if unit == "Month":
            months = reservation.integer("reservationLength", low=1, high=12)
            term = {"months": months, "seconds": months * MONTH_HOURS * hour_seconds()}
        else:
            hours = reservation.integer("reservationLength", low=1, high=12 * MONTH_HOURS)
            term = {"hours": hours, "seconds": hours * hour_seconds()}
        return {"payment": payment, "charge_type": "ComputingUnit", **term}
    charge = billing.choice("chargeType", CHARGE_TYPES)
    return {"payment": payment, "charge_type": charge, "seconds": None}


def _resources(body: Body, *, required: bool) -> dict[str, Any]:
    resources = body.obj("resourceConfig", required=required)
    kind = resources.choice("type", RESOURCE_TYPES + SDK_RESOURCE_TYPES, required=required)
    return {
        "resource_type": kind,
        "region": resources.choice("region", REGIONS, required=False),
        "qps": _qps(resources),
        "replicas": resources.opt_integer("replicasCount", 1, low=1, high=MAX_REPLICAS) or 1,
    }


def _deployment(body: Body) -> dict[str, Any] | None:
    """``deploymentConfig`` with compute units already bought [S1]; None when it buys new ones."""
    config = body.obj("deploymentConfig")
    units = config.array("deploymentComputeUnitList")
    if not units:
        return None
    counts = []
    for index, unit in enumerate(units):
        entry = Body(
            unit if isinstance(unit, dict) else {}, f"{config.where} deploymentComputeUnitList[{index}]"
        )
        entry.text("instanceId")
        counts.append(entry.opt_integer("deploymentReplicasCount", 1, low=1, high=MAX_REPLICAS) or 1)
    replicas = config.opt_integer("replicasCount", None, low=1, high=MAX_REPLICAS) or min(
        sum(counts), MAX_REPLICAS
    )
    config.opt_integer("replicaComputeUnitCount", None, low=1)
    # Every compute unit is this machine, so any unit id is accepted; the first one is the instance released.
    return {
        "instance_id": str(units[0]["instanceId"]),
        "replicas": replicas,
        "qps": _qps(config),
        "payment": "Postpaid",
        "charge_type": "ComputingUnit",
        "seconds": None,
    }


def create_service(ctx: Context, body: Body) -> dict[str, Any]:
    name, suffix = _name(body), _suffix(body)
    version = version_or_404(ctx, body.text("modelId"))
    model_set = body.text("modelSetId")
    if model_set != version.model_id:
        raise invalid(
            f"{body.where}: model version {version.id} belongs to {version.model_id}, not {model_set}."
        )
    description = body.opt_text("description") or ""
    if len(description) > 500:
        raise invalid(f"{body.where}: the description has {len(description)} characters; at most 500.")
    service_type = body.choice("serviceType", (*SERVICE_TYPES, "Chat"), required=False)
    if service_type not in (None, "chat", "Chat"):
        raise invalid(f"{body.where}: the local platform serves only chat services, not {service_type}.")
    body.opt_integer("protocolVersion", 1, low=1, high=2)
    purchase = _deployment(body)
    if purchase is None:
        bought = _billing(body)
        purchase = {**_resources(body, required=bought["charge_type"] != "Tokens"), **bought}
        purchase["instance_id"] = new_id("unit")
    live = ctx.store.live_service_by_suffix(suffix)
    if live is not None:
        raise ApiError(409, "Conflict", f"The urlSuffix {suffix!r} is already served by service {live.id}.")
    seconds = purchase.pop("seconds")
    params = {**purchase, "description": description, "model_set_id": version.model_id}
    service = ctx.store.create_service(
        service_id=new_id("svco"),
        name=name,
        endpoint_suffix=suffix,
        model_version_id=version.id,
        params=params,
    )
    expires = None if seconds is None else time.time() + seconds
    if expires is not None:
        ctx.store.update_service(service.id, expires_at=iso(expires))
    ctx.services.deploy(service, expires_at=expires)
    return {"serviceId": service.id, "instanceId": params["instance_id"]}


def describe_service(ctx: Context, body: Body) -> dict[str, Any]:
    return describe(_service(ctx, body.text("serviceId")), ctx.base_url)


def _filter(body: Body, key: str, choices: Sequence[str]) -> list[str]:
    """A list filter of DescribeServices (a single string is read as a list of one)."""
    if isinstance(body.data.get(key), str):
        values = [body.data[key]]
    else:
        values = body.texts(key)
    for value in values:
        if value not in choices:
            raise invalid(f"{body.where}: {key} {value!r} is not one of {', '.join(choices)}.")
    return values


def list_services(ctx: Context, body: Body) -> dict[str, Any]:
    """DescribeServices [S3]: filters, then one page of ``serviceList`` with ``pageInfo``."""
    name = (body.opt_text("name") or "").lower()  # a fuzzy match, as Qianfan's
    statuses = _filter(body, "runStatus", RUN_STATUSES)
    types = _filter(body, "serviceType", SERVICE_TYPES)
    charge = body.choice("chargeType", CHARGE_TYPES, required=False)
    pay = body.choice("payType", ("Prepay", "Postpay"), required=False)
    rendered = [describe(service, ctx.base_url) for service in ctx.store.services()]
    chosen = [
        item
        for item in rendered
        if name in item["name"].lower()
        and (not statuses or item["runStatus"] in statuses)
        and (not types or item["serviceType"] in types)
        and charge in (None, item["chargeType"])
        and pay in (None, item["payType"])
    ]
    return page(body, chosen, lambda item: str(item["serviceId"]), lambda item: item, "serviceList")


def modify_service(ctx: Context, body: Body) -> bool:
    """ModifyService [S4]: the service serves another model version, on the same compute and term."""
    service = _service(ctx, body.text("serviceId"))
    version = version_or_404(ctx, body.text("modelId"))
    model_set = body.text("modelSetId")
    if model_set != version.model_id:
        raise invalid(
            f"{body.where}: model version {version.id} belongs to {version.model_id}, not {model_set}."
        )
    # The set id goes in first: a redeploy reads the row, and describe must never pair old set, new version.
    ctx.store.update_service(service.id, params={**service.params, "model_set_id": version.model_id})
    if not ctx.services.redeploy(service.id, version.id):
        ctx.store.update_service(service.id, params=service.params)
        now = run_status(_service(ctx, service.id))
        raise invalid(
            f"{body.where}: the service {service.id} is {now}; only a live service can switch its model."
        )
    return True


def release_service(ctx: Context, body: Body) -> bool:
    """ReleaseComputeUnit on /v2/serviceresources [S5]: stop the service running on that instance."""
    service = _service(ctx, body.text("serviceId"))
    instance = body.text("instanceId")
    if instance != service.params.get("instance_id"):
        raise not_found(f"The compute instance {instance!r} does not run service {service.id}.")
    ctx.services.delete(service.id)  # releasing twice finds it stopped already: harmless
    return True


def release_unit(ctx: Context, body: Body) -> bool:
    """ReleaseComputeUnit on /v2/computeunit [S6]: every service running on the instance stops."""
    instance = body.text("instanceId")
    services = [s for s in ctx.store.services() if s.params.get("instance_id") == instance]
    if not services:
        raise not_found(f"The compute instance {instance!r} does not exist on this platform.")
    for service in services:
        ctx.services.delete(service.id)
    return True


ACTIONS = {
    "CreateService": create_service,
    "DescribeService": describe_service,
    "DescribeServices": list_services,
    "ModifyService": modify_service,
}
RESOURCE_ACTIONS = {"ReleaseComputeUnit": release_service}
UNIT_ACTIONS = {"ReleaseComputeUnit": release_unit}
# Where the SDK sends ReleaseComputeUnit, and the legacy action there [S5]: a local tolerance.
CHARGE_ACTIONS = {"ReleaseComputeUnit": release_service, "ReleaseServiceResource": release_service}


class ChatError(Exception):
    """A chat refusal: HTTP status, Qianfan v1 error code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def chat_request(data: Any, where: str) -> dict[str, Any]:
    """Check a chat body and translate it into the replica's OpenAI request."""
    if not isinstance(data, dict):
        raise ChatError(400, 336003, f"{where}: the body must be a JSON object.")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ChatError(400, 336003, f"{where}: 'messages' must be a non-empty array.")
    for index, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or message.get("role") not in ("user", "assistant", "system")
            or not isinstance(message.get("content"), str)
        ):
            raise ChatError(
                400,
                336003,
                f"{where}: messages[{index}] needs a role (user, assistant or system) and content.",
            )
    request: dict[str, Any] = {"messages": [{"role": m["role"], "content": m["content"]} for m in messages]}
    try:
        check_prompt(request["messages"])
        request.update(check_numbers(data))
        request.update(check_stop(data))
    except ChatLimitError as exc:
        raise ChatError(400, 336003, f"{where}: {exc}") from None
    return request


def live_replica(ctx: Context, suffix: str) -> tuple[ServiceRow, str]:
    service = ctx.store.live_service_by_suffix(suffix)
    if service is None:
        raise ChatError(404, 336005, f"No deployed service answers the endpoint {suffix!r}.")
    url = ctx.services.next_url(service.id) if service.status == SERVING else None
    if url is None:
        raise ChatError(503, 336100, f"The service {service.id} for endpoint {suffix!r} is {service.status}.")
    return service, url


async def forward(
    client: ReplicaClient, url: str, request: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    """POST the OpenAI request to a replica (with the platform's credentials in ``headers``) and return its
    JSON answer (a ChatError when it fails)."""
    body = json.dumps(request, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    try:
        response = await client.post(url, "/v1/chat/completions", body, headers)
    except ReplicaUnreachable as exc:
        raise ChatError(503, 336100, f"The replica at {url} did not answer: {exc}.") from exc
    try:
        answer = json.loads(response.body)
    except ValueError as exc:
        raise ChatError(
            502, 336000, f"The replica at {url} answered {response.status} without JSON."
        ) from exc
    if response.status != 200 or not isinstance(answer, dict):
        detail = answer.get("error", {}).get("message", "") if isinstance(answer, dict) else ""
        if response.status == 429:  # the replica's queue is full: Qianfan's QPS-limit code
            raise ChatError(429, 18, detail or "The service is busy; try again shortly.")
        code = 336003 if 400 <= response.status < 500 else 336000
        raise ChatError(response.status, code, detail or f"The replica answered {response.status}.")
    return answer


def qianfan_reply(answer: dict[str, Any], request_id: str) -> dict[str, Any]:
    """An OpenAI completion in the Qianfan v1 chat shape."""
    choice = (answer.get("choices") or [{}])[0]
    usage = answer.get("usage") or {}
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": answer.get("created", int(time.time())),
        "result": (choice.get("message") or {}).get("content", ""),
        "is_truncated": choice.get("finish_reason") == "length",
        "need_clear_history": False,
        "usage": {
            "prompt_tokens": usage.get("prompt_tokens", 0),
            "completion_tokens": usage.get("completion_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0),
        },
    }
