"""The records the state file holds (one per stage, one per run) and their strict JSON round trip.

Kept apart from ``state.py`` (which owns the files on disk) so that the shape of a record is read in one
place; ``runner.state.file`` re-exports everything here. ``from_json`` checks every type, because a state
file edited by hand must fail with the key that is wrong (``stages.x.status``), never later with a
``KeyError`` in the executor.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any

from runner.errors import StateError

RUN_STATUSES = ("running", "succeeded", "failed", "waiting", "interrupted")
_LAST_SUCCESS_TEXT = ("fingerprint", "run_id", "finished_at")


class StageStatus(enum.StrEnum):
    """Where a stage is: pending → submitted → running (→ waiting) → succeeded | failed | skipped.

    ``waiting``: its task waits for people (a manual evaluation's scores); the run ended there, and the next
    run re-attaches to the same task."""

    PENDING = "pending"
    SUBMITTED = "submitted"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        """True when the stage is finished for this run (a resume trusts it and does not re-attach)."""
        return self in (StageStatus.SUCCEEDED, StageStatus.FAILED, StageStatus.SKIPPED)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise StateError(f"{where} should be a string, not {_show(value)}.")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StateError(f"{where} should be an object, not {_show(value)}.")
    return value


def _text_map(value: Any, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    for key, item in _object(value, where).items():
        _text(item, f"{where}.{key}")
    return dict(value)


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise StateError(f"{where} should be a whole number of at least 0, not {_show(value)}.")
    return value


def _last_success(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    data = _object(value, where)
    for key in _LAST_SUCCESS_TEXT:
        if key in data:
            _text(data[key], f"{where}.{key}")
    if "outputs" in data:
        _object(data["outputs"], f"{where}.outputs")
    if "task" in data:
        _text_map(data["task"], f"{where}.task")
    return dict(data)


def _check_keys(data: dict[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise StateError(f"{where}.{unknown[0]} is not a key this qfrun knows.")


@dataclass
class StageRecord:
    """What the state says about one stage: its status, the task that does its work and its outputs."""

    status: StageStatus = StageStatus.PENDING
    fingerprint: str = ""
    run_id: str = ""
    attempt: int = 0
    intent: dict[str, str] | None = None
    task: dict[str, str] | None = None
    rows_done: int | None = None
    rows_total: int | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    reason: str = ""
    started_at: str = ""
    finished_at: str = ""
    last_success: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON values, every key present (the state schema requires them)."""
        return {
            "status": self.status.value,
            "fingerprint": self.fingerprint,
            "run_id": self.run_id,
            "attempt": self.attempt,
            "intent": self.intent,
            "task": self.task,
            "rows_done": self.rows_done,
            "rows_total": self.rows_total,
            "outputs": self.outputs,
            "error": self.error,
            "reason": self.reason,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "last_success": self.last_success,
        }

    @classmethod
    def from_json(cls, data: Any, *, where: str) -> StageRecord:
        """Read a record back; a wrong type raises ``StateError`` naming the key (``stages.x.status``)."""
        obj = _object(data, where)
        _check_keys(obj, _STAGE_KEYS, where)
        status = obj.get("status")
        if not isinstance(status, str) or status not in _STATUS_VALUES:
            raise StateError(
                f"{where}.status should be one of {', '.join(_STATUS_VALUES)}, not {_show(status)}."
            )
        attempt = _count(obj.get("attempt", 0), f"{where}.attempt")
        return cls(
            status=StageStatus(status),
            fingerprint=_text(obj.get("fingerprint", ""), f"{where}.fingerprint"),
            run_id=_text(obj.get("run_id", ""), f"{where}.run_id"),
            attempt=attempt if attempt is not None else 0,
            intent=_text_map(obj.get("intent"), f"{where}.intent"),
            task=_text_map(obj.get("task"), f"{where}.task"),
            rows_done=_count(obj.get("rows_done"), f"{where}.rows_done"),
            rows_total=_count(obj.get("rows_total"), f"{where}.rows_total"),
            outputs=dict(_object(obj.get("outputs", {}), f"{where}.outputs")),
            error=_text(obj.get("error", ""), f"{where}.error"),
            reason=_text(obj.get("reason", ""), f"{where}.reason"),
            started_at=_text(obj.get("started_at", ""), f"{where}.started_at"),
            finished_at=_text(obj.get("finished_at", ""), f"{where}.finished_at"),
            last_success=_last_success(obj.get("last_success"), f"{where}.last_success"),
        )


@dataclass
class RunRecord:
    """One ``qfrun run`` of the pipeline: when, how it ended, what command and which stages it selected."""

    run_id: str
    started_at: str
    finished_at: str = ""
    status: str = "running"
    command: str = ""
    selected: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The run as plain JSON values."""
        return {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "command": self.command,
            "selected": list(self.selected),
        }

    @classmethod
    def from_json(cls, data: Any, *, where: str) -> RunRecord:
        """Read a run back; a wrong type raises ``StateError`` naming the key (``runs[3].status``)."""
        obj = _object(data, where)
        _check_keys(obj, _RUN_KEYS, where)
        status = obj.get("status", "running")
        if status not in RUN_STATUSES:
            raise StateError(
                f"{where}.status should be one of {', '.join(RUN_STATUSES)}, not {_show(status)}."
            )
        selected = obj.get("selected", [])
        if not isinstance(selected, list):
            raise StateError(f"{where}.selected should be a list of stage ids, not {_show(selected)}.")
        return cls(
            run_id=_text(obj.get("run_id"), f"{where}.run_id"),
            started_at=_text(obj.get("started_at"), f"{where}.started_at"),
            finished_at=_text(obj.get("finished_at", ""), f"{where}.finished_at"),
            status=status,
            command=_text(obj.get("command", ""), f"{where}.command"),
            selected=[_text(item, f"{where}.selected[{index}]") for index, item in enumerate(selected)],
        )


_STATUS_VALUES = tuple(status.value for status in StageStatus)
_STAGE_KEYS = frozenset(item.name for item in fields(StageRecord))
_RUN_KEYS = frozenset(item.name for item in fields(RunRecord))
