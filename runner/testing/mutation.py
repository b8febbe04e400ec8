"""One-change mutations of a JSON-like document, for the property tests of the readers (pipeline, state):
every place in a valid document, and a copy of it with one value replaced, removed or added there."""

from __future__ import annotations

import copy
from typing import Any


def places(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path (keys and indexes) of every value inside ``value``, outermost first."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += places(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += places(item, (*prefix, index))
    return found


def mutated(document: Any, path: tuple[Any, ...], how: str, value: Any, *, new_key: str = "") -> Any:
    """A copy of ``document`` with the value at ``path`` replaced by ``value`` (``how="replace"``), removed
    (``"remove"``), or with ``value`` added beside it (otherwise: under ``new_key`` in a mapping, by default
    ``extra_<size>``, or appended to a list)."""
    changed = copy.deepcopy(document)
    parent: Any = changed
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "remove":
        del parent[last]
    elif isinstance(parent, dict):
        parent[new_key or f"extra_{len(parent)}"] = value
    else:
        parent.append(value)
    return changed
