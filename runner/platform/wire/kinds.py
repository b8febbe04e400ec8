"""The task kinds of the console API: what the client knows of each, in one table entry (``KindApi``).

An entry holds a kind's route, actions, id and name fields, list fields and status words, and the hooks that
turn a request into its create body and a describe result into the task's outcome. Each kind's entry lives in
its own module (``batch``, ``evaluation``, ``compression``, ``services``), which registers it; importing
``runner.platform.wire`` fails for a kind that has no entry, so a new kind cannot fall through to another
kind's handling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.platform.protocol import (
    TaskKind,
    TaskRequest,
    TaskStatus,
)
from runner.platform.wire.fields import WireError, opt_str, req_str

# (request, model set id, local) -> the create action's body; ``local`` adds the local platform's documented
# extensions, which are never sent to Qianfan.
CreateBody = Callable[[TaskRequest, str, bool], dict[str, Any]]
# (describe result, status, report or None) -> the task's outcome (TaskInfo.result)
Outcome = Callable[[Mapping[str, Any], TaskStatus, Any], dict[str, Any]]


# (describe result, status) -> what the task reports as it goes (TaskInfo.live): name -> number
Live = Callable[[Mapping[str, Any], TaskStatus], dict[str, float]]


# (request, local) -> the parent's create body (a fine-tuning job [F1])
ParentBody = Callable[[TaskRequest, bool], dict[str, Any]]


@dataclass(frozen=True)
class ParentApi:
    """A resource a kind's task is created inside, such as the fine-tuning job of a fine-tuning task [F1][F2].

    The client finds it by the task's deterministic name, or creates it under that name, and the executor
    records its id in the stage's intent before the task is created: a crash between the two creates finds the
    parent again instead of making a second one, and a crash after the task's create finds the task among the
    parent's children (``child_filter``), since every child of a parent made for one intent is that intent's.
    """

    create: str
    list: str
    list_field: str
    name_field: str
    id_field: str  # names the parent in the create's result and in list items
    param: str  # the request parameter (and intent key) the parent's id goes into
    child_filter: str  # the field of the kind's list request that narrows it to one parent's children
    create_body: ParentBody


def failed_reason(data: Mapping[str, Any], status: TaskStatus) -> str:
    """Why a task failed, as most describe results say it (``failedReason``)."""
    return opt_str(data, "failedReason")


def no_outcome(data: Mapping[str, Any], status: TaskStatus, report: Any) -> dict[str, Any]:
    return {}


def no_live(data: Mapping[str, Any], status: TaskStatus) -> dict[str, float]:
    return {}


@dataclass(frozen=True)
class KindApi:
    """The actions, field names, status words and hooks of one task kind."""

    kind: TaskKind
    route: str
    create: str
    describe: str
    list: str
    cancel: str
    request_id_field: str  # names the task in describe and cancel requests
    result_id_field: str  # names the task in describe results and list items
    name_field: str  # the task's name, in create requests and list items
    list_field: str  # the array of a list result
    list_filter: str | None  # the request field that narrows a list by name (fuzzy), if any
    list_fixed: Mapping[str, Any]  # fields a list request must carry
    status_field: str
    status_words: Mapping[str, TaskStatus]  # every documented word, spelt as documented
    create_body: CreateBody
    outcome: Outcome = no_outcome
    message: Callable[[Mapping[str, Any], TaskStatus], str] = failed_reason
    bare_created_id: bool = False  # the create's ``result`` is the new id itself, not an object naming it
    needs_model_set: bool = False  # the create names the model set of ``params.model_version_id``
    report_action: str | None = None  # fetched once the task succeeded; its result goes to ``outcome``
    parent: ParentApi | None = None  # created (once) before the task, which is created inside it
    live: Live = no_live  # what a describe result says of the task as it goes (a running loss)

    def status_word(self, status: TaskStatus) -> str:
        """The first documented word for ``status`` (what the local platform answers)."""
        return next(word for word, value in self.status_words.items() if value is status)


KIND_API: dict[TaskKind, KindApi] = {}


def register(api: KindApi) -> KindApi:
    """Add a kind's entry; one entry per kind."""
    if KIND_API.get(api.kind, api) is not api:
        raise ValueError(f"the task kind {api.kind.value!r} has an entry already")
    KIND_API[api.kind] = api
    return api


def unregister(kind: TaskKind) -> None:
    """Remove a kind's entry (a test that adds a kind for one test leaves no trace)."""
    KIND_API.pop(kind, None)


def check_complete() -> None:
    """Every defined task kind has an entry: called when ``runner.platform.wire`` is imported."""
    missing = [kind.value for kind in TaskKind.known() if kind not in KIND_API]
    if missing:
        raise ImportError(
            f"the task kinds {', '.join(missing)} have no wire entry (runner.platform.wire.kinds)"
        )


def status_of(kind: TaskKind, data: Mapping[str, Any]) -> TaskStatus:
    """The status a describe result names, from the kind's documented words (matched case-insensitively)."""
    api = KIND_API[kind]
    word = req_str(data, api.status_field)
    for known, status in api.status_words.items():
        if known.lower() == word.lower():
            return status
    words = ", ".join(api.status_words)
    raise WireError(f"the field 'result.{api.status_field}' has the unknown status {word!r} (known: {words})")
