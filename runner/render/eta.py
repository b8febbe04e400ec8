"""How long a task has left, from how fast its progress moved: any kind that counts progress (rows, steps).

The rate is the progress made over the last ``window`` seconds up to now, a moving average: one slow poll
or a burst of rows moves it a little, not the whole estimate. Measuring up to *now* rather than up to the last
change makes a stall count: the longer progress stands still, the lower the rate and the later the estimate,
and once nothing moved for a whole window there is no estimate at all. Progress a task had before qfrun
first saw it (a re-attached or resumed task) is not counted as speed: the first sample is only where
measuring starts. Nothing is estimated before ``min_seconds`` of measuring and ``min_changes`` changes,
which is when a rate means something; nor once all is done (what is left then, saving a model, writing a
result, is not what the progress counts).
"""

from __future__ import annotations

import threading
from collections import deque


class EtaEstimator:
    """Seconds left for one task, from its ``(time, done)`` samples. Safe across threads: the live table asks
    from rich's refresh thread while events update it from the executor's."""

    def __init__(self, *, window: float = 60.0, min_seconds: float = 5.0, min_changes: int = 2) -> None:
        self._window = window
        self._min_seconds = min_seconds
        self._min_changes = min_changes
        self._samples: deque[tuple[float, int]] = deque()
        self._first = 0.0
        self._changes = 0
        self._total: int | None = None
        self._lock = threading.Lock()

    def update(self, now: float, done: int | None, total: int | None) -> None:
        """A progress event: ``done`` of ``total`` at time ``now`` (seconds, any monotonic clock)."""
        if done is None or not total:
            return
        with self._lock:
            self._add(now, done, total)

    def _add(self, now: float, done: int, total: int) -> None:
        if self._samples and (done < self._samples[-1][1] or total != self._total):
            self._samples.clear()  # started over (a restart from a checkpoint) or re-planned: measure anew
        self._total = total
        if not self._samples:
            self._samples.append((now, done))
            self._first, self._changes = now, 0
            return
        if done == self._samples[-1][1]:
            return  # the same progress again: time passing is counted when the estimate is asked for
        self._samples.append((now, done))
        self._changes += 1
        # keep one sample at or before the window's start, so the rate always spans the whole window
        while len(self._samples) > 1 and self._samples[1][0] <= now - self._window:
            self._samples.popleft()

    def seconds_left(self, now: float) -> float | None:
        """The estimate at ``now``, never negative; None while it would mean nothing (too early, stalled for a
        whole window, or done)."""
        with self._lock:
            return self._seconds_left(now)

    def _seconds_left(self, now: float) -> float | None:
        if not self._samples or self._total is None:
            return None
        done = self._samples[-1][1]
        if done >= self._total:
            return None
        if self._changes < self._min_changes or now - self._first < self._min_seconds:
            return None
        # progress stands at a sample's value until the next one: the value at the window's start is the last
        # sample's at or before it; a window reaching back before the first sample measures from that one
        boundary = now - self._window
        before = [sample for sample in self._samples if sample[0] <= boundary]
        base_time, base_done = before[-1] if before else self._samples[0]
        made, spent = done - base_done, now - max(base_time, boundary)
        if made <= 0 or spent <= 0:
            return None  # nothing moved for a whole window: a stall, not a speed
        return max(0.0, (self._total - done) * spent / made)


def format_seconds(seconds: float) -> str:
    """``45s``, ``1m05s``, ``2h03m``: short enough for a progress line."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
