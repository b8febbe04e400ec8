"""How a run shows itself: a live stage table on a terminal, plain timestamped lines in CI and pipes.

Both are ``runner.run.executor.Observer``s. The live view uses rich (a well-kept library that knows
terminals); the plain one writes one line per event so that CI logs stay readable and greppable. Both show a
task's progress the same way (``progress_text``): ``120/470 steps · loss 0.412 · ETA 1m05s``, with what the
task reports as it goes (a running loss) and how long it has left at the speed it moved lately
(runner.render.eta).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from runner.render.eta import EtaEstimator, format_seconds

SYMBOLS = {
    "succeeded": "ok",
    "up to date": "--",
    "failed": "FAILED",
    "skipped": "skipped",
    "not started": "..",
    "waiting": "WAITING",
}


def progress_text(
    done: int | None,
    total: int | None,
    unit: str,
    live: Mapping[str, float] | None = None,
    seconds_left: float | None = None,
) -> str:
    """One task's progress for people: done of total, what it reports as it goes, and the time it has left."""
    parts = [f"{done or 0}/{total} {unit}"]
    parts += [f"{name.replace('_', ' ')} {value:.3g}" for name, value in (live or {}).items()]
    if seconds_left is not None:
        parts.append(f"ETA {format_seconds(seconds_left)}")
    return " · ".join(parts)


@dataclass
class _Moving:
    """A stage's latest progress event and the estimate it feeds."""

    done: int | None = None
    total: int | None = None
    unit: str = "rows"
    live: Mapping[str, float] = field(default_factory=dict)
    eta: EtaEstimator = field(default_factory=EtaEstimator)

    def update(
        self, now: float, done: int | None, total: int | None, unit: str, live: Mapping[str, float] | None
    ) -> None:
        self.done, self.total, self.unit, self.live = done, total, unit, dict(live or {})
        self.eta.update(now, done, total)

    def text(self, now: float) -> str:
        return progress_text(self.done, self.total, self.unit, self.live, self.eta.seconds_left(now))


class PlainProgress:
    """One line per event: ``12:00:03 w4  running`` — what CI shows."""

    def __init__(self, stream: IO[str], *, verbose: bool = False) -> None:
        self._stream = stream
        self._verbose = verbose
        self._lock = threading.Lock()
        self._last_rows: dict[str, float] = {}
        self._moving: dict[str, _Moving] = {}

    def _line(self, stage_id: str, text: str) -> None:
        with self._lock:
            self._stream.write(f"{time.strftime('%H:%M:%S')} {stage_id}  {text}\n")
            self._stream.flush()

    def stage_started(self, stage_id: str, note: str) -> None:
        self._line(stage_id, note)

    def stage_progress(
        self,
        stage_id: str,
        rows_done: int | None,
        rows_total: int | None,
        unit: str = "rows",
        live: Mapping[str, float] | None = None,
    ) -> None:
        now = time.monotonic()
        with self._lock:
            moving = self._moving.setdefault(stage_id, _Moving())
        moving.update(now, rows_done, rows_total, unit, live)  # every event counts for the speed
        if rows_total and now - self._last_rows.get(stage_id, 0.0) >= 10.0:  # CI logs: every 10 s at most
            self._last_rows[stage_id] = now
            self._line(stage_id, moving.text(now))

    def stage_log(self, stage_id: str, message: str) -> None:
        self._line(stage_id, message)

    def stage_finished(self, stage_id: str, outcome: str, message: str) -> None:
        if outcome == "up to date" and not self._verbose:
            return
        if message.startswith(outcome):  # "waiting for scores in ...": the message names the outcome
            self._line(stage_id, message)
        else:
            self._line(stage_id, f"{outcome}: {message}" if message else outcome)

    def close(self) -> None:
        pass


class LiveProgress:
    """A rich table of stages that updates in place, with rows done for inference and the time a running
    stage has taken so far.

    rich redraws the table on its own schedule (4 times a second) by calling ``_render`` again, so the
    elapsed times tick between events; a table built once per event would show "running 0s" until the
    stage's next event. ``clock`` is there for tests.
    """

    def __init__(
        self, stages: Mapping[str, str], stream: IO[str], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        from rich.console import Console
        from rich.live import Live

        self._types = dict(stages)
        self._status: dict[str, str] = {stage_id: "queued" for stage_id in stages}
        self._detail: dict[str, str | _Moving] = {}  # the last event's text, or progress (its ETA ticks)
        self._moving: dict[str, _Moving] = {}
        self._started: dict[str, float] = {}
        self._clock = clock
        self._lock = threading.Lock()
        self._console = Console(file=stream)
        self._live = Live(
            console=self._console, refresh_per_second=4, transient=False, get_renderable=self._render
        )
        self._live.start()

    def _render(self) -> Any:
        """The table as of now. rich's refresh thread calls it without our lock (taking it there could
        deadlock against an event holding it while it asks rich to redraw), so it reads copies."""
        from rich.table import Table

        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        for column in ("stage", "type", "status", "detail"):
            table.add_column(column)
        styles = {
            "succeeded": "green",
            "failed": "red",
            "skipped": "yellow",
            "up to date": "dim",
            "waiting": "magenta",  # for people: a manual evaluation's scores
        }
        statuses, started, details = dict(self._status), dict(self._started), dict(self._detail)
        now = self._clock()
        shown: list[tuple[str, str]] = list(self._types.items())
        if len(self._types) > 30:  # a big pipeline: only what is moving or went wrong, plus the counts
            shown = [(s, t) for s, t in shown if statuses[s] not in ("queued", "up to date", "succeeded")]
            counts: dict[str, int] = {}
            for status in statuses.values():
                counts[status] = counts.get(status, 0) + 1
            table.caption = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        for stage_id, stage_type in shown:
            status = statuses[stage_id]
            if stage_id in started and status in ("running", "re-running", "resuming"):
                status = f"{status} {now - started[stage_id]:.0f}s"
            style = styles.get(statuses[stage_id], "cyan" if stage_id in started else "dim")
            detail = details.get(stage_id, "")
            text = detail.text(now) if isinstance(detail, _Moving) else detail
            table.add_row(stage_id, stage_type, f"[{style}]{status}[/]", text)
        return table

    def _update(self) -> None:
        self._live.refresh()  # an event shows at once, not at the next scheduled redraw

    def stage_started(self, stage_id: str, note: str) -> None:
        with self._lock:
            self._status[stage_id] = note
            self._started[stage_id] = self._clock()
            self._update()

    def stage_progress(
        self,
        stage_id: str,
        rows_done: int | None,
        rows_total: int | None,
        unit: str = "rows",
        live: Mapping[str, float] | None = None,
    ) -> None:
        with self._lock:
            moving = self._moving.setdefault(stage_id, _Moving())
            moving.update(self._clock(), rows_done, rows_total, unit, live)
            self._detail[stage_id] = moving
            self._update()

    def stage_log(self, stage_id: str, message: str) -> None:
        with self._lock:
            self._detail[stage_id] = message
            self._update()

    def stage_finished(self, stage_id: str, outcome: str, message: str) -> None:
        with self._lock:
            self._status[stage_id] = outcome
            if message:
                self._detail[stage_id] = message
            self._update()

    def close(self) -> None:
        self._live.stop()
