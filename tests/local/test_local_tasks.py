"""Tasks run for real on the demo model: batch inference, evaluation and compression, over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.local.processes import pid_alive
from runner.local.store import Store

pytestmark = pytest.mark.slow
GRADER = Path(__file__).resolve().parents[2] / "models" / "tiny-grader"
# The documented final status words: batch inference, evaluation (Qianfan's spelling), compression.
FINAL = {"Done", "Failed", "Expired", "Stopped", "Successed", "succeeded", "failed", "stopped"}


def _jsonl(rows):
    return "".join(json.dumps(row) + "\n" for row in rows)


def _finished(api, route, action, body, key):
    def check():
        result = api.call(route, action, body)
        return result if result[key] in FINAL else None

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
    assert task_id.startswith("infer-")
    assert platform_api.call("batchinference", "CreateBatchInferenceTask", create)["taskId"] == task_id
    done = platform_api.wait(
        _finished(
            platform_api, "batchinference", "DescribeBatchInferenceTask", {"taskId": task_id}, "runStatus"
        )
    )
    assert done["runStatus"] == "Done", done.get("errorReason")
    assert "errorCode" not in done
    assert "errorReason" not in done
    assert (done["progress"], done["totalCount"]) == (40, 40)
    assert (done["taskId"], done["name"], done["modelId"]) == (task_id, "qfrun-bi-1", model["modelId"])
    assert done["inferenceParams"] == {"temperature": 0, "max_output_tokens": 5}
    assert done["inputDatasetId"] == dataset["versionId"]
    assert done["outputDatasetId"].startswith("ds-")
    exported = platform_api.call("dataset", "ExportDatasetVersion", {"versionId": done["outputDatasetId"]})
    results = [json.loads(line) for line in exported["content"].splitlines()]
    assert [row["prompt"] for row in results] == [row["prompt"] for row in rows]
    assert {row["model_version_id"] for row in results} == {model["modelId"]}
    correct = sum(row["prediction"].strip() == row["response"] for row in results)
    assert correct / len(results) >= 0.7

    grader = platform_api.call("model", "ImportLocalModel", {"name": "tiny-grader", "path": str(GRADER)})
    # The result set names no model: the platform reads it from the batch inference task that wrote it.
    evaluation = {
        "taskName": "qfrun-et-1",
        "evalObjectType": "inferDataset",
        "evalObjectConfig": {
            "evalInferDatasetConfig": {
                "evalInferDatasetConfigList": [{"inferDatasetId": done["outputDatasetId"]}]
            }
        },
        "evalConfig": {
            "evalMode": "rule,model",
            "autoRuleEvalConfig": {"scoreModes": ["accuracy", "similarity"]},
            "autoModelEvalConfig": {"modelId": grader["modelId"], "maxScore": 10},
        },
    }
    eval_id = platform_api.call("eval", "CreateEvalTask", evaluation)
    assert eval_id.startswith("ame-")
    assert platform_api.call("eval", "CreateEvalTask", evaluation) == eval_id
    scored = platform_api.wait(
        _finished(platform_api, "eval", "DescribeEvalTask", {"taskId": eval_id}, "state")
    )
    assert scored["state"] == "Successed", scored["failedReason"]
    assert scored["failedReason"] == ""
    report = platform_api.call("eval", "DescribeEvalTaskReport", {"taskId": eval_id})
    (entry,) = report
    assert (entry["taskId"], entry["taskName"]) == (eval_id, "qfrun-et-1")
    assert entry["modelId"] == model["modelId"]
    assert (entry["evalObjectType"], entry["evalMode"]) == ("inferDataset", "rule,model")
    assert entry["inferDatasetId"] == done["outputDatasetId"]
    assert entry["sampleCount"] == 40
    metrics = entry["effectMetric"]
    assert metrics["accuracy"] == pytest.approx(correct / 40)
    assert 0 < metrics["similarity"] <= 1
    assert 0.5 <= metrics["avgJudgeScore"] <= 1  # the grader asked about (mostly right) answers


def test_evaluation_of_a_model_version_infers_inside_the_job(platform_api, adder_dir, addition_rows):
    model = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    dataset = platform_api.upload("eval20", _jsonl(addition_rows(20)))
    entries = [
        {
            "modelId": model["modelId"],
            "promptTemplate": "{input}",
            "params": {"temperature": 0, "max_output_tokens": 5},
        }
    ]
    evaluation = {
        "taskName": "qfrun-et-2",
        "evalObjectType": "model",
        "evalObjectConfig": {
            "evalModelConfig": {
                "versionId": dataset["versionId"],
                "storageType": "sysStorage",
                "evalModelConfigList": entries,
            }
        },
        "evalConfig": {"evalMode": "rule", "autoRuleEvalConfig": {"scoreModes": ["accuracy", "exact_match"]}},
    }
    eval_id = platform_api.call("eval", "CreateEvalTask", evaluation)
    assert eval_id.startswith("ame-")
    scored = platform_api.wait(
        _finished(platform_api, "eval", "DescribeEvalTask", {"taskId": eval_id}, "state")
    )
    assert scored["state"] == "Successed", scored["failedReason"]
    assert scored["evalType"] == "auto"
    assert scored["progress"] == scored["totalCount"] == 20
    (entry,) = platform_api.call("eval", "DescribeEvalTaskReport", {"taskId": eval_id})
    assert (entry["taskId"], entry["modelId"]) == (eval_id, model["modelId"])
    assert (entry["evalObjectType"], entry["evalMode"], entry["inferDatasetId"]) == ("model", "rule", "")
    assert entry["sampleCount"] == 20
    assert entry["effectMetric"]["accuracy"] >= 0.7
    assert 0 < entry["effectMetric"]["exact_match"] <= entry["effectMetric"]["accuracy"]
    listed = platform_api.call("eval", "DescribeEvalTasks", {"evalType": "auto", "keyFilter": "et-2"})
    assert [task["taskId"] for task in listed["evalTaskList"]] == [eval_id]


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
    assert task_id.startswith("amva-")
    done = platform_api.wait(
        _finished(platform_api, "model", "DescribeModelCompTask", {"modelCompTaskId": task_id}, "status"),
        timeout=180,
    )
    assert done["status"] == "succeeded", done["failedReason"]
    assert (done["id"], done["name"], done["sourceModelId"]) == (task_id, "qfrun-mct-1", source["modelId"])
    assert done["config"] == {"strategy": "Quantization", "weight": "W8A16C16"}
    assert done["modelSetId"] == source["modelSetId"]
    assert done["finishTime"]
    version = platform_api.call("model", "DescribeModel", {"modelId": done["modelId"]})
    assert version["modelSetId"] == source["modelSetId"]
    assert (version["modelName"], version["status"]) == ("tiny-adder", "Ready")
    assert version["version"] == "2"
    assert version["sourceInfo"] == {"sourceType": "Acceleration", "taskId": task_id}
    assert done["sizeBytes"] == version["sizeBytes"]
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
    # One job runs at a time, so a second task waits: `Queuing` [B4].
    queued = {**create, "name": "qfrun-bi-queued"}
    queued_id = platform_api.call("batchinference", "CreateBatchInferenceTask", queued)["taskId"]
    waiting = platform_api.call("batchinference", "DescribeBatchInferenceTask", {"taskId": queued_id})
    assert waiting["runStatus"] == "Queuing"
    assert platform_api.call("batchinference", "StopBatchInferenceTask", {"taskId": queued_id}) is True
    assert platform_api.call("batchinference", "StopBatchInferenceTask", describe) is True
    stopped = platform_api.call("batchinference", "DescribeBatchInferenceTask", describe)
    assert stopped["runStatus"] == "Stopped"
    assert stopped["errorReason"] == "The task was stopped on request."
    assert "errorCode" not in stopped  # a code comes with a failure only
    platform_api.wait(lambda: not pid_alive(pid), timeout=10)
    # stopping a stopped task is no error
    assert platform_api.call("batchinference", "StopBatchInferenceTask", describe) is True
    never = platform_api.call("batchinference", "DescribeBatchInferenceTask", {"taskId": queued_id})
    assert (never["runStatus"], never["progress"]) == ("Stopped", 0)
