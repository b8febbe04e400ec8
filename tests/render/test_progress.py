"""The live progress table: a running stage's elapsed time ticks between events (with a fake clock)."""

from __future__ import annotations

import io
import time

from runner.render.progress import LiveProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    """What rich takes for a terminal, so it redraws the table in place on its own schedule."""

    def isatty(self) -> bool:
        return True


def test_a_running_stage_shows_the_time_since_it_started_at_each_redraw_without_any_new_event() -> None:
    clock, screen = FakeClock(), Terminal()
    progress = LiveProgress({"w4": "compress"}, screen, clock=clock)
    try:
        progress.stage_started("w4", "re-running")
        assert "re-running 0s" in screen.getvalue()
        clock.now += 12  # twelve seconds pass and the stage says nothing
        deadline = time.monotonic() + 5
        while "re-running 12s" not in screen.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)  # rich redraws 4 times a second
        assert "re-running 12s" in screen.getvalue()
    finally:
        progress.close()


def test_the_last_table_left_on_screen_shows_the_elapsed_time_when_it_closed() -> None:
    clock, log = FakeClock(), io.StringIO()  # not a terminal: rich prints the table once, at the end
    progress = LiveProgress({"base": "model", "w4": "compress"}, log, clock=clock)
    progress.stage_started("w4", "running")
    clock.now += 75
    progress.close()
    assert "running 75s" in log.getvalue()
    assert "queued" in log.getvalue()  # the stage that never started


def test_a_finished_stage_shows_its_outcome_instead_of_a_clock() -> None:
    clock, log = FakeClock(), io.StringIO()
    progress = LiveProgress({"w4": "compress"}, log, clock=clock)
    progress.stage_started("w4", "running")
    clock.now += 30
    progress.stage_finished("w4", "succeeded", "version amv-1")
    clock.now += 30
    progress.close()
    assert "succeeded" in log.getvalue()
    assert "amv-1" in log.getvalue()
    assert "30s" not in log.getvalue()
    assert "60s" not in log.getvalue()
