"""The scheduler alone (runner.run.schedule): order, the parallel bound, no handoff per stage, errors."""

from __future__ import annotations

import _thread
import contextlib
import threading
import time
from collections.abc import Callable

import pytest

from runner.errors import StateError
from runner.run.schedule import Scheduler


def _schedule(
    edges: dict[str, list[str]],
    *,
    parallel: int = 4,
    execute: Callable[[str], None] = lambda stage_id: None,
    prepare: Callable[[str], str | None] = lambda stage_id: stage_id,
    hold: Callable[[str], bool] = lambda stage_id: False,
    stop: threading.Event | None = None,
) -> Scheduler[str]:
    """A scheduler over ``edges`` (stage -> the stages it needs), in the order the mapping lists them."""
    order = list(edges)
    successors = {stage_id: [s for s in order if stage_id in edges[s]] for stage_id in order}
    return Scheduler(
        order,
        lambda stage_id: edges[stage_id],
        lambda stage_id: successors[stage_id],
        set(),
        parallel=parallel,
        prepare=prepare,
        execute=execute,
        hold=hold,
        step=contextlib.nullcontext,
        stop=stop or threading.Event(),
    )


def test_a_chain_runs_in_order_on_one_worker_thread_without_a_handoff_per_stage() -> None:
    ran: list[tuple[str, int]] = []
    chain = {"a": [], "b": ["a"], "c": ["b"], "d": ["c"]}
    _schedule(chain, execute=lambda stage_id: ran.append((stage_id, threading.get_ident()))).run()
    assert [stage_id for stage_id, _ in ran] == ["a", "b", "c", "d"]
    threads = {thread for _, thread in ran}
    assert len(threads) == 1  # the thread that ends a stage goes on with the stage it made ready
    assert threads != {threading.get_ident()}  # and the caller only waits (Ctrl-C reaches it)


def test_no_more_than_parallel_stages_run_at_once_and_every_one_runs() -> None:
    lock = threading.Lock()
    running, peak, ran = 0, 0, []

    def execute(stage_id: str) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.005)
        with lock:
            running -= 1
            ran.append(stage_id)

    fan = {"root": [], **{f"s{index}": ["root"] for index in range(12)}, "last": ["s3", "s7"]}
    _schedule(fan, parallel=3, execute=execute).run()
    assert peak == 3
    assert sorted(ran) == sorted(fan)
    assert ran.index("last") > max(ran.index("s3"), ran.index("s7"))


def test_stages_that_need_not_run_settle_in_the_step_and_release_their_successors() -> None:
    ran: list[str] = []
    edges = {"a": [], "b": ["a"], "c": ["b"]}
    _schedule(edges, prepare=lambda s: None if s == "b" else s, execute=ran.append).run()
    assert ran == ["a", "c"]


def test_a_held_stage_does_not_start_and_neither_does_what_needs_it() -> None:
    ran: list[str] = []
    edges = {"a": [], "b": ["a"], "c": ["b"], "d": ["a"]}
    _schedule(edges, hold=lambda s: s == "b", execute=ran.append).run()
    assert sorted(ran) == ["a", "d"]


@pytest.mark.parametrize("where", ["execute", "prepare"])
def test_a_state_error_in_a_worker_stops_new_starts_and_reaches_the_caller(where: str) -> None:
    ran: list[str] = []

    def execute(stage_id: str) -> None:
        ran.append(stage_id)
        if where == "execute" and stage_id == "b":
            raise StateError("the state journal cannot be written")

    def prepare(stage_id: str) -> str:
        if where == "prepare" and stage_id == "c":  # prepared by the worker that ran b
            raise StateError("the state journal cannot be written")
        return stage_id

    chain = {"a": [], "b": ["a"], "c": ["b"], "d": ["c"]}
    with pytest.raises(StateError, match="cannot be written"):
        _schedule(chain, parallel=1, execute=execute, prepare=prepare).run()
    assert ran == ["a", "b"]


def test_the_callers_ctrl_c_waits_for_the_running_stage_and_starts_no_more() -> None:
    started, ended = threading.Event(), threading.Event()
    ran: list[str] = []
    stop = threading.Event()

    def execute(stage_id: str) -> None:
        ran.append(stage_id)
        started.set()
        stop.wait()  # a stage waiting on its task returns once the run stops
        ended.set()

    scheduler = _schedule({"a": [], "b": ["a"]}, execute=execute, stop=stop)
    threading.Thread(target=lambda: (started.wait(), _thread.interrupt_main())).start()
    with pytest.raises(KeyboardInterrupt):
        scheduler.run()
    assert ended.is_set()
    assert ran == ["a"]
