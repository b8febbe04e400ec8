"""The client's one poll helper (runner.platform.polling): its schedules, its budget and how it stops.

Unit tests with a recording pause (no sleeping); the waits that use it are proven against the local platform
and recorded answers in the model, dataset, export and exactly-once tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from runner.errors import PlatformQueueFull
from runner.platform import polling
from runner.platform.polling import Backoff, Schedule, Wait, poll
from runner.platform.protocol import TaskKind, TaskRequest

if TYPE_CHECKING:
    from conftest import Harness


def test_a_growing_schedule_doubles_up_to_its_ceiling_and_stays_there() -> None:
    schedule = Schedule(1.0, 2.0, 30.0)
    assert [schedule(n) for n in range(8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_a_fixed_schedule_pauses_the_same_every_time() -> None:
    assert {Schedule(2.0)(n) for n in range(50)} == {2.0}


def test_a_schedule_asked_for_a_very_late_pause_answers_its_ceiling_without_overflowing() -> None:
    assert Schedule(1.0, 2.0, 30.0)(100_000) == 30.0
    assert Schedule(1.0, 1.5)(100_000) == float("inf")


def test_the_import_pacing_is_one_second_doubling_to_thirty() -> None:
    assert [polling.IMPORT_POLL(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


@pytest.mark.parametrize(("draw", "share"), [(0.0, 0.5), (0.5, 0.75), (1.0, 1.0)])
def test_backoff_lies_between_half_and_all_of_its_exponential_ceiling(draw: float, share: float) -> None:
    backoff = Backoff(0.5, 30.0, lambda: draw)
    assert [backoff(n) for n in range(8)] == [
        share * ceiling for ceiling in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0)
    ]


def test_backoff_waits_at_least_a_retry_after_but_never_more_than_its_cap() -> None:
    backoff = Backoff(0.5, 30.0, lambda: 0.0)
    assert backoff(0, retry_after=7.0) == 7.0
    assert backoff(0, retry_after=0.1) == 0.25  # the backoff is longer
    assert backoff(0, retry_after=3600.0) == polling.MAX_RETRY_AFTER_S


def test_a_wait_counts_the_seconds_and_pauses_it_made_through_the_seam() -> None:
    paused: list[float] = []
    wait = Wait(paused.append, Schedule(1.0, 2.0, 30.0), limit_s=100.0)
    for _ in range(3):
        wait.pause()
    assert paused == [1.0, 2.0, 4.0]
    assert (wait.waited, wait.pauses, wait.next_pause) == (7.0, 3, 8.0)


def test_a_pause_the_caller_worked_out_counts_like_a_scheduled_one() -> None:
    paused: list[float] = []
    wait = Wait(paused.append, Backoff(0.5, 30.0, lambda: 1.0), tries=2)
    wait.pause(7.0)  # a Retry-After longer than the backoff
    wait.pause()
    assert paused == [7.0, 1.0]
    assert (wait.waited, wait.pauses, wait.spent) == (8.0, 2, True)


def test_a_wait_is_spent_once_its_seconds_reach_the_limit_checked_before_each_pause() -> None:
    wait = Wait(lambda seconds: None, Schedule(1.0, 2.0), limit_s=2.0)
    spent = []
    while not wait.spent:
        wait.pause()
        spent.append(wait.waited)
    assert spent == [1.0, 3.0]  # the last pause carries the total past the limit, as a real sleep would


def test_a_wait_with_tries_is_spent_after_that_many_pauses() -> None:
    wait = Wait(lambda seconds: None, Schedule(0.5), tries=3)
    count = 0
    while not wait.spent:
        wait.pause()
        count += 1
    assert count == 3


def test_poll_asks_until_settled_pausing_on_the_schedule_between_asks() -> None:
    answers, paused = iter(["Running", "Running", "Running", "Done"]), []
    asked: list[str] = []

    def ask() -> str:
        asked.append(answer := next(answers))
        return answer

    wait = Wait(paused.append, Schedule(1.0, 2.0, 30.0), limit_s=60.0)
    assert poll(ask, lambda answer: answer == "Done", wait, _never) == "Done"
    assert asked == ["Running", "Running", "Running", "Done"]
    assert paused == [1.0, 2.0, 4.0]


def test_poll_settles_an_answer_in_hand_without_asking() -> None:
    def ask() -> str:
        raise AssertionError("asked although the first answer was settled")

    wait = Wait(lambda seconds: None, Schedule(1.0))
    assert poll(ask, lambda answer: answer == "Done", wait, _never, first="Done") == "Done"


def test_poll_gives_up_with_the_callers_error_naming_the_last_answer_and_the_seconds_waited() -> None:
    paused: list[float] = []
    wait = Wait(paused.append, Schedule(2.0), limit_s=4.0)
    with pytest.raises(TimeoutError, match=r"still Running after 4 s"):
        poll(
            lambda: "Running",
            lambda answer: False,
            wait,
            lambda answer, waited: TimeoutError(f"still {answer} after {waited:.0f} s"),
        )
    assert paused == [2.0, 2.0]


def test_an_answer_that_never_settles_raises_at_once_without_pausing() -> None:
    paused: list[float] = []

    def settled(answer: str) -> bool:
        if answer == "Failed":
            raise RuntimeError("the import failed")
        return answer == "Done"

    with pytest.raises(RuntimeError, match="the import failed"):
        poll(lambda: "Failed", settled, Wait(paused.append, Schedule(1.0)), _never)
    assert paused == []


def test_a_keyboard_interrupt_during_a_pause_leaves_the_poll_at_once_and_asks_no_more() -> None:
    asked: list[int] = []

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    def ask() -> str:
        asked.append(1)
        return "Running"

    with pytest.raises(KeyboardInterrupt):
        poll(ask, lambda answer: False, Wait(interrupted, Schedule(1.0)), _never)
    assert asked == [1]


def test_a_full_task_queue_is_waited_out_only_until_the_queue_limit(
    qianfan_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TaskRunningNumberExceedLimit [B1] past ``QUEUE_WAIT_LIMIT_S`` of pauses is raised as it is."""

    def full(request: httpx.Request) -> httpx.Response:
        body = {"requestId": "r", "code": "TaskRunningNumberExceedLimit", "message": "too many running tasks"}
        return httpx.Response(400, json=body)

    monkeypatch.setattr(polling, "QUEUE_WAIT_LIMIT_S", 60.0)
    qianfan_harness.fake.faults["CreateBatchInferenceTask"] = [full] * 5
    request = TaskRequest(
        TaskKind.BATCH_INFERENCE,
        "qf-infer-0123456789",
        {"model_version_id": "amv-1", "input_bos_uri": "bos:/b/in/", "output_bos_uri": "bos:/b/out/"},
    )
    with pytest.raises(PlatformQueueFull, match="too many running tasks"):
        qianfan_harness.client.create_task(request)
    assert qianfan_harness.sleeps == [30.0, 30.0]
    assert qianfan_harness.fake.actions().count("CreateBatchInferenceTask") == 3


def _never(answer: object, waited: float) -> Exception:
    raise AssertionError(f"the wait ran out after {waited} s at {answer!r}")
