"""Paging as every console list pages [M3][B6][C3][E3]: ``result.pageInfo``, ``nextMarker`` if truncated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.platform.protocol import (
    TaskKind,
)
from runner.platform.wire.fields import WireError, obj, req_str
from runner.platform.wire.kinds import KIND_API

DEFAULT_MAX_KEYS = 10  # "默认值是10"
MAX_KEYS = 100  # "如果指定的值大于100,按100操作": larger values are read as 100


def page_result(
    list_field: str, items: Sequence[Any], *, marker: str, max_keys: int, next_marker: str | None
) -> dict[str, Any]:
    """A list action's ``result``: the items and ``pageInfo`` (``nextMarker`` only when truncated)."""
    info: dict[str, Any] = {"marker": marker, "maxKeys": max_keys, "isTruncated": next_marker is not None}
    if next_marker is not None:
        info["nextMarker"] = next_marker
    return {list_field: list(items), "pageInfo": info}


def list_body(
    kind: TaskKind,
    name: str,
    *,
    marker: str | None,
    max_keys: int = MAX_KEYS,
    fixed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A list request narrowed to ``name`` where the kind can; ``fixed`` replaces the kind's required
    fields (an evaluation lookup asks once per ``evalType``)."""
    api = KIND_API[kind]
    body: dict[str, Any] = {**(api.list_fixed if fixed is None else fixed), "maxKeys": max_keys}
    if api.list_filter:
        body[api.list_filter] = name
    if marker:
        body["marker"] = marker
    return body


def list_page(
    kind: TaskKind, result: Any, max_keys: int = MAX_KEYS
) -> tuple[list[Mapping[str, Any]], str | None]:
    """The items of one list page and the marker of the next page (None on the last page).

    Paging lives in ``result.pageInfo`` [M3][B6]; ``nextMarker`` counts only when ``isTruncated`` is true.
    A page without ``pageInfo`` is read as the last one only when it is not full: a full page whose
    successor cannot be named would make an exactly-once lookup miss a task.
    """
    return page_items(result, KIND_API[kind].list_field, max_keys)


def page_items(
    result: Any, list_field: str, max_keys: int = MAX_KEYS
) -> tuple[list[Mapping[str, Any]], str | None]:
    """``list_page`` for any list action: the items of ``result.<list_field>`` and the next page's marker."""
    data = obj(result, "result")
    items = data.get(list_field)
    if items is None:
        items = []
    if not isinstance(items, list):
        raise WireError(f"the field 'result.{list_field}' should be an array, not {type(items).__name__}")
    parsed = [obj(item, f"result.{list_field}[{i}]") for i, item in enumerate(items)]
    if "pageInfo" not in data:
        if len(parsed) >= max_keys:
            raise WireError(
                "the field 'result.pageInfo' is missing from a full page, so the next page is unknown"
            )
        return parsed, None
    info = obj(data["pageInfo"], "result.pageInfo")
    truncated = info.get("isTruncated")
    if not isinstance(truncated, bool):
        raise WireError("the field 'result.pageInfo.isTruncated' should be a boolean")
    if not truncated:
        return parsed, None
    return parsed, req_str(info, "nextMarker", "result.pageInfo")
