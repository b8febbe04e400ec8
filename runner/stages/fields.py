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
from collections.abc import Callable, Mapping
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
    """A value is not of its field's type; ``path`` is where, below the value whose converter raised it
    (``.evaluators.0.kind``); each container above puts its own key in front."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


# A converter takes a value and returns it typed, or raises _Mismatch with the path below that value where it
# failed (``""``: the value itself); each container puts its key in front on the way up, so a path is made
# only for an error. One converter is made per (type, planned) and kept: a plan builds every stage's fields,
# and reading the type hints again for each (get_origin, get_args, dataclasses.fields) was most of that time.
_Convert = Callable[[Any], Any]


class _Converter:
    def __init__(self, planned: bool) -> None:
        self._planned = planned

    def dataclass(self, cls: type, values: Mapping[str, Any], where: str) -> Any:
        try:
            return _object_converter(cls, self._planned)(values)
        except _Mismatch as error:
            raise StageError(f"{where}{error.path}: {error}") from None


def _below(error: _Mismatch, key: object) -> _Mismatch:
    error.path = f".{key}{error.path}"
    return error


@functools.cache
def _object_converter(cls: type, planned: bool) -> _Convert:
    """The converter of a mapping into the dataclass ``cls``; its fields' converters are made on first use
    (a dataclass may name itself below)."""
    fields = dataclasses.fields(cls)
    declared = frozenset(key_of(field) for field in fields)
    made: list[tuple[str, str, bool, _Convert]] | None = None

    def convert(values: Any) -> Any:
        nonlocal made
        if type(values) is not dict and not isinstance(values, Mapping):
            raise _Mismatch("", f"expected a mapping, got {_shown(values)}.")
        if not declared.issuperset(values):
            unknown = sorted(str(key) for key in values if key not in declared)
            raise _Mismatch("", f"{unknown[0]!r} is not a field this stage type declares.")
        entries = made
        if entries is None:  # whole before it is shared: the executor builds fields in several threads
            hints = _hints(cls)
            entries = made = [
                (
                    field.name,
                    key_of(field),
                    field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING,
                    _converter(hints[field.name], planned),
                )
                for field in fields
            ]
        given: dict[str, Any] = {}
        for name, key, required, value_of in entries:
            if key in values:
                try:
                    given[name] = value_of(values[key])
                except _Mismatch as error:
                    raise _below(error, key) from None
            elif required:
                raise _Mismatch(f".{key}", "this field is required but missing.")
        return cls(**given)

    return convert


def _converter(hint: Any, planned: bool) -> _Convert:
    """The converter of one value of type ``hint`` (see the module's docstring for the types)."""
    if hint is Any:
        return lambda value: value
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return _union_converter(hint, planned)

    def mismatch(value: Any) -> _Mismatch:
        return _Mismatch("", f"expected {_describe(hint)}, got {_shown(value)}.")

    if origin is Literal:
        choices = typing.get_args(hint)

        def literal(value: Any) -> Any:
            if any(value == choice and type(value) is type(choice) for choice in choices):
                return value
            raise mismatch(value)

        return literal
    if origin is tuple:
        item_of = _converter(typing.get_args(hint)[0], planned)

        def sequence(value: Any) -> Any:
            if not isinstance(value, list | tuple):
                raise mismatch(value)
            items = []
            for index, each in enumerate(value):
                try:
                    items.append(item_of(each))
                except _Mismatch as error:
                    raise _below(error, index) from None
            return tuple(items)

        return sequence
    if origin is Mapping or origin is dict:
        entry_of = _converter(typing.get_args(hint)[1], planned)

        def mapping(value: Any) -> Any:
            if not isinstance(value, Mapping):
                raise mismatch(value)
            entries = {}
            for key, each in value.items():
                try:
                    entries[str(key)] = entry_of(each)
                except _Mismatch as error:
                    raise _below(error, key) from None
            return entries

        return mapping
    if dataclasses.is_dataclass(origin or hint):
        return _object_converter(origin or hint, planned)

    def scalar(value: Any) -> Any:
        if _is_scalar(hint, value):
            return value
        raise mismatch(value)

    return scalar


def _union_converter(hint: Any, planned: bool) -> _Convert:
    members = typing.get_args(hint)
    optional = type(None) in members
    choices = [member for member in members if not isinstance(member, TypeVar)]
    objects = [member for member in choices if dataclasses.is_dataclass(typing.get_origin(member) or member)]
    tagged = len(objects) > 1
    converters = [_converter(member, planned) for member in choices]
    # a value of the type variable (an expression the plan cannot resolve) stays as its text
    unresolved = planned and len(choices) < len(members)

    def union(value: Any) -> Any:
        if value is None and optional:
            return None
        if tagged and isinstance(value, Mapping):
            return _object_converter(_discriminated(objects, value), planned)(value)
        for convert in converters:
            try:
                return convert(value)
            except _Mismatch as error:
                if error.path:  # it matched this member's shape, and failed below it: say where
                    raise
        if unresolved and isinstance(value, str):
            return Unresolved(value)
        raise _Mismatch("", f"expected {_describe(hint)}, got {_shown(value)}.")

    return union


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


def _discriminated(members: list[Any], value: Mapping[str, Any]) -> type:
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
    raise _Mismatch("", f"expected a mapping with one of {', '.join(tags)}.")
