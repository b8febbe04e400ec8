"""How large a value an expression may build, checked before it is built.

Jinja2's sandbox guards attributes, not sizes: ``'a' * 10**12``, ``x.replace('a', x)``, ``x | join(x)``,
``'\\t'.expandtabs(n)`` or ``x ~ x ~ x`` ask Python for gigabytes, and a pipeline file from an untrusted pull
request can write them. Every operation that can make a value larger than its inputs (``*``, ``+``, ``~``,
the filters that build, the string methods that grow) computes the size of its result from its inputs and
refuses, with a sentence, when it is over ``MAX_SIZE``; a value read as it is (a var, an output) keeps its
size, since it is already in memory.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# The most characters or items (counted through nested lists and mappings) a built value may hold.
MAX_SIZE = 100_000
# Filters that return their input or one of its items unchanged build nothing and are not checked.
BUILDING_FILTERS = frozenset(
    {"capitalize", "join", "list", "lower", "string", "sum", "title", "tojson", "trim", "unique", "upper"}
)
_SIZED = (str, bytes, list, tuple)


class TooLarge(ValueError):
    """An expression would build a value over the size cap."""

    def __init__(self) -> None:
        super().__init__(f"the value it would build is over the limit of {MAX_SIZE:,} characters or items")


def size(value: Any, limit: int = MAX_SIZE) -> int:
    """Characters or items in ``value``, through nested lists and mappings (what its text would hold);
    counting stops soon after ``limit``, so sizing a huge value costs no more than sizing a small one."""
    total, pending = 0, [value]
    while pending and total <= limit:
        item = pending.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 1
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1  # about its decimal digits
        elif isinstance(item, Mapping):
            total += 1
            pending.extend(itertools.islice(itertools.chain(item.keys(), item.values()), limit - total + 1))
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 1
            pending.extend(itertools.islice(item, limit - total + 1))
        else:
            total += 1
    return total


def depth(value: Any) -> int:
    """How deeply lists and mappings nest in ``value`` (0 for a scalar); for values already within the cap."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, level = pending.pop()
        deepest = max(deepest, level)
        if isinstance(item, Mapping):
            pending.extend((child, level + 1) for child in item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            pending.extend((child, level + 1) for child in item)
    return deepest


def refuse_over(bound: int) -> None:
    if bound > MAX_SIZE:
        raise TooLarge


def check(value: Any) -> Any:
    """``value``, if it is within the cap."""
    refuse_over(size(value))
    return value


def before_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``*`` and ``+`` whose result would be over the cap, before Python builds it."""
    if operator == "*":
        sequence, count = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(sequence, _SIZED) and isinstance(count, int) and not isinstance(count, bool):
            refuse_over(size(sequence) * max(count, 0))
    elif operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
        refuse_over(size(left) + size(right))


def concat(items: Iterable[Any]) -> str:
    """``a ~ b ~ c``: Jinja2's own join of the items' text, once their sizes add up within the cap."""
    parts = list(items)
    refuse_over(sum(size(part) for part in parts))
    return check("".join(map(str, parts)))  # type: ignore[no-any-return]


def call_method(call: Callable[..., Any], method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``call(*args, **kwargs)``, which calls ``method``; a string method that would grow its string over
    the cap is refused before it runs."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, (str, bytes)):
        return call(*args, **kwargs)
    name = getattr(method, "__name__", "")
    if name == "join" and args:
        items = list(args[0])  # an iterator can be read once: size it, then join the same list
        args = (items, *args[1:])
        refuse_over(sum(size(item) for item in items) + len(owner) * max(len(items) - 1, 0))
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        found = owner.count(old) if old else len(owner) + 1
        if isinstance(count, int) and count >= 0:
            found = min(found, count)
        refuse_over(len(owner) + found * max(size(new) - size(old), 0))
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        refuse_over(len(owner) + tabs * (tab if isinstance(tab, int) else 0))
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((size(value) for value in args[0].values()), default=1)
        refuse_over(len(owner) * max(longest, 1))
    result = call(*args, **kwargs)
    # Methods that grow by a constant factor (``hex``, ``upper``) are checked after: chained, they double.
    return check(result) if result is not owner else result


def capped_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` as a filter that refuses to build a value over the cap (filters that build only)."""
    if name not in BUILDING_FILTERS:
        return function
    # A filter marked pass_environment / pass_eval_context gets that first; the filtered value follows.
    value_at = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        value = args[value_at]
        if name == "join":
            items = list(value)
            separator = args[value_at + 1] if len(args) > value_at + 1 else kwargs.get("d", "")
            refuse_over(sum(size(item) for item in items) + size(separator) * max(len(items) - 1, 0))
            args = (*args[:value_at], items, *args[value_at + 1 :])
        else:
            refuse_over(size(value))
        if name == "tojson":  # an indent is repeated on every line, once per level: x | tojson(99999)
            indent = args[value_at + 1] if len(args) > value_at + 1 else kwargs.get("indent")
            width = indent if isinstance(indent, int) else len(indent) if isinstance(indent, str) else 0
            refuse_over(size(value) * (1 + max(width, 0) * depth(value)))
        return check(function(*args, **kwargs))

    return run
