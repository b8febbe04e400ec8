"""Runs a pipeline's stages in dependency order on a pool of threads, at most ``parallel`` at once.

The thread that finishes a stage schedules what it made ready and goes on with the first of those stages
itself, handing only the others to the pool. A coordinating thread that every stage returns to would cost
two thread handoffs a stage (a wake-up each way, and on two cores often a context switch), which is most
of the runner's own time for stages that end at once (issue 17, P3). The calling thread starts the run and
then only waits, so that Ctrl-C, which Python delivers to it, still stops the run.

Ready stages wait in a heap keyed by topological position, and a stage becomes ready when its count of
unsettled upstream stages reaches zero, so scheduling costs O(edges log stages) in all.
"""

from __future__ import annotations

import concurrent.futures as futures
import heapq
import threading
from collections.abc import Callable, Container, Iterable
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

A = TypeVar("A")


class Scheduler(Generic[A]):
    """One run's scheduling: ``prepare`` turns a ready stage into an attempt (or settles it and returns None),
    ``execute`` runs an attempt; ``hold`` says a ready stage is not to start (after a failure); ``step``
    wraps each scheduling step (the state's batch: what a step records is durable, with one fsync, before
    any of its attempts runs); ``stop`` set means no new stage starts."""

    def __init__(
        self,
        order: list[str],
        predecessors: Callable[[str], Iterable[str]],
        successors: Callable[[str], Iterable[str]],
        settled: Container[str],
        *,
        parallel: int,
        prepare: Callable[[str], A | None],
        execute: Callable[[A], None],
        hold: Callable[[str], bool],
        step: Callable[[], AbstractContextManager[None]],
        stop: threading.Event,
    ) -> None:
        self._order = order
        self._successors = successors
        self._parallel = max(1, parallel)
        self._prepare = prepare
        self._execute = execute
        self._hold = hold
        self._step = step
        self._stop = stop
        self._position = {stage_id: index for index, stage_id in enumerate(order)}
        self._unsettled = {s: sum(1 for u in predecessors(s) if u not in settled) for s in order}
        self._ready = [self._position[s] for s in order if self._unsettled[s] == 0]
        heapq.heapify(self._ready)
        # Guards _ready, _unsettled and _running; a step's records are made under it, its fsync after it.
        self._lock = threading.Lock()
        self._running = 0  # attempts handed out and not yet over
        self._idle = threading.Event()  # nothing runs and nothing more can start
        self._begun = threading.Event()  # the first step started
        self._error: BaseException | None = None
        self._pool: futures.ThreadPoolExecutor | None = None

    def run(self) -> None:
        """Until no stage runs and none can start; re-raises the first error a thread met (a state that
        cannot be written), after every running stage returned. Ctrl-C stops new starts the same way."""
        with futures.ThreadPoolExecutor(max_workers=self._parallel) as pool:
            self._pool = pool
            try:
                # Even the first step runs on a worker: this thread, which Ctrl-C interrupts anywhere, hands
                # out no attempt it could lose track of (a submit cut short may still start its thread).
                pool.submit(self._start)
                while not self._idle.wait(0.5):  # a timed wait, so that Ctrl-C is seen at once
                    pass
            except BaseException:
                # Ctrl-C, or a state that cannot be written: workers waiting on a task return at once,
                # leaving it as last recorded, and no new stage starts.
                self._stop.set()
                if self._begun.is_set():  # else the first step, if it ever runs, starts nothing
                    self._idle.wait()
                raise
        if self._error is not None:
            raise self._error

    def _start(self) -> None:
        self._begun.set()
        self._work(self._then(self._step_or_stop()))

    def _work(self, attempt: tuple[str, A] | None) -> None:
        """Run an attempt, then what its end made ready, for as long as there is some."""
        while attempt is not None:
            stage_id, prepared = attempt
            try:
                self._execute(prepared)
                done = True
            except BaseException as error:  # noqa: BLE001 (handed to run(): a state that cannot be written)
                self._failed(error)
                done = False
            with self._lock:
                self._running -= 1
                if done:
                    self._release(stage_id)
            attempt = self._then(self._step_or_stop())

    def _then(self, attempts: list[tuple[str, A]]) -> tuple[str, A] | None:
        """Hand all but the first attempt to the pool; the first is the calling worker's own."""
        assert self._pool is not None
        for attempt in attempts[1:]:
            self._pool.submit(self._work, attempt)
        return attempts[0] if attempts else None

    def _step_or_stop(self) -> list[tuple[str, A]]:
        try:
            return self._next()
        except BaseException as error:  # noqa: BLE001 (handed to run(), as above)
            self._failed(error)
            return []

    def _next(self) -> list[tuple[str, A]]:
        """One scheduling step: the ready stages up to ``parallel`` running, the ones that need not run
        settled on the way. Sets ``_idle`` when nothing runs and nothing more can start."""
        attempts: list[tuple[str, A]] = []
        try:
            with self._step(), self._lock:
                while not self._stop.is_set() and self._ready and self._running < self._parallel:
                    stage_id = self._order[heapq.heappop(self._ready)]
                    if self._hold(stage_id):
                        continue  # not started after a failure: left as recorded for the next run
                    attempt = self._prepare(stage_id)  # settles stages that need not run
                    if attempt is None:
                        self._release(stage_id)
                    else:
                        attempts.append((stage_id, attempt))
                        self._running += 1
        except BaseException:
            with self._lock:
                self._running -= len(attempts)  # prepared, never run: their records stay as written
            attempts = []
            raise
        finally:
            with self._lock:
                if self._running == 0 and not attempts:
                    self._idle.set()
        return attempts

    def _release(self, stage_id: str) -> None:
        """A stage settled (call under the lock): its successors whose upstream is all settled are ready."""
        for successor in self._successors(stage_id):
            if successor in self._unsettled:
                self._unsettled[successor] -= 1
                if self._unsettled[successor] == 0:
                    heapq.heappush(self._ready, self._position[successor])

    def _failed(self, error: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = error
        self._stop.set()
