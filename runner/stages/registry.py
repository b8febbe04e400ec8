"""The registry of stage types: the one place the runner looks a stage's ``type`` up.

Validation, the DAG, the fingerprint, the plan, the executor and the report all ask the registered
``StageType`` rather than compare type names, so a new stage type is one module that registers itself
(docs/adding-a-stage-type.md). The five built-in types register when ``runner.stages`` is imported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from runner.stages.base import StageType, fields_arguments

AnyStageType = StageType[Any, Any]  # each type's fields differ; the runner hands it mappings (planned_fields)
_TYPES: dict[str, AnyStageType] = {}
STAGE_TYPES: Mapping[str, AnyStageType] = MappingProxyType(_TYPES)  # read-only view; ``register`` adds
# The type sets below, made once per set of registered types: every reference of every stage asks for one
# while validating and again while planning (issue 17, P2). ``register`` and ``unregister`` empty it.
_SETS: dict[str, frozenset[str]] = {}


class RegistryError(Exception):
    """A stage type registered twice, or without a name: a programming error, raised at import."""


def register(stage_type: AnyStageType) -> AnyStageType:
    """Add ``stage_type`` under its name; a name taken by another type is refused."""
    name = getattr(stage_type, "name", "")
    if not isinstance(name, str) or not name:
        raise RegistryError(f"{type(stage_type).__name__} has no name; set the class attribute 'name'.")
    if fields_arguments(type(stage_type)) is None:
        raise RegistryError(
            f"{type(stage_type).__name__} declares no fields: subclass StageType[Fields, Fields] with the "
            "dataclass of its fields (docs/adding-a-stage-type.md)."
        )
    if _TYPES.get(name, stage_type) is not stage_type:
        raise RegistryError(f"the stage type {name!r} is registered already ({type(_TYPES[name]).__name__}).")
    _TYPES[name] = stage_type
    _SETS.clear()
    return stage_type


def unregister(name: str) -> None:
    """Remove a stage type (tests that register a plugin for one test use it to leave no trace)."""
    _TYPES.pop(name, None)
    _SETS.clear()


def model_producers() -> frozenset[str]:
    """The types whose stages output a model version, which model fields accept."""
    found = _SETS.get("model")
    if found is None:
        found = _SETS["model"] = frozenset(name for name, kind in _TYPES.items() if kind.produces_model)
    return found


def chat_servers() -> frozenset[str]:
    """The types whose stages output a chat service (a judge may be one)."""
    found = _SETS.get("chat")
    if found is None:
        found = _SETS["chat"] = frozenset(name for name, kind in _TYPES.items() if kind.serves_chat)
    return found


def plugin_schemas() -> Iterator[tuple[str, Mapping[str, object]]]:
    """The schema of every registered type that brings its own (the built-ins' are in the schema file)."""
    for name, stage_type in _TYPES.items():
        if stage_type.schema is not None:
            yield name, stage_type.schema
