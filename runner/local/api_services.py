"""``/v2/service`` actions and the chat paths that forward to a service's replicas.

CreateService is idempotent by name (a deployment is the costliest task, never made twice) and refuses an
endpoint suffix that another live service answers (409). The Qianfan chat path answers in the v1 shape
(``result``, ``usage``; errors as ``error_code``/``error_msg``) and ``/v1/chat/completions`` in OpenAI's.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from runner.local.api_common import ApiError, Body, Context, found, invalid, page
from runner.local.api_models import version_or_404
from runner.local.rows import SERVING, DuplicateName, ServiceRow, new_id
from runner.local.services import hour_seconds, iso

_SUFFIX = re.compile(r"^[a-z0-9_]{1,30}$")
_SERVICE_TYPES = ("Chat", "Completion", "Embedding", "Text2Image")
CHAT_PATH = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"


def describe(service: ServiceRow, base_url: str = "") -> dict[str, Any]:
    return {
        "serviceId": service.id,
        "name": service.name,
        "description": service.params.get("description", ""),
        "urlSuffix": service.endpoint_suffix,
        "url": f"{base_url}{CHAT_PATH}{service.endpoint_suffix}",
        "runStatus": service.status,
        "replicasCount": service.params.get("replicas", 1),
        "expireTime": service.expires_at or "",
        "failedReason": service.message if service.status != SERVING else "",
        "modelId": service.model_version_id,
        "modelSetId": service.params.get("model_set_id", ""),
        "serviceType": service.params.get("service_type", "Chat"),
        "createTime": service.created_at,
        "updateTime": service.updated_at,
    }


def _service(ctx: Context, service_id: str) -> ServiceRow:
    return found(ctx.store.service(service_id), "service", service_id)


def create_service(ctx: Context, body: Body) -> dict[str, Any]:
    name = body.text("name")
    existing = ctx.store.service_by_name(name)
    if existing is not None:
        return {"serviceId": existing.id}
    version = version_or_404(ctx, body.text("modelId"))
    model_set = body.opt_text("modelSetId")
    if model_set is not None and model_set != version.model_id:
        raise invalid(
            f"{body.where}: model version {version.id} belongs to {version.model_id}, not {model_set}."
        )
    suffix = body.text("urlSuffix")
    if not _SUFFIX.match(suffix):
        raise invalid(f"{body.where}: urlSuffix {suffix!r} must be 1 to 30 of a-z, 0-9 and _.")
    service_type = body.choice("serviceType", _SERVICE_TYPES, required=False) or "Chat"
    if service_type != "Chat":
        raise invalid(f"{body.where}: the local platform serves only Chat services, not {service_type}.")
    resources = body.obj("resourceConfig")
    replicas = resources.opt_integer("replicasCount", 1, low=1, high=8) or 1
    hours = body.obj("billing").obj("reservation").opt_integer("reservationLength", 1, low=1, high=8760) or 1
    live = ctx.store.live_service_by_suffix(suffix)
    if live is not None:
        raise ApiError(
            409, "Conflict", f"The endpoint suffix {suffix!r} is already served by service {live.id}."
        )
    params = {
        "replicas": replicas,
        "hours": hours,
        "pool_type": resources.opt_text("type") or "private",
        "service_type": service_type,
        "description": body.opt_text("description") or "",
        "model_set_id": version.model_id,
    }
    try:
        service = ctx.store.create_service(
            service_id=new_id("svc"),
            name=name,
            endpoint_suffix=suffix,
            model_version_id=version.id,
            params=params,
        )
    except DuplicateName:
        again = ctx.store.service_by_name(name)
        assert again is not None
        return {"serviceId": again.id}
    expires = time.time() + hours * hour_seconds()
    ctx.store.update_service(service.id, expires_at=iso(expires))
    ctx.services.deploy(service, expires_at=expires)
    return {"serviceId": service.id}


def describe_service(ctx: Context, body: Body) -> dict[str, Any]:
    return describe(_service(ctx, body.text("serviceId")), ctx.base_url)


def list_services(ctx: Context, body: Body) -> Any:
    name = body.opt_text("name")
    statuses = body.texts("runStatus") if isinstance(body.data.get("runStatus"), list) else []
    if isinstance(body.data.get("runStatus"), str):
        statuses = [body.data["runStatus"]]
    services = [
        service
        for service in ctx.store.services()
        if (name is None or service.name == name) and (not statuses or service.status in statuses)
    ]
    return page(
        body, services, lambda service: service.id, lambda s: describe(s, ctx.base_url), "serviceList"
    )


def delete_service(ctx: Context, body: Body) -> dict[str, Any]:
    ctx.services.delete(_service(ctx, body.text("serviceId")).id)
    return {}


ACTIONS = {
    "CreateService": create_service,
    "DescribeService": describe_service,
    "DescribeServices": list_services,
    "DeleteService": delete_service,
}


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
    for key in ("temperature", "top_p", "stop", "seed"):
        if key in data:
            request[key] = data[key]
    tokens = data.get("max_output_tokens", data.get("max_tokens"))
    if tokens is not None:
        request["max_tokens"] = tokens
    return request


def live_replica(ctx: Context, suffix: str) -> tuple[ServiceRow, str]:
    service = ctx.store.live_service_by_suffix(suffix)
    if service is None:
        raise ChatError(404, 336005, f"No deployed service answers the endpoint {suffix!r}.")
    url = ctx.services.next_url(service.id) if service.status == SERVING else None
    if url is None:
        raise ChatError(503, 336100, f"The service {service.id} for endpoint {suffix!r} is {service.status}.")
    return service, url


async def forward(client: httpx.AsyncClient, url: str, request: dict[str, Any]) -> dict[str, Any]:
    """POST the OpenAI request to a replica and return its JSON answer (a ChatError when it fails)."""
    try:
        response = await client.post(f"{url}/v1/chat/completions", json=request)
    except httpx.HTTPError as exc:
        raise ChatError(
            503, 336100, f"The replica at {url} did not answer: {exc.__class__.__name__}."
        ) from exc
    try:
        answer = response.json()
    except ValueError as exc:
        raise ChatError(
            502, 336000, f"The replica at {url} answered {response.status_code} without JSON."
        ) from exc
    if response.status_code != 200 or not isinstance(answer, dict):
        detail = answer.get("error", {}).get("message", "") if isinstance(answer, dict) else ""
        code = 336003 if 400 <= response.status_code < 500 else 336000
        raise ChatError(response.status_code, code, detail or f"The replica answered {response.status_code}.")
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
