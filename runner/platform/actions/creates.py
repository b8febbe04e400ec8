"""Exactly-once creates: a create whose answer was lost, or that is refused because its name is taken, is
settled by looking up what carries its name (or description) before anything is created again.

Qianfan documents no idempotency token for its creates (reference §7.4), so qfrun's names are
deterministic digests of what a stage wants, and a resource of that name is the one the create wanted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from runner.errors import PlatformQueueFull, PlatformStatusError
from runner.platform import polling
from runner.platform.actions.session import Session
from runner.platform.http import AmbiguousCreate, Reply

log = logging.getLogger(__name__)
T = TypeVar("T")


def says_name_taken(code: str | int | None) -> bool:
    """Error codes that say a name is already used; the official pages document none for the task creates, so
    this reads the usual spellings (a 409 status is read the same way)."""
    text = str(code or "").lower()
    return any(word in text for word in ("duplicate", "alreadyexist", "conflict", "nameexist"))


def name_taken(refused: PlatformStatusError) -> bool:
    return refused.status == 409 or says_name_taken(refused.code)


def create_named(
    session: Session,
    route: str,
    action: str,
    body: Mapping[str, Any],
    parse: Callable[[Any], T],
    find: Callable[[], T | None],
) -> tuple[T, bool]:
    """A create whose name finds what it made: its parsed result and True; when its answer was lost, or
    the name is taken (409, or a code that says so), what ``find`` finds by the name and False."""
    try:
        reply = session.http.console(route, action, body, create=True)
    except AmbiguousCreate as unknown:
        found = find()  # the answer was lost: the name finds what it made
        if found is None:
            raise unknown.error from None
        return found, False
    except PlatformStatusError as refused:
        found = find() if name_taken(refused) else None
        if found is None:
            raise
        return found, False
    return session.parse(reply, parse, reply.body["result"]), True


def create_once(
    session: Session,
    route: str,
    action: str,
    body: Mapping[str, Any],
    *,
    created: Callable[[Reply], T],
    find: Callable[[], T | None],
    looking: str,
    adopted: Callable[[PlatformStatusError, T], None] | None = None,
    wait_for_a_slot: str = "",
) -> T:
    """One create whose outcome, when the answer is lost, is settled by ``find`` (a lookup by the name or
    description the create carried) before it is sent again, up to the settings' ``max_retries`` times
    with the HTTP session's backoff; a taken name adopts what holds it (``adopted`` hears of it).

    ``looking`` says in the log what ``find`` looks up. With ``wait_for_a_slot`` (what is being created,
    for the log), a create refused because the account runs as many tasks as it may is sent again every
    ``polling.QUEUE_WAIT_S`` for up to ``polling.QUEUE_WAIT_LIMIT_S``: a running task ends within that.
    """
    slots = polling.Wait(
        session.http.pause, polling.Schedule(polling.QUEUE_WAIT_S), limit_s=polling.QUEUE_WAIT_LIMIT_S
    )
    retries = polling.Wait(session.http.pause, session.http.backoff, tries=session.settings.max_retries)
    while True:
        try:
            reply = session.http.console(route, action, body, create=True)
        except PlatformQueueFull as full:
            if not wait_for_a_slot or slots.spent:
                raise
            log.warning(
                "waiting: %s; qfrun tries to create %s again in %.0f s.",
                full,
                wait_for_a_slot,
                slots.next_pause,
            )
            slots.pause()
            continue
        except AmbiguousCreate as ambiguous:
            log.warning("%s; %s before creating it again.", ambiguous.error, looking)
            found = find()
            if found is not None:
                return found
            if retries.spent:
                raise ambiguous.error from None
            retries.pause()
            continue
        except PlatformStatusError as refused:
            found = find() if name_taken(refused) else None
            if found is None:
                raise
            if adopted is not None:
                adopted(refused, found)
            return found
        return created(reply)
