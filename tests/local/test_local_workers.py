"""The task runner with a stand-in engine job: progress, results, errors, crashes, stops, one job at a time.

The stand-in is a small script given to ``TaskRunner(python=...)``: it receives the same command line as
the real engine job (``-m runner.local.engine.job SPEC``) and acts by the model folder's name, so these
tests cover the worker's side of the contract without loading a model.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from runner.local import workers
from runner.local.home import Home
from runner.local.rows import FAILED, PENDING, RUNNING, STOPPED, SUCCEEDED
from runner.local.store import Store
from runner.local.workers import INTERRUPTED, TaskRunner

pytestmark = pytest.mark.slow  # starts (stand-in) job processes

FAKE_JOB = f"""#!{sys.executable}
import json, sys, time
from pathlib import Path

spec = json.loads(Path(sys.argv[3]).read_text())
params, workdir = spec["params"], Path(spec["workdir"])
mode = Path(params["model_dir"]).name
rows = [json.loads(line) for line in Path(params["dataset_path"]).read_text().splitlines() if line.strip()]
Path(spec["progress_file"]).write_text(json.dumps({{"done": 0, "total": len(rows)}}))
if mode == "crash":
    sys.stderr.write("loading the model\\nRuntimeError: the weights are corrupt\\n")
    sys.exit(3)
if mode == "error":
    (workdir / "result.json").write_text(json.dumps({{"error": "The model folder has no tokenizer."}}))
    sys.exit(1)
with open(params["output_path"], "a") as out:
    for index, row in enumerate(rows):
        if mode == "slow":
            time.sleep(0.2)
        record = {{"prompt": row["prompt"], "response": row.get("response"), "output": "ok"}}
        out.write(json.dumps(record) + "\\n")
        out.flush()
        Path(spec["progress_file"]).write_text(json.dumps({{"done": index + 1, "total": len(rows)}}))
(workdir / "result.json").write_text(json.dumps({{"rows": len(rows)}}))
"""


@pytest.fixture
def setup(tmp_path):
    home = Home(tmp_path / "home").ensure()
    store = Store(home.db_path)
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_JOB)
    fake.chmod(0o755)
    model = store.ensure_model("m")
    for mode in ("ok", "crash", "error", "slow"):
        (home.models_dir / mode).mkdir()
        store.add_version(
            version_id=f"amv-{mode}",
            model_id=model.id,
            path=str(home.models_dir / mode),
            content_hash=mode,
            size_bytes=1,
            source="import",
            details={},
        )
    data = home.datasets_dir / "d.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": f"{i}+1=?", "response": str(i + 1)}) + "\n" for i in range(5))
    )
    dataset = store.add_dataset(name="d", path=str(data), sha256="d", rows=5, size_bytes=1, source="test")
    runner = TaskRunner(home, store, python=str(fake))
    yield home, store, runner, dataset.id
    runner.shutdown()
    store.close()


def _submit(store, runner, dataset_id, mode, name=None):
    params = {"model_version_id": f"amv-{mode}", "dataset_id": dataset_id}
    task = store.create_task(
        task_id=f"infer-{name or mode}", kind="batch_inference", name=name or mode, params=params
    )
    runner.submit(task.id)
    return task.id


def _settle(store, task_id, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = store.task(task_id)
        if task.status not in (PENDING, RUNNING):
            return task
        time.sleep(0.05)
    raise AssertionError(f"{task_id} still {store.task(task_id).status}")


def test_a_job_that_succeeds_stores_its_result_dataset_and_progress(setup):
    _, store, runner, dataset_id = setup
    task = _settle(store, _submit(store, runner, dataset_id, "ok"))
    assert task.status == SUCCEEDED, task.message
    assert (task.progress_done, task.progress_total) == (5, 5)
    result = store.dataset(task.result["result_dataset_id"])
    rows = [json.loads(line) for line in Path(result.path).read_text().splitlines()]
    assert [row["prediction"] for row in rows] == ["ok"] * 5
    assert rows[0] == {"prompt": "0+1=?", "response": "1", "prediction": "ok", "model_version_id": "amv-ok"}


def test_a_job_error_becomes_the_task_message(setup):
    _, store, runner, dataset_id = setup
    task = _settle(store, _submit(store, runner, dataset_id, "error"))
    assert task.status == FAILED
    assert task.message == "The model folder has no tokenizer."


def test_a_crashed_job_is_reported_with_its_exit_status_and_last_lines(setup):
    _, store, runner, dataset_id = setup
    task = _settle(store, _submit(store, runner, dataset_id, "crash"))
    assert task.status == FAILED
    assert task.message.startswith(f"The batch_inference job of task {task.id} ended with exit status 3")
    assert "RuntimeError: the weights are corrupt" in task.message


def test_one_job_runs_at_a_time_and_a_queued_task_can_be_stopped(setup):
    _, store, runner, dataset_id = setup
    first = _submit(store, runner, dataset_id, "slow")
    queued = _submit(store, runner, dataset_id, "ok", name="queued")
    time.sleep(0.3)
    assert store.task(queued).status == PENDING
    assert runner.cancel(queued) is True
    assert _settle(store, first).status == SUCCEEDED
    assert store.task(queued).status == STOPPED
    assert not (store.task(queued).result)


def test_stopping_a_job_being_started_answers_at_once_and_ends_the_job_once_it_exists(setup, monkeypatch):
    # A job's start holds its lock while the warm worker finishes importing torch (seconds on a busy machine);
    # a stop must not wait for that, and the job, once forked, must still be ended.
    _, store, runner, dataset_id = setup
    entered, release = threading.Event(), threading.Event()
    real_launch = workers.launch

    def slow_launch(*args, **kwargs):
        entered.set()
        release.wait(30)
        return real_launch(*args, **kwargs)

    monkeypatch.setattr(workers, "launch", slow_launch)
    task_id = _submit(store, runner, dataset_id, "slow")
    assert entered.wait(10)
    stopping = threading.Thread(target=runner.cancel, args=(task_id,))
    stopping.start()
    stopping.join(10)
    assert not stopping.is_alive()  # answered while the start was still held up
    release.set()
    assert _settle(store, task_id).status == STOPPED
    deadline = time.monotonic() + 20
    while runner.active() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.active() == []  # the job process was ended, not left to run its rows
    assert not store.task(task_id).result


def test_recover_resumes_batch_inference_and_fails_other_running_kinds(setup):
    home, store, runner, dataset_id = setup
    params = {"model_version_id": "amv-ok", "dataset_id": dataset_id}
    store.create_task(task_id="infer-resume", kind="batch_inference", name="r", params=params)
    store.update_task("infer-resume", status=RUNNING)
    workdir = home.task_dir("infer-resume")
    workdir.mkdir(parents=True)
    kept = [
        {"prompt": "0+1=?", "response": "1", "output": "earlier"},
        {"prompt": "1+1=?", "response": "2", "output": "earlier"},
    ]
    (workdir / "part.jsonl").write_text("".join(json.dumps(row) + "\n" for row in kept) + '{"prompt"')
    store.create_task(task_id="amva-x", kind="compression", name="c", params={"model_version_id": "amv-ok"})
    store.update_task("amva-x", status=RUNNING)
    store.create_task(task_id="infer-queued", kind="batch_inference", name="q", params=params)
    runner.recover()
    assert store.task("amva-x").status == FAILED
    assert store.task("amva-x").message == INTERRUPTED
    resumed = _settle(store, "infer-resume")
    assert resumed.status == SUCCEEDED, resumed.message
    rows = [
        json.loads(line)
        for line in Path(store.dataset(resumed.result["result_dataset_id"]).path).read_text().splitlines()
    ]
    assert [row["prediction"] for row in rows] == ["earlier", "earlier", "ok", "ok", "ok"]
    assert _settle(store, "infer-queued").status == SUCCEEDED


def test_a_task_naming_a_missing_version_fails_with_a_sentence(setup):
    _, store, runner, dataset_id = setup
    params = {"model_version_id": "amv-gone", "dataset_id": dataset_id}
    store.create_task(task_id="infer-gone", kind="batch_inference", name="g", params=params)
    runner.submit("infer-gone")
    task = _settle(store, "infer-gone")
    assert task.status == FAILED
    assert task.message == "Task infer-gone names model version 'amv-gone', which does not exist."
