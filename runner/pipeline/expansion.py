"""What matrix expansion gives the rest of validation: the document with every ``matrix:`` stage replaced by
its members, which member is whose, and the problems found.

The expanding itself is runner.pipeline.matrix's, imported only for a file that has a matrix stage (or a
stage id with the members' separator, which it refuses): most pipelines have none, and ``qfrun validate``
then compiles none of it (issue 17, P1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from runner.errors import Issue
from runner.pipeline.yamlio import Document

SEPARATOR: Final = "@"  # between the family and the values: never in a declared stage id


@dataclass(frozen=True)
class Member:
    id: str
    family: str
    values: Mapping[str, Any]  # every key of the family; None where this member has none


@dataclass(frozen=True)
class Expansion:
    document: Document  # the stages with every family replaced by its members
    members: Mapping[str, Member] = field(default_factory=dict)
    families: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # member ids in order
    issues: list[Issue] = field(default_factory=list)


def expand(document: Document) -> Expansion:
    """The document with every ``matrix:`` stage replaced by its members, or the problems of its matrices."""
    stages = document.data.get("stages") if isinstance(document.data, Mapping) else None
    if isinstance(stages, Mapping) and any(_expands(stage_id, body) for stage_id, body in stages.items()):
        from runner.pipeline import matrix

        return matrix.expand(document)
    return Expansion(document)


def _expands(stage_id: Any, body: Any) -> bool:
    """Whether the matrix expander has anything to say of a stage: it has a matrix, or an id it refuses."""
    return (isinstance(stage_id, str) and SEPARATOR in stage_id) or (
        isinstance(body, Mapping) and "matrix" in body
    )
