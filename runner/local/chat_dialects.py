"""The two ways a deployed service is called, as small adapters of one chat handler (runner.local.app).

Both take the same messages and reach the same replica; they differ only where the service is named, how a
request is identified, and the shape of an answer and of a refusal:

- Qianfan's chat (``POST /rpc/2.0/ai_custom/v1/wenxinworkshop/chat/{suffix}`` [S7]): the service is the path's
  URL suffix, the answer is ``{id, result, usage, ...}``, a refusal ``{error_code, error_msg}``;
- the OpenAI-compatible route (``POST /v1/chat/completions``): the service is the body's ``model``, the
  answer is the replica's completion, a refusal ``{error: {message, type, code}}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.local.api_services import ChatError, qianfan_reply


@dataclass(frozen=True)
class ChatDialect:
    where: Callable[[Mapping[str, str]], str]  # path params -> the request's name in messages
    new_id: Callable[[], str]
    service: Callable[[Mapping[str, str], Mapping[str, Any]], str]  # (path params, body) -> URL suffix
    reply: Callable[[dict[str, Any], str, Mapping[str, Any]], dict[str, Any]]  # (answer, id, body)
    refusal: Callable[[ChatError, str], dict[str, Any]]


def _openai_model(path: Mapping[str, str], body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ChatError(400, 336003, "/v1/chat/completions needs 'model': a service's endpoint suffix.")
    return model


def _openai_refusal(error: ChatError, request_id: str) -> dict[str, Any]:
    kind = "invalid_request_error" if error.status < 500 else "server_error"
    return {"error": {"message": error.message, "type": kind, "code": error.code}}


QIANFAN = ChatDialect(
    where=lambda path: f"chat on {path['suffix']}",
    new_id=lambda: str(uuid.uuid4()),
    service=lambda path, body: path["suffix"],
    reply=lambda answer, request_id, body: qianfan_reply(answer, request_id),
    refusal=lambda error, request_id: {
        "error_code": error.code,
        "error_msg": error.message,
        "id": request_id,
    },
)
OPENAI = ChatDialect(
    where=lambda path: "/v1/chat/completions",
    new_id=lambda: f"chatcmpl-{uuid.uuid4().hex}",
    service=_openai_model,
    reply=lambda answer, request_id, body: {**answer, "model": body["model"]},
    refusal=_openai_refusal,
)
