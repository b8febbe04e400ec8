"""What every API handler shares: the server context, typed request fields, errors and list pages.

A handler is a plain function ``(Context, Body) -> result``; it raises ``ApiError`` for anything the client
got wrong, and the app renders that as Qianfan's error JSON (``requestId``, ``code``, ``message``) with the
right HTTP status. ``Body`` reads request fields with their types checked, so a wrong or missing field is a
400 that names the field, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from runner.platform import wire

if TYPE_CHECKING:
    from runner.local.bos_store import ObjectStore
    from runner.local.home import Home
    from runner.local.services import ServiceManager
    from runner.local.store import Store
    from runner.local.workers import TaskRunner

T = TypeVar("T")

INVALID = "InvalidParameter"
NOT_FOUND = "ResourceNotFound"
CONFLICT = "Conflict"
UNAUTHORIZED = "AccessDenied"  # the documented console code for refused credentials [B7]
INTERNAL = "InternalError"

NO_RESULT: Any = object()
"""What a handler returns for an action that answers only ``{"requestId"}`` (CancelModelCompTask [C4])."""


class ApiError(Exception):
    """A refusal the client can act on: HTTP status, Qianfan error code and a full sentence."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid(message: str) -> ApiError:
    return ApiError(400, INVALID, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, NOT_FOUND, message)


def found(row: T | None, what: str, row_id: str) -> T:
    """``row``, or the platform's 404 that names what was asked for ("The service 'svc-1' does not ...")."""
    if row is None:
        raise not_found(f"The {what} {row_id!r} does not exist on this platform.")
    return row


@dataclass
class Context:
    """The running platform as handlers see it."""

    home: Home
    store: Store
    runner: TaskRunner
    services: ServiceManager
    objects: ObjectStore  # the platform's BOS, which batch inference reads and writes
    base_url: str = ""  # http://127.0.0.1:PORT, learnt from the first request


_TYPE_WORDS = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object", list: "an array"}


class Body:
    """A JSON request object with typed accessors; ``where`` names the action in messages."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data = data
        self.where = where

    def _get(self, key: str, kind: type[T], required: bool, default: T | None) -> T | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise invalid(f"{self.where} needs the field {key!r} ({_TYPE_WORDS[kind]}).")
            return default
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise invalid(
                f"{self.where}: the field {key!r} must be {_TYPE_WORDS[kind]}, not {_json_type(value)}."
            )
        return value

    def text(self, key: str) -> str:
        value = self._get(key, str, True, None)
        assert value is not None
        if not value.strip():
            raise invalid(f"{self.where}: the field {key!r} must not be empty.")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self._get(key, str, False, None)
        return value if value else None

    def opt_integer(
        self, key: str, default: int | None = None, *, low: int = 0, high: int = 2**31
    ) -> int | None:
        value = self._get(key, int, False, default)
        if value is not None and not low <= value <= high:
            raise invalid(f"{self.where}: the field {key!r} must be between {low} and {high}, not {value}.")
        return value

    def integer(self, key: str, *, low: int = 0, high: int = 2**31) -> int:
        self._get(key, int, True, None)
        value = self.opt_integer(key, low=low, high=high)
        assert value is not None
        return value

    def obj(self, key: str, *, required: bool = False) -> Body:
        value = self._get(key, dict, required, {})
        assert value is not None
        return Body(value, f"{self.where} {key}")

    def array(self, key: str, *, required: bool = False) -> list[Any]:
        value = self._get(key, list, required, [])
        assert value is not None
        return value

    def texts(self, key: str, *, required: bool = False) -> list[str]:
        values = self.array(key, required=required)
        for index, value in enumerate(values):
            if not isinstance(value, str) or not value:
                raise invalid(f"{self.where}: {key}[{index}] must be a non-empty string.")
        return values

    def choice(self, key: str, choices: Sequence[str], *, required: bool = True) -> str | None:
        value = self.text(key) if required else self.opt_text(key)
        if value is not None and value not in choices:
            raise invalid(
                f"{self.where}: the field {key!r} must be one of {', '.join(choices)}, not {value!r}."
            )
        return value


def _json_type(value: Any) -> str:
    for kind, word in _TYPE_WORDS.items():
        if isinstance(value, kind):
            return word
    return "null" if value is None else "a number"


def page(
    body: Body, items: Sequence[T], item_id: Callable[[T], str], render: Callable[[T], Any], key: str
) -> dict[str, Any]:
    """One page of a list action, as Qianfan pages [M3][B6]: ``maxKeys`` (default 10, above 100 read as
    100) items starting *at* ``marker`` (an id of the list), ``pageInfo.nextMarker`` the first id of the next
    page, present only when ``isTruncated``; ``pageReverse`` lists newest first."""
    marker = body.opt_text("marker") or ""
    max_keys = min(
        body.opt_integer("maxKeys", wire.DEFAULT_MAX_KEYS, low=1) or wire.DEFAULT_MAX_KEYS, wire.MAX_KEYS
    )
    reverse = body.data.get("pageReverse")
    if reverse is not None and not isinstance(reverse, bool):
        raise invalid(f"{body.where}: pageReverse must be a boolean.")
    ordered = list(reversed(items)) if reverse else list(items)
    start = 0
    if marker:
        ids = [item_id(item) for item in ordered]
        if marker not in ids:
            raise invalid(f"{body.where}: the marker {marker!r} is not an id of this list.")
        start = ids.index(marker)
    chosen = ordered[start : start + max_keys]
    following = ordered[start + max_keys : start + max_keys + 1]
    return wire.page_result(
        key,
        [render(item) for item in chosen],
        marker=marker,
        max_keys=max_keys,
        next_marker=item_id(following[0]) if following else None,
    )


Handler = Callable[[Context, Body], Any]
