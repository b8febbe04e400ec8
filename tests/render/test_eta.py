"""The time a task has left, from how fast its progress moved lately: right at a steady rate, nothing before
there is enough to measure, later (then nothing) when progress stalls, never negative, nothing once done, and
progress made before qfrun saw the task is not taken for speed."""

from __future__ import annotations

import pytest

from runner.render.eta import EtaEstimator, format_seconds


def _steady(eta: EtaEstimator, *, rate: float, seconds: int, total: int, start: float = 0.0) -> float:
    """One event a second at ``rate`` units a second; returns the time of the last one."""
    for second in range(seconds + 1):
        eta.update(start + second, int(rate * second), total)
    return start + seconds


def test_a_steady_rate_gives_what_is_left_divided_by_it() -> None:
    eta = EtaEstimator()
    now = _steady(eta, rate=10, seconds=30, total=1000)  # 300 done at 10 a second: 700 left
    assert eta.seconds_left(now) == pytest.approx(70.0)


def test_the_rate_follows_the_last_window_not_the_whole_run() -> None:
    eta = EtaEstimator(window=20)
    _steady(eta, rate=1, seconds=60, total=1000)  # slow at first
    for second in range(61, 101):
        eta.update(second, 60 + 5 * (second - 60), 1000)  # then 5 a second: 260 done at t=100
    assert eta.seconds_left(100) == pytest.approx((1000 - 260) / 5)


def test_nothing_is_estimated_before_enough_progress_and_time() -> None:
    eta = EtaEstimator(min_seconds=5, min_changes=2)
    assert eta.seconds_left(0) is None  # no event at all
    eta.update(0, 0, 100)
    assert eta.seconds_left(10) is None  # zero progress: no speed to speak of
    eta.update(1, 1, 100)
    assert eta.seconds_left(6) is None  # one change is not a rate yet
    eta.update(2, 2, 100)
    assert eta.seconds_left(3) is None  # three seconds of measuring are too few
    assert eta.seconds_left(6) == pytest.approx(98 * 6 / 2)  # 2 done in 6 s (to now): 98 left


def test_a_stall_makes_the_estimate_later_and_then_gives_none() -> None:
    eta = EtaEstimator(window=60)
    now = _steady(eta, rate=1, seconds=30, total=100)  # 30 done, 1 a second: 70 s left
    steady = eta.seconds_left(now)
    assert steady == pytest.approx(70.0)
    stalled = eta.seconds_left(now + 30)  # the same 30 done, 30 s later: half the speed over the window
    assert stalled is not None
    assert stalled > steady
    assert stalled == pytest.approx(140.0)
    assert eta.seconds_left(now + 61) is None  # nothing moved for a whole window
    eta.update(now + 62, 31, 100)  # moving again: an estimate again
    assert eta.seconds_left(now + 62) is not None


def test_the_estimate_is_never_negative_and_none_once_done() -> None:
    eta = EtaEstimator()
    now = _steady(eta, rate=10, seconds=9, total=100)  # 90 of 100 at 10 a second
    assert eta.seconds_left(now) == pytest.approx(1.0)
    assert all((eta.seconds_left(now + later) or 0.0) >= 0.0 for later in range(0, 200, 7))
    eta.update(now + 1, 100, 100)
    assert eta.seconds_left(now + 1) is None  # done: what is left (saving a model) is not counted
    eta.update(now + 2, 120, 100)  # a platform overshooting its total
    assert eta.seconds_left(now + 2) is None


def test_progress_made_before_the_first_event_is_not_taken_for_speed() -> None:
    eta = EtaEstimator()
    eta.update(0, 400, 1000)  # a resumed task, seen first at 400
    for second in range(1, 11):
        eta.update(second, 400 + second, 1000)  # 1 a second since
    assert eta.seconds_left(10) == pytest.approx(590.0)  # not 1000 - 410 at 41 a second


def test_starting_over_or_a_new_total_measures_anew() -> None:
    eta = EtaEstimator()
    now = _steady(eta, rate=10, seconds=10, total=1000)
    eta.update(now + 1, 20, 1000)  # back to an earlier checkpoint
    assert eta.seconds_left(now + 1) is None  # nothing measured since
    fresh = EtaEstimator()
    _steady(fresh, rate=10, seconds=10, total=1000)
    fresh.update(11, 110, 2000)  # re-planned: a new total
    assert fresh.seconds_left(11) is None


def test_an_event_without_a_total_or_done_is_ignored() -> None:
    eta = EtaEstimator()
    eta.update(0, None, 100)
    eta.update(1, 5, None)
    eta.update(2, 5, 0)
    assert eta.seconds_left(10) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (-3, "0s"), (44.6, "45s"), (65, "1m05s"), (3599, "59m59s"), (3720, "1h02m")],
)
def test_seconds_are_written_short(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
