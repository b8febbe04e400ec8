"""One request budget per platform, shared by every thread that talks to it.

Fifty stages polling at once must not exceed the platform's QPS limit, so every request takes a slot from
a token bucket first. The bucket is kept as "virtual scheduling" (the earliest time the next request may
start): each caller reserves a start time under a lock and sleeps outside it, so waiting threads are served
in order and the lock is never held while sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """At most ``burst`` requests at once, then ``rate`` per second on average; thread-safe."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_start = clock() - burst * self._interval  # start with a full bucket

    def reserve(self) -> float:
        """Reserve the next slot and return how long the caller must wait for it (seconds, >= 0)."""
        with self._lock:
            now = self._clock()
            # Idle time refills at most `burst` slots: the schedule may lag `now` by burst-1 intervals.
            start = max(self._next_start, now - (self.burst - 1) * self._interval)
            self._next_start = start + self._interval
            return max(0.0, start - now)

    def acquire(self) -> float:
        """Block until a request may start; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


_shared: dict[tuple[str, float, int], TokenBucket] = {}
_shared_lock = threading.Lock()


def shared_bucket(key: str, rate: float, burst: int = 1) -> TokenBucket:
    """The process-wide bucket of one platform (``key`` is its console base URL)."""
    with _shared_lock:
        bucket = _shared.get((key, rate, burst))
        if bucket is None:
            bucket = _shared[(key, rate, burst)] = TokenBucket(rate, burst)
        return bucket
