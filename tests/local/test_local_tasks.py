"""Tasks run for real on the demo model: batch inference, evaluation and compression, over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.local.store import Store
from runner.local.workers import pid_alive

pytestmark = pytest.mark.slow
GRADER = Path(__file__).resolve().parents[2] / "models" / "tiny-grader"


def _jsonl(rows):
    return "".join(json.dumps(row) + "\n" for row in rows)


def _finished(api, route, action, body, key):
    def check():
        result = api.call(route, action, body)
        return (
            result if result[key] in {"Done", "Failed", "Stopped", "succeeded", "failed", "stopped"} else None
        )

    return check


def test_batch_inference_runs_to_done_and_exports_ordered_result_rows(platform_api, adder_dir, addition_rows):
    model = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    rows = addition_rows(40)
    dataset = platform_api.upload("eval40", _jsonl(rows))
    create = {
        "name": "qfrun-bi-1",
        "modelId": model["modelId"],
        "inputDatasetId": dataset["versionId"],
        "inferenceParams": {"temperature": 0, "max_output_tokens": 5},
        "batchSize": 16,
    }
    task_id = platform_api.call("batchinference", "CreateBatchInferenceTask", create)["taskId"]
    assert task_id.startswith("bi-")
    assert platform_api.call("batchinference", "CreateBatchInferenceTask", create)["taskId"] == task_id
    done = platform_api.wait(
        _finished(
            platform_api, "batchinference", "DescribeBatchInferenceTask", {"taskId": task_id}, "runStatus"
        )
    )
    assert done["runStatus"] == "Done", done["failedReason"]
    assert (done["progress"], done["totalCount"]) == (40, 40)
    exported = platform_api.call("dataset", "ExportDatasetVersion", {"versionId": done["outputDatasetId"]})
    results = [json.loads(line) for line in exported["content"].splitlines()]
    assert [row["prompt"] for row in results] == [row["prompt"] for row in rows]
    assert {row["model_version_id"] for row in results} == {model["modelId"]}
    correct = sum(row["prediction"].strip() == row["response"] for row in results)
    assert correct / len(results) >= 0.7

    grader = platform_api.call("model", "ImportLocalModel", {"name": "tiny-grader", "path": str(GRADER)})
    evaluators = [
        {"kind": "rule", "accuracy": True, "similarity": True},
        {"kind": "llm_judge", "judge_version_id": grader["modelId"], "max_score": 10},
    ]
    evaluation = {
        "taskName": "qfrun-et-1",
        "evalObjectType": "ResultDataset",
        "evalObjectConfig": {"resultDatasetIds": {model["modelId"]: done["outputDatasetId"]}},
        "evalConfig": {"evaluators": evaluators},
    }
    eval_id = platform_api.call("eval", "CreateEvalTask", evaluation)["taskId"]
    scored = platform_api.wait(
        _finished(platform_api, "eval", "DescribeEvalTask", {"taskId": eval_id}, "status")
    )
    assert scored["status"] == "Done", scored["failedReason"]
    report = platform_api.call("eval", "DescribeEvalTaskReport", {"taskId": eval_id})
    (entry,) = report["reports"]
    assert entry["modelVersionId"] == model["modelId"]
    assert entry["sampleCount"] == 40
    assert entry["metrics"]["accuracy"] == pytest.approx(correct / 40)
    assert 0 < entry["metrics"]["similarity"] <= 1
    assert 0.5 <= entry["metrics"]["judge_score"] <= 1  # the grader asked about (mostly right) answers


def test_evaluation_of_a_model_version_infers_inside_the_job(platform_api, adder_dir, addition_rows):
    model = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    dataset = platform_api.upload("eval20", _jsonl(addition_rows(20)))
    evaluation = {
        "taskName": "qfrun-et-2",
        "evalObjectType": "ModelVersion",
        "evalObjectConfig": {
            "modelVersionIds": [model["modelId"]],
            "datasetId": dataset["versionId"],
            "inferenceParams": {"temperature": 0, "max_output_tokens": 5},
        },
        "evalConfig": {"evaluators": [{"kind": "rule", "accuracy": True}]},
    }
    eval_id = platform_api.call("eval", "CreateEvalTask", evaluation)["taskId"]
    scored = platform_api.wait(
        _finished(platform_api, "eval", "DescribeEvalTask", {"taskId": eval_id}, "status")
    )
    assert scored["status"] == "Done", scored["failedReason"]
    assert scored["progress"] == scored["totalCount"] == 20
    (entry,) = platform_api.call("eval", "DescribeEvalTaskReport", {"taskId": eval_id})["reports"]
    assert entry["sampleCount"] == 20
    assert entry["metrics"]["accuracy"] >= 0.7


def test_compression_registers_a_smaller_version_with_its_lineage(platform_api, adder_dir, addition_rows):
    source = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    create = {
        "name": "qfrun-mct-1",
        "sourceModelId": source["modelId"],
        "modelSetId": source["modelSetId"],
        "config": {"strategy": "Quantization", "weight": "W8A16C16"},
    }
    task_id = platform_api.call("model", "CreateModelCompTask", create)
    assert isinstance(task_id, str)
    assert task_id.startswith("mct-")
    done = platform_api.wait(
        _finished(platform_api, "model", "DescribeModelCompTask", {"modelCompTaskId": task_id}, "status"),
        timeout=180,
    )
    assert done["status"] == "succeeded", done["failedReason"]
    version = platform_api.call("model", "DescribeModel", {"modelId": done["modelId"]})
    assert version["modelSetId"] == source["modelSetId"]
    assert version["version"] == "2"
    assert version["source"] == f"compression:{task_id}"
    assert version["details"]["lineage"] == {"source_version_id": source["modelId"], "task_id": task_id}
    assert version["details"]["weight"] == "W8A16C16"
    assert version["details"]["seconds"] is not None
    assert version["sizeBytes"] < source["sizeBytes"]


def test_stopping_a_running_batch_inference_ends_its_job(
    platform_api, platform_home, adder_dir, addition_rows
):
    model = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    dataset = platform_api.upload("eval200", _jsonl(addition_rows(200)))
    create = {
        "name": "qfrun-bi-stop",
        "modelId": model["modelId"],
        "inputDatasetId": dataset["versionId"],
        "batchSize": 1,
    }
    task_id = platform_api.call("batchinference", "CreateBatchInferenceTask", create)["taskId"]
    describe = {"taskId": task_id}
    platform_api.wait(
        lambda: platform_api.call("batchinference", "DescribeBatchInferenceTask", describe)["progress"] > 0
    )
    pid = Store(platform_home.db_path).task(task_id).worker_pid
    assert pid is not None
    platform_api.call("batchinference", "StopBatchInferenceTask", describe)
    stopped = platform_api.call("batchinference", "DescribeBatchInferenceTask", describe)
    assert stopped["runStatus"] == "Stopped"
    assert stopped["failedReason"] == "The task was stopped on request."
    platform_api.wait(lambda: not pid_alive(pid), timeout=10)
    platform_api.call(
        "batchinference", "StopBatchInferenceTask", describe
    )  # stopping a stopped task is no error
