"""After a platform restart, interrupted tasks continue or fail with the reason; none is re-run from zero."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import astuple

import pytest

from runner.local import launcher
from runner.local.rows import RUNNING
from runner.local.store import Store


def _jsonl(rows):
    return "".join(json.dumps(row) + "\n" for row in rows)


def test_interrupted_evaluation_is_failed_with_the_reason(
    platform_home, serve_platform, fake_model, tmp_path
):
    with serve_platform(platform_home) as api:
        model = api.call("model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))})
        dataset = api.upload("d", '{"prompt": "1+1=?", "response": "2"}\n')
    store = Store(platform_home.db_path)
    params = {
        "model_version_ids": [model["modelId"]],
        "dataset_id": dataset["versionId"],
        "evaluators": [{"kind": "rule", "accuracy": True}],
    }
    store.create_task(task_id="ame-interrupted", kind="evaluation", name="e", params=params)
    store.update_task("ame-interrupted", status=RUNNING, progress_done=0, progress_total=1)
    store.close()
    with serve_platform(platform_home) as api:
        task = api.call("eval", "DescribeEvalTask", {"taskId": "ame-interrupted"})
    assert task["state"] == "Failed"
    assert "interrupted by a platform restart" in task["failedReason"]


@pytest.mark.slow
def test_batch_inference_resumes_after_the_rows_it_wrote(
    platform_home, serve_platform, adder_dir, addition_rows
):
    rows = addition_rows(30)
    with serve_platform(platform_home) as api:
        model = api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
        dataset = api.upload("d30", _jsonl(rows))
    # What a platform killed after 10 rows leaves: a running task, the job's partial output, a torn line.
    store = Store(platform_home.db_path)
    params = {"model_version_id": model["modelId"], "dataset_id": dataset["versionId"], "batch_size": 8}
    store.create_task(task_id="infer-interrupted", kind="batch_inference", name="b", params=params)
    store.update_task(
        "infer-interrupted", status=RUNNING, progress_done=10, progress_total=30, worker_pid=None
    )
    store.close()
    written = [{"prompt": row["prompt"], "response": row["response"], "output": "kept"} for row in rows[:10]]
    workdir = platform_home.task_dir("infer-interrupted")
    workdir.mkdir(parents=True)
    (workdir / "part.jsonl").write_text(_jsonl(written) + '{"prompt": "torn', encoding="utf-8")
    with serve_platform(platform_home) as api:
        done = api.wait(
            lambda: (
                _describe(api, "infer-interrupted")["runStatus"] != "Running"
                and _describe(api, "infer-interrupted")
            )
        )
        assert done["runStatus"] == "Done", done.get("errorReason")
        assert (done["progress"], done["totalCount"]) == (30, 30)
        exported = api.call("dataset", "ExportDatasetVersion", {"versionId": done["outputDatasetId"]})
    results = [json.loads(line) for line in exported["content"].splitlines()]
    assert [row["prompt"] for row in results] == [row["prompt"] for row in rows]
    assert [row["prediction"] for row in results[:10]] == ["kept"] * 10  # not inferred again
    assert all(row["prediction"] != "kept" for row in results[10:])


@pytest.mark.slow
def test_a_killed_platform_resumes_its_batch_inference_on_start(
    platform_home, platform_client, adder_dir, addition_rows
):
    rows = addition_rows(96)
    api = platform_client(*astuple(launcher.start(platform_home)))
    try:
        model = api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
        dataset = api.upload("d200", _jsonl(rows))
        create = {
            "name": "resumed",
            "modelId": model["modelId"],
            "inputDatasetId": dataset["versionId"],
            "batchSize": 4,
        }
        task_id = api.call("batchinference", "CreateBatchInferenceTask", create)["taskId"]
        api.wait(lambda: _describe(api, task_id)["progress"] >= 8, every=0.05)
        running = launcher.status(platform_home)
        assert running is not None
        os.kill(running.pid, signal.SIGKILL)
        api = platform_client(*astuple(launcher.start(platform_home)))
        task = api.wait(
            lambda: _describe(api, task_id)["runStatus"] != "Running" and _describe(api, task_id), timeout=120
        )
        assert task["runStatus"] == "Done", task.get("errorReason")
        assert task["progress"] == 96
        exported = api.call("dataset", "ExportDatasetVersion", {"versionId": task["outputDatasetId"]})
        prompts = [json.loads(line)["prompt"] for line in exported["content"].splitlines()]
        assert prompts == [row["prompt"] for row in rows]
    finally:
        launcher.stop(platform_home)


def _describe(api, task_id):
    return api.call("batchinference", "DescribeBatchInferenceTask", {"taskId": task_id})
