"""The official pages' example requests, sent to the local platform as they are written, answer as documented.

Each body below is copied from shared/reference/qianfan-official-api.md (source key in the test's name or
docstring); only the ids are replaced by ids this platform knows. The answers are checked field by field
against the same pages, by raw HTTP, so neither the client nor runner.platform.wire is involved.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import Api

MODEL_STATUS = {"Ready", "Creating", "Fail"}  # [M2]
EVAL_STATES = {  # [E2]
    "Queued",
    "Running",
    "RunningWithManualBegin",
    "RunningWithMetricsCalculating",
    "Successed",
    "Stopping",
    "Failed",
    "Stopped",
}
COMP_STATUS = {"creating", "running", "succeeded", "failed", "stopping", "stopped"}  # [C2]


@pytest.fixture
def ids(platform_api: Api, fake_model: Callable[[Path], Path], tmp_path: Path) -> dict[str, str]:
    model = platform_api.call(
        "model", "ImportLocalModel", {"name": "demo", "path": str(fake_model(tmp_path / "m"))}
    )
    dataset = platform_api.upload("qa", '{"prompt": "1+1=?", "response": "2"}\n')
    return {"model": model["modelId"], "set": model["modelSetId"], "dataset": dataset["versionId"]}


def _envelope(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["requestId"] == response.headers["X-Bce-Request-Id"]
    return body


def test_describe_model_answers_m2s_fields(platform_api: Api, ids: dict[str, str]) -> None:
    result = platform_api.call("model", "DescribeModel", {"modelId": ids["model"]})
    assert (result["modelId"], result["modelSetId"]) == (ids["model"], ids["set"])
    assert result["status"] in MODEL_STATUS
    assert result["sourceInfo"]["sourceType"] in {"Train", "Acceleration", "Import", "PlatformPreset"}
    assert isinstance(result["modelName"], str)
    assert isinstance(result["isSupportModelComp"], bool)
    assert result["modelApplicationType"] == "chat"


def test_c1_create_model_comp_task_example(platform_api: Api, ids: dict[str, str]) -> None:
    body = {
        "name": "demo",
        "description": "test",
        "sourceModelId": ids["model"],
        "modelSetId": ids["set"],
        "config": {"strategy": "Quantization", "weight": "INT8-PTQ"},
    }
    task_id = platform_api.call("model", "CreateModelCompTask", body)
    assert isinstance(task_id, str)  # the result is the id itself [C2]
    assert task_id.startswith("amva-")
    described = platform_api.call("model", "DescribeModelCompTask", {"modelCompTaskId": task_id})
    documented = {"id", "name", "description", "status", "failedReason", "sourceModelId", "modelId", "config"}
    assert documented <= described.keys()
    assert (described["id"], described["name"], described["description"]) == (task_id, "demo", "test")
    assert described["status"] in COMP_STATUS
    assert described["config"] == {"strategy": "Quantization", "weight": "INT8-PTQ"}
    listed = platform_api.call("model", "DescribeModelCompTasks", {"sourceModelId": ids["model"]})
    assert [item["id"] for item in listed["modelCompTaskList"]] == [task_id]
    assert listed["pageInfo"] == {"marker": "", "maxKeys": 10, "isTruncated": False}


def test_c4_cancel_model_comp_task_answers_only_a_request_id(platform_api: Api, ids: dict[str, str]) -> None:
    body = {"name": "demo", "sourceModelId": ids["model"], "modelSetId": ids["set"]}
    body["config"] = {"strategy": "Sparsity"}
    task_id = platform_api.call("model", "CreateModelCompTask", body)
    response = platform_api.post("/v2/model?Action=CancelModelCompTask", {"modelCompTaskId": task_id})
    assert set(_envelope(response)) == {"requestId"}


def test_e1_create_eval_task_example(platform_api: Api, ids: dict[str, str]) -> None:
    body = {
        "taskName": "管控API裁判员评估测试",
        "description": "管控API测试",
        "evalObjectType": "model",
        "evalObjectConfig": {
            "evalModelConfig": {
                "versionId": ids["dataset"],
                "storageType": "sysStorage",
                "evalModelConfigList": [
                    {
                        "modelId": ids["model"],
                        "promptTemplate": (
                            "你是一个好助手,请遵照{input}要求,以商务风格做出相应回复,要求语言简练,客观详尽。"
                        ),
                    }
                ],
            }
        },
        "evalConfig": {"evalMode": "model", "autoModelEvalConfig": {"apiName": "ERNIE-xxx"}},
    }
    task_id = platform_api.call("eval", "CreateEvalTask", body)
    assert isinstance(task_id, str)  # [E2]: "the result field" is the id
    assert task_id.startswith("ame-")
    described = platform_api.call("eval", "DescribeEvalTask", {"taskId": task_id})
    assert (described["taskId"], described["taskName"], described["description"]) == (
        task_id,
        "管控API裁判员评估测试",
        "管控API测试",
    )
    assert described["evalType"] == "auto"
    assert described["state"] in EVAL_STATES
    # [E3]'s example request, with this task's id as the fuzzy key
    listed = platform_api.call("eval", "DescribeEvalTasks", {"evalType": "auto", "keyFilter": task_id})
    assert [item["taskId"] for item in listed["evalTaskList"]] == [task_id]
    assert listed["pageInfo"]["isTruncated"] is False
    assert "nextMarker" not in listed["pageInfo"]
    # [E5]: StopEvalTask answers an empty object
    assert platform_api.call("eval", "StopEvalTask", {"taskId": task_id}) == {}


def test_e3_the_eval_list_requires_its_eval_type(platform_api: Api) -> None:
    response = platform_api.post("/v2/eval?Action=DescribeEvalTasks", {"keyFilter": "x"})
    assert response.status_code == 400
    assert set(response.json()) == {"requestId", "code", "message"}
    assert "evalType" in response.json()["message"]


def test_e1_a_prompt_template_without_input_is_refused(platform_api: Api, ids: dict[str, str]) -> None:
    entry = {"modelId": ids["model"], "promptTemplate": "Answer briefly."}
    body = {
        "taskName": "t1",
        "evalObjectType": "model",
        "evalObjectConfig": {
            "evalModelConfig": {"versionId": ids["dataset"], "evalModelConfigList": [entry]}
        },
        "evalConfig": {"evalMode": "rule", "autoRuleEvalConfig": {"scoreModes": ["accuracy"]}},
    }
    response = platform_api.post("/v2/eval?Action=CreateEvalTask", body)
    assert response.status_code == 400
    assert "promptTemplate must contain {input}" in response.json()["message"]


def test_b7_stop_batch_inference_answers_true(platform_api: Api, ids: dict[str, str]) -> None:
    body = {"name": "eb4-job4", "description": "desc", "modelId": ids["model"]}
    body.update({"inferenceParams": {"temperature": 0.9, "top_p": 0.3}, "inputDatasetId": ids["dataset"]})
    task_id = platform_api.call("batchinference", "CreateBatchInferenceTask", body)["taskId"]
    assert task_id.startswith("infer-")
    response = platform_api.post("/v2/batchinference?Action=StopBatchInferenceTask", {"taskId": task_id})
    assert _envelope(response)["result"] is True


def test_b2_a_batch_task_name_has_2_to_20_characters(platform_api: Api, ids: dict[str, str]) -> None:
    for name in ("x", "x" * 21):
        body = {"name": name, "modelId": ids["model"], "inputDatasetId": ids["dataset"]}
        response = platform_api.post("/v2/batchinference?Action=CreateBatchInferenceTask", body)
        assert response.status_code == 400
        assert "2 to 20 characters" in response.json()["message"]


def test_paging_defaults_to_10_and_reads_more_than_100_as_100(platform_api: Api, ids: dict[str, str]) -> None:
    created = []
    for index in range(12):
        body = {"name": f"job-{index:02d}", "modelId": ids["model"], "inputDatasetId": ids["dataset"]}
        created.append(platform_api.call("batchinference", "CreateBatchInferenceTask", body)["taskId"])
    first = platform_api.call("batchinference", "DescribeBatchInferenceTasks", {})
    assert [item["taskId"] for item in first["taskList"]] == created[:10]
    assert first["pageInfo"] == {"marker": "", "maxKeys": 10, "isTruncated": True, "nextMarker": created[10]}
    rest = platform_api.call("batchinference", "DescribeBatchInferenceTasks", {"marker": created[10]})
    assert [item["taskId"] for item in rest["taskList"]] == created[10:]
    assert rest["pageInfo"]["isTruncated"] is False
    everything = platform_api.call("batchinference", "DescribeBatchInferenceTasks", {"maxKeys": 1000})
    assert everything["pageInfo"]["maxKeys"] == 100
    assert len(everything["taskList"]) == 12
    newest = platform_api.call("batchinference", "DescribeBatchInferenceTasks", {"pageReverse": True})
    assert newest["taskList"][0]["taskId"] == created[-1]


def test_an_error_is_the_documented_envelope(platform_api: Api) -> None:
    response = platform_api.post("/v2/model?Action=DescribeModel", {"modelId": "amv-missing"})
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"requestId", "code", "message"}
    assert body["requestId"] == response.headers["X-Bce-Request-Id"]


def _put(api: Api, path: str, text: str) -> None:
    bearer = {"Authorization": f"Bearer {api.token}"}
    response = httpx.put(api.url + path, content=text.encode(), headers=bearer, timeout=30)
    assert response.status_code == 200, response.text


def test_b1_create_batch_inference_task_example_reads_its_bos_folders(
    platform_api: Api, ids: dict[str, str]
) -> None:
    # [B1]'s example body; a model version takes the place of the preset endpoint (the local platform runs
    # versions only), and its buckets are made on the local BOS first.
    _put(platform_api, "/sdc-default", "")
    line = '{"id": "1", "query": "地球的自转周期是多久？"}\n'  # noqa: RUF001 - [B8]'s own input line
    _put(platform_api, "/sdc-default/zhxxxan/input/q.jsonl", line)
    body = {
        "name": "eb4-job4",
        "description": "desc",
        "modelId": ids["model"],
        "inferenceParams": {"temperature": 0.9, "top_p": 0.3},
        "inputBosUri": "bos:/sdc-default/zhxxxan/input",
        "outputBosUri": "bos:/sdc-default/zhaxxxan/output",
    }
    task_id = platform_api.call("batchinference", "CreateBatchInferenceTask", body)["taskId"]
    described = platform_api.call("batchinference", "DescribeBatchInferenceTask", {"taskId": task_id})
    assert (described["inputBosUri"], described["outputBosUri"]) == (
        body["inputBosUri"],
        body["outputBosUri"],
    )
    assert described["runStatus"] in {"Queuing", "Running", "Failed"}  # the stand-in model cannot run


def test_b2_batch_input_the_platform_cannot_read_is_refused_at_create(
    platform_api: Api, ids: dict[str, str]
) -> None:
    _put(platform_api, "/qfrun-local/in/q.jsonl", '{"id": "1"}\n')
    body = {"name": "job", "modelId": ids["model"], "outputBosUri": "bos:/qfrun-local/out/"}
    for uri, message in (
        ("bos:/qfrun-local/in/", "line 1 needs a 'query'"),
        ("bos:/qfrun-local/empty/", "holds no .jsonl or .txt file"),
        ("bos:/nobucket/in/", "nobucket"),
    ):
        response = platform_api.post(
            "/v2/batchinference?Action=CreateBatchInferenceTask", {**body, "inputBosUri": uri}
        )
        assert response.status_code == 400, response.text
        assert message in response.json()["message"]


@pytest.mark.slow
def test_batch_inference_writes_qianfans_output_lines_to_bos(platform_api: Api, adder_dir: Path) -> None:
    model = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    _put(
        platform_api,
        "/qfrun-local/in/a.jsonl",
        '{"id": "x1", "query": "23+45=?"}\n{"id": "x2", "query": "1+2=?"}\n',
    )
    body = {
        "name": "adder-job",
        "modelId": model["modelId"],
        "inferenceParams": {"temperature": 0, "max_output_tokens": 5},
        "inputBosUri": "bos:/qfrun-local/in/",
        "outputBosUri": "bos:/qfrun-local/out/",
    }
    task_id = platform_api.call("batchinference", "CreateBatchInferenceTask", body)["taskId"]

    def done() -> Any:
        result = platform_api.call("batchinference", "DescribeBatchInferenceTask", {"taskId": task_id})
        return result if result["runStatus"] in {"Done", "Failed", "Stopped"} else None

    finished = platform_api.wait(done)
    assert finished["runStatus"] == "Done", finished.get("errorReason")
    assert len(finished["outputDir"]) == 24  # the task's sub-directory [B2][B5]
    response = httpx.get(
        f"{platform_api.url}/qfrun-local/out/{finished['outputDir']}/a.jsonl",
        headers={"Authorization": f"Bearer {platform_api.token}"},
        timeout=30,
    )
    assert response.status_code == 200
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [(line["id"], line["query"]) for line in lines] == [("x1", "23+45=?"), ("x2", "1+2=?")]
    assert lines[0]["output"]["result"].strip() == "68"  # the tiny adder adds
    assert lines[0]["output"]["object"] == "chat.completion"  # [B8]
