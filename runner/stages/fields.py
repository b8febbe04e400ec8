"""Typed stage fields: each stage type declares a frozen dataclass of its fields, built once from the mapping.

The schema has already checked the shapes of what the pipeline writes, so this converter only has to
catch what the schema could not see: a ``${{ }}`` expression that resolved to a value of the wrong type
(``replicas: ${{ vars.n }}`` with ``n: "3"``). That is a ``StageError`` naming the stage and the field, never
a ``TypeError`` deep in a stage's code.

A field's Python type says what it holds:

- ``str``, ``int``, ``float``, ``bool``, ``Literal[...]``, ``X | None`` (None: the pipeline leaves it out);
- ``tuple[X, ...]`` for a list, ``Mapping[str, X]`` for a mapping of names, a nested dataclass for an object,
  and a union of dataclasses for a list of objects told apart by a ``Literal`` field (``kind: rule``);
- ``X | V`` (``V`` the type variable of a generic fields class) where the schema admits an expression in place
  of a non-string value. A plan is made before the run, when such a value may not be known yet: the expression
  as written, ``(known after x runs)`` or ``(sensitive)``. The plan's view of the fields is the class
  parameterised with ``Unresolved`` (that text, as a ``str``); the run's view is the class parameterised with
  ``Never``, so that ``int | V`` is plain ``int`` there and mypy checks every use. A string field needs no
  ``V``: the text is a string too.

A YAML key that is a Python keyword is given by ``written_as`` (``import_: ... = written_as("import")``).
The stdlib alone is used: ``qfrun validate`` imports every stage type, and it stays light.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

from runner.errors import StageError

V = TypeVar("V")  # Never where a stage runs, Unresolved in a plan (see the module's docstring)
T = TypeVar("T")

_KEY = "qfrun.key"  # dataclass field metadata: the YAML key, where it is not the field's name


class Unresolved(str):
    """A value a plan shows as text because only the run knows it: an expression as written (one that
    failed, for a stage that will not run), ``(known after x runs)`` or ``(sensitive)``."""


def written_as(key: str, default: Any = dataclasses.MISSING) -> Any:
    """A field whose YAML key is not its Python name (a keyword: ``import``)."""
    return dataclasses.field(default=default, metadata={_KEY: key})


def key_of(field: dataclasses.Field[Any]) -> str:
    return str(field.metadata.get(_KEY, field.name))


def build(cls: type[T], values: Mapping[str, Any], *, where: str, planned: bool = False) -> T:
    """``cls`` from a stage's fields; ``where`` names the stage (``stages.x``) in errors.

    ``planned``: a plan's fields, where a value that may be an expression (``X | V``) and is text stays as
    ``Unresolved`` text; otherwise (a run's resolved fields) every value must have its declared type.
    """
    plain = typing.get_origin(cls) or cls  # Sample[Never] -> Sample: the parameter is ``planned``'s business
    return typing.cast(T, _Converter(planned).dataclass(plain, values, where))


def written(value: Any) -> Any:
    """Fields back as the pipeline writes them (JSON values: what a platform task's parameters carry); a
    field that is None was left out and stays out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            key_of(field): written(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if getattr(value, field.name) is not None
        }
    if isinstance(value, tuple):
        return [written(item) for item in value]
    if isinstance(value, Mapping):
        return {key: written(item) for key, item in value.items()}
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


# What the converter asks of a class or a type hint, worked out once per class or hint: every stage of a run
# builds its fields, and asking ``typing`` and ``dataclasses`` again each time was most of it (issue 17, P3).


@dataclasses.dataclass(frozen=True)
class _Slot:
    name: str
    key: str  # the YAML key
    hint: Any
    required: bool


@functools.cache
def _slots(cls: type) -> tuple[tuple[_Slot, ...], frozenset[str]]:
    """The class's fields as the converter fills them, and the keys they are written as."""
    hints = _hints(cls)
    slots = tuple(
        _Slot(
            field.name,
            key_of(field),
            hints[field.name],
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING,
        )
        for field in dataclasses.fields(cls)
    )
    return slots, frozenset(slot.key for slot in slots)


@functools.cache
def _shape(hint: Any) -> tuple[Any, tuple[Any, ...], type | None]:
    """A hint's origin (``tuple`` for ``tuple[X, ...]``), its arguments, and the dataclass it names."""
    origin = typing.get_origin(hint)
    named = origin or hint
    cls = named if dataclasses.is_dataclass(named) and isinstance(named, type) else None
    return origin, typing.get_args(hint), cls


@functools.cache
def _union_members(hint: Any) -> tuple[tuple[Any, ...], tuple[Any, ...], bool]:
    """A union's members that are types (its ``V`` left out), those of them that are dataclasses, and
    whether ``V`` was among its members."""
    members = typing.get_args(hint)
    choices = tuple(member for member in members if not isinstance(member, TypeVar))
    objects = tuple(member for member in choices if _shape(member)[2] is not None)
    return choices, objects, len(choices) < len(members)


def _describe(hint: Any) -> str:
    """How a message names a type: ``an integer``, ``one of 'a', 'b'``."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        shown = [_describe(arg) for arg in typing.get_args(hint) if not isinstance(arg, TypeVar)]
        return " or ".join(shown)
    if origin is tuple:
        return "a list"
    if origin in (Mapping, dict) or dataclasses.is_dataclass(origin or hint):
        return "a mapping"
    names = {str: "a text", int: "an integer", float: "a number", bool: "true or false", type(None): "null"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _shown(value: Any) -> str:
    kind = {str: "the text", bool: "the boolean", int: "the integer", float: "the number"}.get(type(value))
    if kind is not None:
        return f"{kind} {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return "null" if value is None else type(value).__name__


class _Mismatch(Exception):
    """A value is not of its field's type; ``path`` is where, below the stage."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


class _Converter:
    def __init__(self, planned: bool) -> None:
        self._planned = planned

    def dataclass(self, cls: type, values: Mapping[str, Any], where: str) -> Any:
        try:
            return self._object(cls, values, "")
        except _Mismatch as error:
            raise StageError(f"{where}{error.path}: {error}") from None

    def _object(self, cls: type, values: Any, path: str) -> Any:
        if not isinstance(values, Mapping):
            raise _Mismatch(path, f"expected a mapping, got {_shown(values)}.")
        slots, declared = _slots(cls)
        unknown = sorted(str(key) for key in values if key not in declared)
        if unknown:
            raise _Mismatch(path, f"{unknown[0]!r} is not a field this stage type declares.")
        given: dict[str, Any] = {}
        for slot in slots:
            if slot.key in values:
                given[slot.name] = self._value(slot.hint, values[slot.key], f"{path}.{slot.key}")
            elif slot.required:
                raise _Mismatch(f"{path}.{slot.key}", "this field is required but missing.")
        return cls(**given)

    def _value(self, hint: Any, value: Any, path: str) -> Any:
        if hint is Any:
            return value
        origin, args, cls = _shape(hint)
        if origin in (Union, types.UnionType):
            return self._union(hint, value, path)
        if origin is Literal:
            if any(value == choice and type(value) is type(choice) for choice in args):
                return value
        elif origin is tuple:
            if isinstance(value, list | tuple):
                item = args[0]
                return tuple(self._value(item, each, f"{path}.{index}") for index, each in enumerate(value))
        elif origin is Mapping or origin is dict:
            if isinstance(value, Mapping):
                item = args[1]
                return {str(key): self._value(item, each, f"{path}.{key}") for key, each in value.items()}
        elif cls is not None:
            return self._object(cls, value, path)
        elif _is_scalar(hint, value):
            return value
        raise _Mismatch(path, f"expected {_describe(hint)}, got {_shown(value)}.")

    def _union(self, hint: Any, value: Any, path: str) -> Any:
        choices, objects, expression = _union_members(hint)
        if value is None and type(None) in choices:
            return None
        if len(objects) > 1 and isinstance(value, Mapping):
            return self._object(_discriminated(list(objects), value, path), value, path)
        for member in choices:
            try:
                return self._value(member, value, path)
            except _Mismatch as error:
                if error.path != path:  # it matched this member's shape, and failed below it: say where
                    raise
        if self._planned and expression and isinstance(value, str):
            return Unresolved(value)
        raise _Mismatch(path, f"expected {_describe(hint)}, got {_shown(value)}.")


def _is_scalar(hint: Any, value: Any) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # JSON has one number type: an integer is a number too
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return False


def _discriminated(members: list[Any], value: Mapping[str, Any], path: str) -> type:
    """The member of a union of dataclasses whose ``Literal`` fields (``kind: Literal["rule"]``) the value
    matches; the schema tells the evaluators of a list apart the same way."""
    tags: list[str] = []
    for member in members:
        cls = typing.get_origin(member) or member
        hints = _hints(cls)
        literals = [
            field for field in dataclasses.fields(cls) if typing.get_origin(hints[field.name]) is Literal
        ]
        if literals and all(
            value.get(key_of(field)) in typing.get_args(hints[field.name]) for field in literals
        ):
            return typing.cast(type, cls)
        tags += [f"{key_of(field)}: {typing.get_args(hints[field.name])[0]}" for field in literals[:1]]
    raise _Mismatch(path, f"expected a mapping with one of {', '.join(tags)}.")
