"""What a run prints while it runs: plain timestamped lines for CI and pipes, and what the live stage table
shows per stage (rows done, the last log line, a failure's reason) and for a big pipeline; both keep what
matters and leave out what does not. test_progress.py covers the live table's clock."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from runner.render import progress
from runner.render.progress import LiveProgress, PlainProgress

LINE = re.compile(r"^\d\d:\d\d:\d\d (\S+)  (.*)$")


def _lines(stream: io.StringIO) -> list[tuple[str, str]]:
    found = []
    for line in stream.getvalue().splitlines():
        match = LINE.match(line)
        assert match, f"not a progress line: {line!r}"
        found.append((match[1], match[2]))
    return found


def test_plain_progress_writes_one_timestamped_line_per_event() -> None:
    stream = io.StringIO()
    plain = PlainProgress(stream)
    plain.stage_started("w4", "running")
    plain.stage_log("w4", "task amva-1 created")
    plain.stage_finished("w4", "succeeded", "model amv-2")
    plain.stage_finished("gate", "failed", "")
    plain.close()
    assert _lines(stream) == [
        ("w4", "running"),
        ("w4", "task amva-1 created"),
        ("w4", "succeeded: model amv-2"),
        ("gate", "failed"),
    ]


def test_a_message_that_names_its_outcome_is_not_prefixed_again() -> None:
    stream = io.StringIO()
    PlainProgress(stream).stage_finished("judge", "waiting", "waiting for scores in scores/judge.csv")
    assert _lines(stream) == [("judge", "waiting for scores in scores/judge.csv")]


def test_up_to_date_stages_are_shown_only_when_verbose() -> None:
    quiet, verbose = io.StringIO(), io.StringIO()
    PlainProgress(quiet).stage_finished("w4", "up to date", "")
    PlainProgress(verbose, verbose=True).stage_finished("w4", "up to date", "")
    assert quiet.getvalue() == ""
    assert _lines(verbose) == [("w4", "up to date")]


def test_rows_are_logged_at_most_every_ten_seconds_per_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    plain = PlainProgress(stream)
    plain.stage_progress("infer", 1, 50)
    plain.stage_progress("infer", 2, 50)  # the same second: not logged
    plain.stage_progress("other", None, 8)  # another stage has its own clock
    plain.stage_progress("infer", 3, None)  # no total yet: nothing to show
    clock[0] += 10.0
    plain.stage_progress("infer", 40, 50)
    # 39 rows in 10 s, 10 left: the line says when it should be done
    assert _lines(stream) == [("infer", "1/50 rows"), ("other", "0/8 rows"), ("infer", "40/50 rows · ETA 3s")]


def _table(live: LiveProgress) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(live._render())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return str(text)


def _row(table: str, stage_id: str) -> list[str]:
    for line in table.splitlines():
        cells = line.split()
        if cells and cells[0] == stage_id:
            return cells
    raise AssertionError(f"no row for {stage_id} in:\n{table}")


def test_the_live_table_shows_each_stage_with_its_status_and_detail() -> None:
    clock = [50.0]
    live = LiveProgress(
        {"upload": "dataset", "infer": "infer", "gate": "evaluate"}, io.StringIO(), clock=lambda: clock[0]
    )
    try:
        live.stage_finished("upload", "up to date", "")
        live.stage_started("infer", "running")
        live.stage_progress("infer", 12, 40)
        clock[0] += 7.0
        table = _table(live)
        assert _row(table, "upload") == ["upload", "dataset", "up", "to", "date"]
        assert _row(table, "infer") == ["infer", "infer", "running", "7s", "12/40", "rows"]
        assert _row(table, "gate") == ["gate", "evaluate", "queued"]
        live.stage_log("infer", "row 13 retried")
        live.stage_finished("infer", "failed", "the task failed: out of memory")
        table = _table(live)
        assert _row(table, "infer")[2:4] == ["failed", "the"]  # no running clock once finished
        assert "out of memory" in table
    finally:
        live.close()


def test_a_big_pipeline_shows_only_moving_or_failed_stages_and_the_counts() -> None:
    stages = {f"s{n:02d}": "infer" for n in range(40)}
    live = LiveProgress(stages, io.StringIO())
    try:
        for n in range(30):
            live.stage_finished(f"s{n:02d}", "succeeded" if n % 2 else "up to date", "")
        live.stage_started("s30", "running")
        live.stage_finished("s31", "failed", "boom")
        live.stage_finished("s32", "waiting", "waiting for scores")
        table = _table(live)
        shown = {line.split()[0] for line in table.splitlines() if re.match(r"s\d\d ", line)}
        assert shown == {"s30", "s31", "s32"}
        # the caption wraps at the table's width
        assert "1 failed, 7 queued, 1 running, 15 succeeded, 15 up to date, 1 waiting" in " ".join(
            table.split()
        )
    finally:
        live.close()


def test_a_training_line_shows_steps_the_running_loss_and_the_time_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    plain = PlainProgress(stream)
    for step in range(0, 121, 2):  # 2 steps a second for a minute
        clock[0] = 100.0 + step / 2
        plain.stage_progress("tuned", step, 470, "steps", {"loss": 0.41234, "eval_loss": 0.5})
    logged = _lines(stream)
    assert logged[0] == ("tuned", "0/470 steps · loss 0.412 · eval loss 0.5")  # too early for an ETA
    # 350 steps left at 2 a second, the line every 10 s
    assert logged[-1] == ("tuned", "120/470 steps · loss 0.412 · eval loss 0.5 · ETA 2m55s")
    assert len(logged) == 7


def test_the_live_table_shows_the_running_loss_and_an_eta_that_grows_while_progress_stalls() -> None:
    clock = [0.0]
    live = LiveProgress({"tuned": "finetune"}, io.StringIO(), clock=lambda: clock[0])
    try:
        live.stage_started("tuned", "running")
        for step in range(61):  # 1 step a second
            clock[0] = float(step)
            live.stage_progress("tuned", step, 120, "steps", {"loss": 1.5})
        assert _row(_table(live), "tuned")[4:] == ["60/120", "steps", "·", "loss", "1.5", "·", "ETA", "1m00s"]
        clock[0] += 20.0  # no step for 20 s: the table's next redraw says it will take longer
        assert _row(_table(live), "tuned")[-2:] == ["ETA", "1m30s"]  # 40 steps in the last 60 s, 60 left
        live.stage_log("tuned", "re-attaching to task task-1")  # a message replaces the progress
        assert "loss" not in _table(live)
    finally:
        live.close()
