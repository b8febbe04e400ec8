"""The local platform refuses bad requests with Qianfan's error JSON and the right status, never a 500."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from runner.local.home import Home


def _error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["requestId"] == response.headers["X-Bce-Request-Id"]
    assert body["message"].endswith(".")
    return str(body["message"])


def test_unknown_action_names_the_route_and_lists_its_actions(platform_api):
    message = _error(platform_api.post("/v2/model?Action=Explode", {}), 400, "InvalidParameter")
    assert "/v2/model has no action 'Explode'" in message
    assert "DescribeModel" in message


def test_missing_action_unknown_route_and_unknown_path_are_refused(platform_api):
    assert "needs the query parameter Action" in _error(
        platform_api.post("/v2/model", {}), 400, "InvalidParameter"
    )
    assert "/v2/nothing" in _error(platform_api.post("/v2/nothing?Action=X", {}), 404, "ResourceNotFound")
    _error(platform_api.post("/v3/elsewhere", {}), 404, "ResourceNotFound")


def test_missing_field_and_wrong_type_name_the_field(platform_api):
    message = _error(platform_api.post("/v2/model?Action=DescribeModel", {}), 400, "InvalidParameter")
    assert "'modelId'" in message
    message = _error(
        platform_api.post("/v2/model?Action=DescribeModel", {"modelId": 7}), 400, "InvalidParameter"
    )
    assert "must be a string, not an integer" in message


def test_body_that_is_not_a_json_object_is_a_400(platform_api):
    response = platform_api.post("/v2/dataset?Action=DescribeDatasetVersion", content=b"{nope")
    assert "not valid JSON" in _error(response, 400, "InvalidParameter")
    response = platform_api.post("/v2/dataset?Action=DescribeDatasetVersion", [1, 2])
    assert "must be a JSON object" in _error(response, 400, "InvalidParameter")


@pytest.mark.parametrize(
    ("route", "action", "body"),
    [
        ("model", "DescribeModel", {"modelId": "amv-missing"}),
        ("dataset", "DescribeDatasetVersion", {"versionId": "dsv-missing"}),
        ("batchinference", "DescribeBatchInferenceTask", {"taskId": "bi-missing"}),
        ("eval", "DescribeEvalTask", {"taskId": "et-missing"}),
        ("model", "DescribeModelCompTask", {"modelCompTaskId": "mct-missing"}),
        ("service", "DescribeService", {"serviceId": "svc-missing"}),
        (
            "batchinference",
            "CreateBatchInferenceTask",
            {"name": "t", "modelId": "amv-x", "inputDatasetId": "dsv-x"},
        ),
    ],
)
def test_unknown_ids_are_resource_not_found(platform_api, route: str, action: str, body: dict):
    message = _error(platform_api.post(f"/v2/{route}?Action={action}", body), 404, "ResourceNotFound")
    assert "does not exist" in message


def test_token_is_required_when_set_and_compared_exactly(platform_home: Home, serve_platform):
    with serve_platform(platform_home, token="s3cret-token") as api:
        assert "bearer token" in _error(
            api.post("/v2/model?Action=DescribeModel", {}, token=""), 401, "Unauthorized"
        )
        response = api.post("/v2/model?Action=DescribeModel", {"modelId": "amv-x"}, token="s3cret-tokeN")
        message = _error(response, 401, "Unauthorized")
        assert "s3cret" not in message
        response = api.post("/v2/model?Action=DescribeModel", {"modelId": "amv-x"})
        _error(response, 404, "ResourceNotFound")
        chat = api.post("/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/x", {"messages": []}, token="wrong")
        assert chat.status_code == 401
        assert chat.json()["error_code"] == 13


def test_dataset_upload_checks_hash_and_rows_and_is_idempotent(platform_api):
    text = '{"prompt": "1+1=?", "response": "2"}\n'
    bad_hash = {"name": "d", "sha256": "0" * 64, "content": text}
    assert "sha256" in _error(
        platform_api.post("/v2/dataset?Action=ImportLocalDataset", bad_hash), 400, "InvalidParameter"
    )
    broken = text + '{"response": "3"}\n'
    body = {"name": "d", "sha256": hashlib.sha256(broken.encode()).hexdigest(), "content": broken}
    message = _error(
        platform_api.post("/v2/dataset?Action=ImportLocalDataset", body), 400, "InvalidParameter"
    )
    assert "line 2" in message
    first, second = platform_api.upload("d", text), platform_api.upload("d", text)
    assert first["versionId"] == second["versionId"]
    assert first["versionId"].startswith("dsv-")
    assert first["datasetId"].startswith("ds-")
    assert first["entityCount"] == 1
    other = platform_api.upload("d", text + '{"prompt": "2+2=?", "response": "4"}\n')
    assert other["datasetId"] == first["datasetId"]
    assert other["versionId"] != first["versionId"]
    exported = platform_api.call("dataset", "ExportDatasetVersion", {"versionId": first["versionId"]})
    assert exported["content"] == text


def test_model_import_is_idempotent_by_content_and_copies_the_folder(
    platform_api, tmp_path: Path, fake_model
):
    folder = fake_model(tmp_path / "m")
    first = platform_api.call("model", "ImportLocalModel", {"name": "m", "path": str(folder)})
    again = platform_api.call("model", "ImportLocalModel", {"name": "m", "path": str(folder)})
    assert again["modelId"] == first["modelId"]
    assert first["modelId"].startswith("amv-")
    assert first["modelSetId"].startswith("am-")
    assert first["version"] == "1"
    (folder / "config.json").write_text('{"model_type": "llama", "changed": true}')
    changed = platform_api.call("model", "ImportLocalModel", {"name": "m", "path": str(folder)})
    assert changed["modelId"] != first["modelId"]
    assert changed["version"] == "2"
    described = platform_api.call("model", "DescribeModel", {"modelId": first["modelId"]})
    assert described["sizeBytes"] > 0
    assert described["modelSetName"] == "m"
    missing = {"name": "m", "path": str(tmp_path / "absent")}
    assert "does not exist" in _error(
        platform_api.post("/v2/model?Action=ImportLocalModel", missing), 400, "InvalidParameter"
    )


def test_task_creates_validate_their_fields(platform_api, tmp_path: Path, fake_model):
    model = platform_api.call(
        "model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))}
    )
    base = {"name": "c", "sourceModelId": model["modelId"]}
    sparsity_with_weight = {**base, "config": {"strategy": "Sparsity", "weight": "W4A16C16"}}
    message = _error(
        platform_api.post("/v2/model?Action=CreateModelCompTask", sparsity_with_weight),
        400,
        "InvalidParameter",
    )
    assert "Sparsity takes no weight" in message
    no_weight = {**base, "config": {"strategy": "Quantization"}}
    assert "needs weight" in _error(
        platform_api.post("/v2/model?Action=CreateModelCompTask", no_weight), 400, "InvalidParameter"
    )
    bad_params = {
        "name": "b",
        "modelId": model["modelId"],
        "inputDatasetId": "dsv-x",
        "inferenceParams": {"temperature": "hot"},
    }
    _error(
        platform_api.post("/v2/batchinference?Action=CreateBatchInferenceTask", bad_params),
        404,
        "ResourceNotFound",
    )
    dataset = platform_api.upload("d", '{"prompt": "1+1=?"}\n')
    bad_params["inputDatasetId"] = dataset["versionId"]
    message = _error(
        platform_api.post("/v2/batchinference?Action=CreateBatchInferenceTask", bad_params),
        400,
        "InvalidParameter",
    )
    assert "temperature must be a number" in message
    bad_params["inferenceParams"] = {"temprature": 0.5}
    message = _error(
        platform_api.post("/v2/batchinference?Action=CreateBatchInferenceTask", bad_params),
        400,
        "InvalidParameter",
    )
    assert "temprature is not an inference parameter; use do_sample, max_output_tokens" in message
    no_metric = {
        "taskName": "e",
        "evalObjectType": "ModelVersion",
        "evalObjectConfig": {"modelVersionIds": [model["modelId"]], "datasetId": dataset["versionId"]},
        "evalConfig": {"evaluators": [{"kind": "rule"}]},
    }
    assert "turns on none" in _error(
        platform_api.post("/v2/eval?Action=CreateEvalTask", no_metric), 400, "InvalidParameter"
    )
    bad_suffix = {"name": "svc", "modelId": model["modelId"], "urlSuffix": "Bad-Suffix"}
    assert "urlSuffix" in _error(
        platform_api.post("/v2/service?Action=CreateService", bad_suffix), 400, "InvalidParameter"
    )


def test_chat_errors_use_the_v1_shape(platform_api):
    response = platform_api.post(
        "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/nobody", {"messages": [{"role": "user", "content": "hi"}]}
    )
    assert response.status_code == 404
    assert response.json()["error_code"] == 336005
    response = platform_api.post("/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/nobody", {"messages": "hi"})
    assert response.status_code == 400
    assert response.json()["error_code"] == 336003
    response = platform_api.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400
    assert "model" in response.json()["error"]["message"]


@pytest.mark.slow
def test_lists_page_with_markers(platform_api, tmp_path: Path, fake_model):
    model = platform_api.call(
        "model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))}
    )
    dataset = platform_api.upload("d", '{"prompt": "1+1=?"}\n')
    # The fake model cannot run, so these tasks fail; listing them is what is under test.
    ids = [
        platform_api.call(
            "batchinference",
            "CreateBatchInferenceTask",
            {"name": f"t{index}", "modelId": model["modelId"], "inputDatasetId": dataset["versionId"]},
        )["taskId"]
        for index in range(3)
    ]
    first = platform_api.call("batchinference", "DescribeBatchInferenceTasks", {"maxKeys": 2})
    assert [task["taskId"] for task in first["taskList"]] == ids[:2]
    assert first["isTruncated"] is True
    rest = platform_api.call(
        "batchinference", "DescribeBatchInferenceTasks", {"maxKeys": 2, "marker": first["nextMarker"]}
    )
    assert [task["taskId"] for task in rest["taskList"]] == ids[2:]
    assert rest["isTruncated"] is False
    named = platform_api.call("batchinference", "DescribeBatchInferenceTasks", {"name": "t1"})
    assert [task["taskId"] for task in named["taskList"]] == [ids[1]]
    again = {"name": "t1", "modelId": model["modelId"], "inputDatasetId": dataset["versionId"]}
    assert platform_api.call("batchinference", "CreateBatchInferenceTask", again)["taskId"] == ids[1]
