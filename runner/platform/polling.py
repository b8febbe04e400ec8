"""How the platform client waits: a schedule of pauses, a budget, and the client's one pause seam.

Every wait of the client is the same loop: ask, stop when the answer is settled, else pause and ask again
until the wait's budget is spent. That holds for a model version still Creating, a dataset import, a result
export, a create refused because the account's task slots are full and a create whose answer was lost. The
HTTP and BOS retries of one request are waits too: their tries counted by a ``Wait``, their jittered delays
from ``Backoff``.

The pauses go through the pause the caller hands in (``PlatformHttp.pause``: ``time.sleep`` unless a test
gave the client its own), so tests run without sleeping and see every pause. A budget counts the seconds
paused (and the pauses made), not the time the asks took: a fake pause gives up at the same ask a real run
would, and a slow platform does not shorten the wait it was given.

Nothing here catches an exception: a ``KeyboardInterrupt`` (or an error) raised by the pause or by an ask
leaves the wait at once, unchanged, and whatever the caller recorded before waiting (an export's id, say)
stays recorded for the next run.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")
MAX_RETRY_AFTER_S = 120.0  # a Retry-After longer than this is not honoured in full


class Delays(Protocol):
    """The length of pause ``number`` (0-based) of a wait."""

    def __call__(self, number: int, /) -> float: ...


@dataclass(frozen=True)
class Schedule:
    """Pauses of ``first`` seconds, each ``factor`` times the one before, never longer than ``longest``."""

    first: float
    factor: float = 1.0
    longest: float = math.inf

    def __call__(self, number: int, /) -> float:
        try:
            grown = self.first * self.factor**number
        except OverflowError:  # a very long wait at a factor above 1: long since at the ceiling
            grown = math.inf
        return min(grown, self.longest)


# Every wait's pacing, in one place. The limits are module attributes read at each wait, so a test may
# shorten one. A task's own status is polled by the executor at its platform kind's pace
# (``registry.PollPolicy``), on a ``Schedule`` made from it (runner.run.context).
IMPORT_POLL = Schedule(1.0, 2.0, 30.0)  # DescribeModel or DescribeImportTask while an import runs
IMPORT_WAIT_LIMIT_S = 6 * 3600.0  # how long a model or dataset import may run before qfrun gives up
EXPORT_POLL_S = 2.0  # between DescribeEvalResultExportTask calls while the export is Queued or Running
EXPORT_WAIT_S = 600.0  # then the stage keeps its metrics without records (a resumed attempt reuses it)
QUEUE_WAIT_S = 30.0  # between creates refused because the account's task slots are full
QUEUE_WAIT_LIMIT_S = 24 * 3600.0  # a batch task runs at most 24 h [B2], so one slot frees within that


@dataclass(frozen=True)
class Backoff:
    """Jittered exponential delays for retries: pause ``n`` lies within half and all of ``min(cap, base *
    2**n)`` (so clients that failed together do not retry together), and is at least a Retry-After the
    platform sent, up to ``MAX_RETRY_AFTER_S``."""

    base: float
    cap: float
    rng: Callable[[], float] = field(default=random.random)

    def __call__(self, number: int, /, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * float(2**number))
        delay = ceiling / 2 + self.rng() * ceiling / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
        return delay


class Wait:
    """One wait's pauses, counted against its budget: ``limit_s`` seconds paused, ``tries`` pauses made.

    The budget is checked before a pause, so the last pause may carry the total past ``limit_s`` (a wait of
    2 s with pauses of 1, 2, 4 s gives up after 3 s); a caller reports ``waited``, the seconds it paused.
    """

    def __init__(
        self,
        pause: Callable[[float], None],
        delays: Delays,
        *,
        limit_s: float = math.inf,
        tries: int | None = None,
    ) -> None:
        self._pause = pause
        self._delays = delays
        self._limit_s = limit_s
        self._tries = tries
        self.waited = 0.0
        self.pauses = 0

    @property
    def spent(self) -> bool:
        """Whether the budget is used up: the caller gives up instead of pausing again."""
        return self.waited >= self._limit_s or (self._tries is not None and self.pauses >= self._tries)

    @property
    def next_pause(self) -> float:
        return self._delays(self.pauses)

    def pause(self, seconds: float | None = None) -> None:
        """Pause for the schedule's next delay (or ``seconds``, when the caller worked them out: a retry
        that honours a Retry-After), through the caller's seam, and count it."""
        seconds = self.next_pause if seconds is None else seconds
        self._pause(seconds)
        self.waited += seconds
        self.pauses += 1


def poll(
    ask: Callable[[], T],
    settled: Callable[[T], bool],
    wait: Wait,
    timed_out: Callable[[T, float], Exception],
    *,
    first: T | None = None,
) -> T:
    """Ask until ``settled`` says the answer is final, pausing between asks as ``wait`` schedules.

    ``settled`` returns True for the answer to return and False for one to ask again about; it raises for
    an answer that never will be (an import that failed). When the budget is spent first, the error that
    ``timed_out`` makes of the last answer and the seconds paused is raised. ``first``, when given, is an
    answer already in hand, settled without asking again.
    """
    answer = ask() if first is None else first
    while not settled(answer):
        if wait.spent:
            raise timed_out(answer, wait.waited)
        wait.pause()
        answer = ask()
    return answer
