"""A yes/no check of the subset of Draft 2020-12 that pipeline.schema.json uses, compiled to closures.

``qfrun validate`` on a valid file should not pay for importing jsonschema (more than the rest of the command
together). jsonschema stays the authority: runner.pipeline.schema re-validates any "no" with it for the
worded errors, and a test compares both on many mutated documents. Keywords outside the subset fail loudly at
compile time, so a schema change can never make this check pass files silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

Check = Callable[[Any], bool]

_ANNOTATIONS: Final = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "markdownDescription",
        "examples",
        "default",
        "format",
    }
)
_TYPES: Final[dict[str, Check]] = {
    "null": lambda value: value is None,
    "boolean": lambda value: isinstance(value, bool),
    "integer": lambda value: (
        (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, float) and value.is_integer())
    ),
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "string": lambda value: isinstance(value, str),
    "array": lambda value: isinstance(value, list),
    "object": lambda value: isinstance(value, dict),
}


def _equal(one: Any, two: Any) -> bool:
    """jsonschema's equality: booleans are not numbers, containers compare item by item."""
    if isinstance(one, bool) or isinstance(two, bool):
        return type(one) is type(two) and one == two
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(_equal(one[key], two[key]) for key in one)
    return bool(one == two)


def _identity(value: Any) -> Any:
    """A hashable stand-in that two values share exactly when ``_equal`` holds: ``uniqueItems`` then costs
    one set, not a comparison of every pair (quadratic in a list such as 60,000 ``needs``)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, list):
        return ("list", tuple(_identity(item) for item in value))
    if isinstance(value, dict):
        return ("dict", frozenset((key, _identity(item)) for key, item in value.items()))
    return ("value", value)  # 1 and 1.0 hash and compare equal, as jsonschema counts them


def _unique(value: Any) -> bool:
    return not isinstance(value, list) or len({_identity(item) for item in value}) == len(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_BOUNDS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "minimum": lambda value, bound: bool(value >= bound),
    "maximum": lambda value, bound: bool(value <= bound),
    "exclusiveMinimum": lambda value, bound: bool(value > bound),
}


def _always(result: bool) -> Check:
    return lambda value: result


def _bounded(test: Callable[[Any, Any], bool], bound: Any) -> Check:
    return lambda value: not _is_number(value) or test(value, bound)


def _every(parts: list[Check]) -> Check:
    """All of ``parts``, stopping at the first no. Plain loops, not ``all()`` over a generator: the check
    runs for every value of a pipeline, and the generator was most of its time."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda value: first(value) and second(value)

    def every(value: Any) -> bool:
        for part in parts:
            if not part(value):
                return False
        return True

    return every


def _some(parts: list[Check]) -> Check:
    """Any of ``parts``, stopping at the first yes."""
    if len(parts) == 1:
        return parts[0]

    def some(value: Any) -> bool:
        for part in parts:
            if part(value):
                return True
        return False

    return some


def compile_check(schema: Any) -> Check:
    """A function that says whether a document satisfies ``schema`` (no references: inline them first)."""
    return _compile(schema)


def _compile(schema: Any) -> Check:
    if schema is True or schema is False:
        return _always(bool(schema))
    checks: list[Check] = []
    rest = dict(schema)
    for key in _ANNOTATIONS:
        rest.pop(key, None)
    if "type" in rest:
        names = rest.pop("type")
        checks.append(_some([_TYPES[name] for name in (names if isinstance(names, list) else [names])]))
    if "enum" in rest:
        options = rest.pop("enum")
        if all(isinstance(option, str) for option in options):  # a string equals only a string
            strings = frozenset(options)
            checks.append(lambda value: isinstance(value, str) and value in strings)
        else:
            checks.append(lambda value: any(_equal(value, option) for option in options))
    if "const" in rest:
        constant = rest.pop("const")
        if isinstance(constant, str):
            checks.append(lambda value: isinstance(value, str) and value == constant)
        else:
            checks.append(lambda value: _equal(value, constant))
    for key, test in _BOUNDS.items():
        if key in rest:
            checks.append(_bounded(test, rest.pop(key)))
    if "pattern" in rest:
        search = re.compile(rest.pop("pattern")).search
        checks.append(lambda value: not isinstance(value, str) or search(value) is not None)
    if "minLength" in rest:
        least = rest.pop("minLength")
        checks.append(lambda value: not isinstance(value, str) or len(value) >= least)
    if "maxLength" in rest:
        most = rest.pop("maxLength")
        checks.append(lambda value: not isinstance(value, str) or len(value) <= most)
    checks += _compile_array(rest)
    checks += _compile_object(rest)
    if "allOf" in rest:
        subs = rest.pop("allOf")
        checks.append(_by_constant(subs) or _every([_compile(sub) for sub in subs]))
    if "anyOf" in rest:
        checks.append(_some([_compile(sub) for sub in rest.pop("anyOf")]))
    if "oneOf" in rest:
        options_ = [_compile(sub) for sub in rest.pop("oneOf")]
        checks.append(lambda value: sum(1 for option in options_ if option(value)) == 1)
    if "not" in rest:
        negated = _compile(rest.pop("not"))
        checks.append(lambda value: not negated(value))
    if "if" in rest:
        condition = _compile(rest.pop("if"))
        then, otherwise = _compile(rest.pop("then", True)), _compile(rest.pop("else", True))
        checks.append(lambda value: then(value) if condition(value) else otherwise(value))
    if rest:
        raise ValueError(f"the fast schema check does not know the keywords {sorted(rest)}")
    return _every(checks) if checks else _always(True)


def _by_constant(subs: list[Any]) -> Check | None:
    """``allOf`` of ``if: {properties: {K: {const: C}}, required: [K]}, then: S`` (a stage's schema by its
    ``type``) as one lookup of the value's K instead of a test per branch; None for any other ``allOf``.

    A mapping without K, or whose K names no branch, meets every ``if`` falsely: true. A value that is no
    mapping meets every ``if`` (properties and required ignore it): it must meet every ``then``.
    """
    key: str | None = None
    thens: dict[str, list[Any]] = {}
    for sub in subs:
        condition = sub.get("if") if isinstance(sub, dict) and set(sub) == {"if", "then"} else None
        if not isinstance(condition, dict) or set(condition) != {"properties", "required"}:
            return None
        properties, required = condition["properties"], condition["required"]
        if not isinstance(properties, dict) or len(properties) != 1 or required != list(properties):
            return None
        ((name, constant),) = properties.items()
        if constant.keys() != {"const"} or not isinstance(constant["const"], str) or key not in (None, name):
            return None
        key = name
        thens.setdefault(constant["const"], []).append(sub["then"])
    if key is None:
        return None
    branches = {value: _every([_compile(then) for then in schemas]) for value, schemas in thens.items()}
    every = _every(list(branches.values()))

    def by_constant(value: Any) -> bool:
        if not isinstance(value, dict):
            return every(value)
        chosen = value.get(key)
        branch = branches.get(chosen) if isinstance(chosen, str) else None
        return branch is None or branch(value)

    return by_constant


def _compile_array(rest: dict[str, Any]) -> list[Check]:
    checks: list[Check] = []
    if "items" in rest:
        item = _compile(rest.pop("items"))

        def items(value: Any) -> bool:
            if isinstance(value, list):
                for entry in value:
                    if not item(entry):
                        return False
            return True

        checks.append(items)
    if "minItems" in rest:
        least = rest.pop("minItems")
        checks.append(lambda value: not isinstance(value, list) or len(value) >= least)
    if "maxItems" in rest:
        most = rest.pop("maxItems")
        checks.append(lambda value: not isinstance(value, list) or len(value) <= most)
    if rest.pop("uniqueItems", False):
        checks.append(_unique)
    return checks


def _compile_object(rest: dict[str, Any]) -> list[Check]:
    checks: list[Check] = []
    properties = {key: _compile(sub) for key, sub in rest.pop("properties", {}).items()}
    extra = _compile(rest.pop("additionalProperties")) if "additionalProperties" in rest else None
    if properties or extra is not None:
        # One pass over the mapping's own keys (a stage sets a few of its type's many properties): each
        # value meets its property's schema, or additionalProperties' when the key is not a property.
        def members(value: Any) -> bool:
            if isinstance(value, dict):
                for key, item in value.items():
                    check = properties.get(key, extra)
                    if check is not None and not check(item):
                        return False
            return True

        checks.append(members)
    if "propertyNames" in rest:
        name = _compile(rest.pop("propertyNames"))
        checks.append(lambda value: not isinstance(value, dict) or all(name(key) for key in value))
    if "required" in rest:
        needed = frozenset(rest.pop("required"))
        checks.append(lambda value: not isinstance(value, dict) or needed <= value.keys())
    if "minProperties" in rest:
        least = rest.pop("minProperties")
        checks.append(lambda value: not isinstance(value, dict) or len(value) >= least)
    if "dependentSchemas" in rest:
        dependent = {key: _compile(sub) for key, sub in rest.pop("dependentSchemas").items()}
        checks.append(
            lambda value: (
                not isinstance(value, dict)
                or all(check(value) for key, check in dependent.items() if key in value)
            )
        )
    return checks
