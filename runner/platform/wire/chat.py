"""The chat answer of a deployed service [S7]."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.platform.protocol import (
    ChatReply,
)
from runner.platform.wire.fields import WireError, obj, opt_int


def chat_reply(body: Mapping[str, Any], request_id: str | None) -> ChatReply:
    text = body.get("result")
    if not isinstance(text, str):
        raise WireError("the field 'result' of the chat response should be a string")
    usage = obj(body.get("usage") or {}, "usage")
    return ChatReply(
        text=text,
        prompt_tokens=opt_int(usage, "prompt_tokens", "usage") or 0,
        completion_tokens=opt_int(usage, "completion_tokens", "usage") or 0,
        request_id=request_id or "",
    )
