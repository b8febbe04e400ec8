"""The task runner's handling of a job process, with real processes: a stand-in for the engine job (given
to the runner as its ``python``) succeeds, reports an error, crashes, is killed or hangs, and the store
says exactly that; a restarted platform fails, resumes or queues what the dead one left.

The stand-in writes what the engine job writes (progress.json, part.jsonl, result.json) so the runner's
own code, from spawning to finishing the task, is what runs; no model is loaded.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.local.home import Home
from runner.local.jobspec import store_file_as_dataset
from runner.local.rows import FAILED, PENDING, RUNNING, STOPPED, SUCCEEDED, TaskRow
from runner.local.store import Store
from runner.local.workers import INTERRUPTED, TaskRunner

pytestmark = pytest.mark.slow  # starts processes

STAND_IN = f"""#!{sys.executable}
import json, os, signal, sys, time
from pathlib import Path

spec = json.loads(Path(sys.argv[3]).read_text())  # called as: python -m runner.local.engine.job SPEC
workdir, params = Path(spec["workdir"]), spec["params"]
mode = os.environ["QFRUN_TEST_JOB"]
rows = [json.loads(line) for line in Path(params["dataset_path"]).read_text().splitlines() if line.strip()]
Path(spec["progress_file"]).write_text(json.dumps({{"done": 1, "total": len(rows)}}))
if mode == "ok":
    with open(params["output_path"], "a") as out:
        for row in rows:
            out.write(json.dumps({{**row, "output": "42"}}) + "\\n")
    Path(spec["progress_file"]).write_text(json.dumps({{"done": len(rows), "total": len(rows)}}))
    (workdir / "result.json").write_text(json.dumps({{"rows": len(rows)}}))
elif mode == "error":
    (workdir / "result.json").write_text(json.dumps({{"error": "  the weights do not load  "}}))
    sys.exit(1)
elif mode == "crash":
    print("loading", flush=True)
    print("Traceback: boom", file=sys.stderr, flush=True)
    print("RuntimeError: out of memory", file=sys.stderr, flush=True)
    sys.exit(3)
elif mode == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
elif mode == "hang":
    Path(workdir / "started").write_text(str(os.getpid()))
    time.sleep(120)
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    path = tmp_path / "python-stand-in"
    path.write_text(STAND_IN)
    path.chmod(0o755)
    return path


@pytest.fixture
def runner(home: Home, store: Store, stand_in: Path) -> Iterator[TaskRunner]:
    tasks = TaskRunner(home, store, python=str(stand_in))
    yield tasks
    tasks.shutdown(timeout=10)


def _batch_task(
    home: Home, store: Store, tmp_path: Path, task_id: str = "infer-1", status: str = PENDING
) -> TaskRow:
    model = home.models_dir / "amv-1"
    if not model.exists():
        model.mkdir(parents=True)
        (model / "config.json").write_text("{}")
        entry = store.ensure_model("tiny")
        store.add_version(
            version_id="amv-1",
            model_id=entry.id,
            path=str(model),
            content_hash="c" * 64,
            size_bytes=2,
            source="import",
            details={},
        )
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "1+1=?", "response": "2"}\n{"prompt": "2+2=?", "response": "4"}\n')
    dataset = store_file_as_dataset(home, store, rows, name="qa", source="upload")
    task = store.create_task(
        task_id=task_id,
        kind="batch_inference",
        name=f"qf-{task_id}",
        params={"model_version_id": "amv-1", "dataset_id": dataset.id},
    )
    if status != PENDING:
        store.update_task(task_id, status=status)
    return task


def _settled(store: Store, task_id: str, *, timeout: float = 60.0) -> TaskRow:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = store.task(task_id)
        assert task is not None
        if task.status not in (PENDING, RUNNING):
            return task
        time.sleep(0.05)
    pytest.fail(f"task {task_id} did not settle: {store.task(task_id)}")


def test_a_job_that_writes_its_rows_succeeds_with_a_result_dataset(
    home: Home, store: Store, runner: TaskRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QFRUN_TEST_JOB", "ok")
    _batch_task(home, store, tmp_path)
    runner.submit("infer-1")
    task = _settled(store, "infer-1")
    assert (task.status, task.message, task.worker_pid) == (SUCCEEDED, "", None)
    assert task.result["rows"] == 2
    dataset = store.dataset(task.result["result_dataset_id"])
    assert dataset is not None
    lines = [json.loads(line) for line in Path(dataset.path).read_text().splitlines()]
    assert [(r["prompt"], r["prediction"], r["model_version_id"]) for r in lines] == [
        ("1+1=?", "42", "amv-1"),
        ("2+2=?", "42", "amv-1"),
    ]
    assert (task.progress_done, task.progress_total) == (2, 2)


def test_a_job_that_reports_an_error_fails_with_that_error_as_its_reason(
    home: Home, store: Store, runner: TaskRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QFRUN_TEST_JOB", "error")
    _batch_task(home, store, tmp_path)
    runner.submit("infer-1")
    task = _settled(store, "infer-1")
    assert (task.status, task.message, task.worker_pid) == (FAILED, "the weights do not load", None)


def test_a_job_that_crashes_fails_with_its_exit_status_and_the_end_of_its_log(
    home: Home, store: Store, runner: TaskRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QFRUN_TEST_JOB", "crash")
    _batch_task(home, store, tmp_path)
    runner.submit("infer-1")
    task = _settled(store, "infer-1")
    assert task.status == FAILED
    assert task.message.startswith(
        "The batch_inference job of task infer-1 ended with exit status 3 and no result: "
    )
    assert "RuntimeError: out of memory" in task.message
    assert (home.task_dir("infer-1") / "job.log").is_file()


def test_a_job_killed_by_a_signal_says_which(
    home: Home, store: Store, runner: TaskRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QFRUN_TEST_JOB", "killed")
    _batch_task(home, store, tmp_path)
    runner.submit("infer-1")
    task = _settled(store, "infer-1")
    assert task.status == FAILED
    assert "ended with signal 9 and no result" in task.message


def test_a_cancelled_job_is_stopped_its_process_group_ended_and_the_reason_kept(
    home: Home, store: Store, runner: TaskRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QFRUN_TEST_JOB", "hang")
    _batch_task(home, store, tmp_path)
    runner.submit("infer-1")
    started = home.task_dir("infer-1") / "started"
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(started.read_text())
    assert runner.cancel("infer-1") is True
    task = _settled(store, "infer-1")
    assert (task.status, task.message) == (STOPPED, "The task was stopped on request.")
    deadline = time.monotonic() + 15
    while runner.active() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.active() == []
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    assert runner.cancel("infer-1") is False  # stopped already: nothing was active


def test_a_task_that_cannot_be_set_up_fails_without_starting_a_process(
    home: Home, store: Store, runner: TaskRunner, tmp_path: Path
) -> None:
    store.create_task(
        task_id="infer-9", kind="batch_inference", name="qf-9", params={"model_version_id": "amv-x"}
    )
    store.create_task(task_id="odd-1", kind="teleportation", name="qf-odd", params={})
    runner.submit("infer-9")
    runner.submit("odd-1")
    assert (
        _settled(store, "infer-9").message
        == "Task infer-9 names model version 'amv-x', which does not exist."
    )
    assert _settled(store, "odd-1").message == (
        "Task odd-1 has kind 'teleportation', which the local platform does not run."
    )
    assert not (home.task_dir("infer-9") / "job.log").exists()


def test_a_restarted_platform_fails_resumes_or_queues_what_the_dead_one_left(
    home: Home, store: Store, runner: TaskRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QFRUN_TEST_JOB", "ok")
    store.create_task(task_id="cmp-1", kind="compression", name="qf-c", params={})
    store.update_task("cmp-1", status=RUNNING, worker_pid=999_999_999)  # no such process: nothing to kill
    _batch_task(home, store, tmp_path, "infer-1", status=RUNNING)
    workdir = home.task_dir("infer-1")
    workdir.mkdir(parents=True)
    (workdir / "part.jsonl").write_text('{"prompt": "1+1=?", "response": "2", "output": "2"}\n')
    _batch_task(home, store, tmp_path, "infer-2")
    runner.recover()
    compression = store.task("cmp-1")
    assert compression is not None
    assert (compression.status, compression.message, compression.worker_pid) == (FAILED, INTERRUPTED, None)
    resumed = _settled(store, "infer-1")
    assert resumed.status == SUCCEEDED
    assert resumed.result["rows"] == 2
    assert _settled(store, "infer-2").status == SUCCEEDED


def test_a_shut_down_runner_takes_no_new_task(
    home: Home, store: Store, stand_in: Path, tmp_path: Path
) -> None:
    tasks = TaskRunner(home, store, python=str(stand_in))
    tasks.shutdown(timeout=1)
    _batch_task(home, store, tmp_path)
    tasks.submit("infer-1")
    assert tasks.active() == []
    task = store.task("infer-1")
    assert task is not None
    assert task.status == PENDING
