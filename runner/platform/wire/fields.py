"""Typed access to a JSON answer's fields: every failure a ``WireError`` that names the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class WireError(Exception):
    """A response that does not have the documented shape; the message names the field."""


def obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WireError(f"the field '{where}' should be an object, not {type(value).__name__}")
    return value


def req_str(data: Mapping[str, Any], key: str, where: str = "result") -> str:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        shown = "missing" if value is None else f"{type(value).__name__} {value!r}"
        raise WireError(f"the field '{where}.{key}' should be a non-empty string, not {shown}")
    return str(value)


def opt_str(data: Mapping[str, Any], key: str, where: str = "result") -> str:
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise WireError(f"the field '{where}.{key}' should be a string, not {type(value).__name__}")
    return str(value)


def opt_int(data: Mapping[str, Any], key: str, where: str = "result") -> int | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise WireError(f"the field '{where}.{key}' should be an integer, not {type(value).__name__}")
    try:
        return int(value)
    except ValueError:
        raise WireError(f"the field '{where}.{key}' should be an integer, not {value!r}") from None
