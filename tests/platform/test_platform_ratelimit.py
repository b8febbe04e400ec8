"""The shared request budget: a token bucket that keeps many threads under the platform's rps."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from runner.platform.client import PlatformClient
from runner.platform.protocol import TaskKind, TaskRef
from runner.platform.ratelimit import TokenBucket, shared_bucket
from runner.platform.settings import PlatformSettings


def test_requests_are_spaced_by_one_over_rate_after_the_burst() -> None:
    now = [100.0]
    bucket = TokenBucket(4.0, burst=2, clock=lambda: now[0], sleep=lambda s: None)
    waits = [bucket.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.25, 0.5, 0.75])


def test_idle_time_refills_at_most_the_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(10.0, burst=3, clock=lambda: now[0], sleep=lambda s: None)
    bucket.reserve()
    now[0] = 60.0
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.1])


def test_fifty_threads_never_exceed_the_rate_in_any_one_second_window() -> None:
    rate, per_thread, threads = 40.0, 2, 50
    # The start each caller is granted (the clock's reading under the bucket's lock plus the wait it was
    # told), not when its thread happens to run again: on a loaded machine a thread that oversleeps its slot
    # lands in the next window, which says nothing about the schedule the bucket handed out.
    seen = threading.local()

    def clock() -> float:
        seen.now = time.monotonic()
        return float(seen.now)

    bucket = TokenBucket(rate, burst=1, clock=clock)
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(per_thread):
            wait = bucket.acquire()
            with lock:
                starts.append(seen.now + wait)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    began = time.monotonic()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - began
    starts.sort()
    assert len(starts) == threads * per_thread
    worst = max(sum(1 for t in starts[i:] if t - start < 1.0) for i, start in enumerate(starts))
    assert worst <= rate + 1  # one request may start on the window's edge
    assert elapsed >= (threads * per_thread - 1) / rate - 0.05


def test_the_bucket_of_a_platform_is_shared_across_clients() -> None:
    assert shared_bucket("http://a", 5.0) is shared_bucket("http://a", 5.0)
    assert shared_bucket("http://a", 5.0) is not shared_bucket("http://b", 5.0)


def test_a_bucket_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(0.0)


def test_every_client_request_takes_a_slot_so_fifty_polling_threads_stay_under_rps() -> None:
    rate = 50.0
    stamps: list[float] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            stamps.append(time.monotonic())
        return httpx.Response(
            200, json={"requestId": "r", "result": {"taskId": "bi-1", "runStatus": "Running"}}
        )

    # The starts the bucket granted (its clock's reading under its lock plus the wait it gave), read as the
    # fifty-thread test above reads them: when a loaded machine next runs a thread is not the bucket's doing.
    seen = threading.local()

    def clock() -> float:
        seen.now = time.monotonic()
        return float(seen.now)

    granted: list[float] = []

    class Granting(TokenBucket):
        def reserve(self) -> float:
            wait = super().reserve()
            with lock:
                granted.append(seen.now + wait)
            return wait

    settings = PlatformSettings("local", "http://rate.test", "http://rate.test", rps=rate)
    client = PlatformClient(
        settings, transport=httpx.MockTransport(handler), bucket=Granting(rate, clock=clock)
    )
    ref = TaskRef(TaskKind.BATCH_INFERENCE, "bi-1", "n")

    def poll() -> None:
        for _ in range(2):
            client.describe_task(ref)

    pool = [threading.Thread(target=poll) for _ in range(50)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    client.close()
    assert len(stamps) == len(granted) == 100  # every request sent took exactly one slot
    granted.sort()
    worst = max(sum(1 for t in granted[i:] if t - start < 1.0) for i, start in enumerate(granted))
    assert worst <= rate + 1  # one request may start on the window's edge
