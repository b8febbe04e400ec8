"""Reading a JSON request body the way every local route must: bounded while it streams, strict JSON.

The size limit is checked against ``Content-Length`` before a byte is read and again on every chunk as it
arrives, so a client that lies about the length or sends no length at all is cut off at the limit instead of
being buffered whole. The JSON is strict: ``NaN``/``Infinity`` (which Python's parser accepts and no JSON
client sends) are refused, and so is nesting deeper than any API of the platform uses, because a deep
document reaches Python's recursion limit in whatever walks it later.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

MAX_DEPTH = 64
CHAT_BODY_BYTES = 4 * 1024 * 1024  # a chat body is messages and a few numbers; prompts are capped far below


class BodyTooLarge(Exception):
    """The body passed ``limit`` bytes (413)."""

    def __init__(self, where: str, limit: int) -> None:
        super().__init__(f"{where}: the body is larger than the limit of {limit} bytes.")
        self.limit = limit


class BadJson(ValueError):
    """The body is not a JSON document this platform accepts (400); the message says why."""


async def read_limited(request: Request, limit: int, where: str) -> bytes:
    """The request body, refused with ``BodyTooLarge`` as soon as it is known to pass ``limit`` bytes."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(where, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(where, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constant(name: str) -> Any:
    raise BadJson(f"{name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """``raw`` as strict JSON (an empty body is None); ``BadJson`` says what is wrong."""
    if not raw.strip():
        return None
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except BadJson:
        raise
    except RecursionError:
        raise BadJson(f"it is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, an integer of more than 4300 digits
        raise BadJson(str(exc)) from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise BadJson(f"it is nested more than {MAX_DEPTH} levels deep")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` deep; iterative, so it cannot recurse too deep itself."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
