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
        ("dataset", "DescribeDatasetVersion", {"versionId": "ds-missing"}),
        ("batchinference", "DescribeBatchInferenceTask", {"taskId": "infer-missing"}),
        ("batchinference", "StopBatchInferenceTask", {"taskId": "infer-missing"}),
        ("eval", "DescribeEvalTask", {"taskId": "ame-missing"}),
        ("eval", "DescribeEvalTaskReport", {"taskId": "ame-missing"}),
        ("eval", "StopEvalTask", {"taskId": "ame-missing"}),
        ("model", "DescribeModelCompTask", {"modelCompTaskId": "amva-missing"}),
        ("model", "CancelModelCompTask", {"modelCompTaskId": "amva-missing"}),
        ("service", "DescribeService", {"serviceId": "svc-missing"}),
        (
            "batchinference",
            "CreateBatchInferenceTask",
            {"name": "tt", "modelId": "amv-x", "inputDatasetId": "ds-x"},
        ),
        (
            "eval",
            "CreateEvalTask",
            {
                "taskName": "e",
                "evalObjectType": "model",
                "evalObjectConfig": {
                    "evalModelConfig": {
                        "versionId": "ds-x",
                        "storageType": "sysStorage",
                        "evalModelConfigList": [{"modelId": "amv-x", "promptTemplate": "{input}"}],
                    }
                },
                "evalConfig": {"evalMode": "rule", "autoRuleEvalConfig": {"scoreModes": ["accuracy"]}},
            },
        ),
        (
            "model",
            "CreateModelCompTask",
            {
                "name": "c",
                "sourceModelId": "amv-x",
                "modelSetId": "am-x",
                "config": {"strategy": "Quantization", "weight": "INT8-PTQ"},
            },
        ),
    ],
)
def test_unknown_ids_are_resource_not_found(platform_api, route: str, action: str, body: dict):
    message = _error(platform_api.post(f"/v2/{route}?Action={action}", body), 404, "ResourceNotFound")
    assert "does not exist" in message


def test_token_is_required_when_set_and_compared_exactly(platform_home: Home, serve_platform):
    with serve_platform(platform_home, token="s3cret-token") as api:
        assert "bearer token" in _error(
            api.post("/v2/model?Action=DescribeModel", {}, token=""), 401, "AccessDenied"
        )
        response = api.post("/v2/model?Action=DescribeModel", {"modelId": "amv-x"}, token="s3cret-tokeN")
        message = _error(response, 401, "AccessDenied")
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
    assert first["versionId"].startswith("ds-")
    assert first["datasetId"].startswith("dg-")
    assert first["sampleCount"] == 1
    assert (first["datasetName"], first["versionNumber"]) == ("d", 1)
    assert first["importStatus"] == "ImportFinished"
    assert first["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    described = platform_api.call("dataset", "DescribeDatasetVersion", {"versionId": first["versionId"]})
    assert described == first
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
    assert described["modelName"] == "m"
    assert (described["modelId"], described["modelSetId"]) == (first["modelId"], first["modelSetId"])
    assert described["status"] == "Ready"
    assert described["sourceInfo"] == {"sourceType": "Import"}
    missing = {"name": "m", "path": str(tmp_path / "absent")}
    assert "does not exist" in _error(
        platform_api.post("/v2/model?Action=ImportLocalModel", missing), 400, "InvalidParameter"
    )


def test_task_creates_validate_their_fields(platform_api, tmp_path: Path, fake_model):
    model = platform_api.call(
        "model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))}
    )

    def refused(route: str, action: str, body: dict, status: int = 400) -> str:
        code = "InvalidParameter" if status == 400 else "ResourceNotFound"
        return _error(platform_api.post(f"/v2/{route}?Action={action}", body), status, code)

    base = {"name": "c", "sourceModelId": model["modelId"], "modelSetId": model["modelSetId"]}
    sparsity_with_weight = {**base, "config": {"strategy": "Sparsity", "weight": "W4A16C16"}}
    assert "Sparsity takes no weight" in refused("model", "CreateModelCompTask", sparsity_with_weight)
    no_weight = {**base, "config": {"strategy": "Quantization"}}
    assert "needs weight" in refused("model", "CreateModelCompTask", no_weight)
    quantized = {"strategy": "Quantization", "weight": "W8A16C16"}
    no_model_set = {"name": "c", "sourceModelId": model["modelId"], "config": quantized}
    assert "'modelSetId'" in refused("model", "CreateModelCompTask", no_model_set)
    other_set = {**base, "modelSetId": "am-other", "config": quantized}
    assert f"belongs to {model['modelSetId']}, not am-other" in refused(
        "model", "CreateModelCompTask", other_set
    )

    bad_params = {
        "name": "bb",
        "modelId": model["modelId"],
        "inputDatasetId": "ds-x",
        "inferenceParams": {"temperature": "hot"},
    }
    refused("batchinference", "CreateBatchInferenceTask", bad_params, 404)
    dataset = platform_api.upload("d", '{"prompt": "1+1=?"}\n')
    bad_params["inputDatasetId"] = dataset["versionId"]
    message = refused("batchinference", "CreateBatchInferenceTask", bad_params)
    assert "temperature must be a number" in message
    bad_params["inferenceParams"] = {"temprature": 0.5}
    message = refused("batchinference", "CreateBatchInferenceTask", bad_params)
    assert "temprature is not an inference parameter; use do_sample, max_output_tokens" in message
    for name in ("b", "b" * 21):  # a batch inference task's name has 2 to 20 characters [B2]
        good = {"name": name, "modelId": model["modelId"], "inputDatasetId": dataset["versionId"]}
        message = refused("batchinference", "CreateBatchInferenceTask", good)
        assert f"name must have 2 to 20 characters, not {len(name)}" in message

    model_config = {
        "versionId": dataset["versionId"],
        "storageType": "sysStorage",
        "evalModelConfigList": [{"modelId": model["modelId"], "promptTemplate": "Q: {input}"}],
    }
    evaluation = {
        "taskName": "e",
        "evalObjectType": "model",
        "evalObjectConfig": {"evalModelConfig": model_config},
        "evalConfig": {"evalMode": "rule", "autoRuleEvalConfig": {"scoreModes": []}},
    }
    no_metric = refused("eval", "CreateEvalTask", evaluation)
    assert "evalMode 'rule' needs autoRuleEvalConfig.scoreModes" in no_metric
    evaluation["evalConfig"] = {"evalMode": "rule", "autoRuleEvalConfig": {"scoreModes": ["bleu9"]}}
    assert "scoreModes has 'bleu9'" in refused("eval", "CreateEvalTask", evaluation)
    evaluation["evalConfig"] = {"evalMode": "manual"}
    assert "evalMode manual needs manualEvalConfig.evaluationDimension" in refused(
        "eval", "CreateEvalTask", evaluation
    )
    evaluation["evalConfig"] = {"evalMode": "model", "autoModelEvalConfig": {}}
    assert "needs apiName" in refused("eval", "CreateEvalTask", evaluation)
    evaluation["evalConfig"] = {"evalMode": "rule", "autoRuleEvalConfig": {"scoreModes": ["accuracy"]}}
    no_input = [{"modelId": model["modelId"], "promptTemplate": "Q: ?"}]
    evaluation["evalObjectConfig"] = {"evalModelConfig": {**model_config, "evalModelConfigList": no_input}}
    assert "promptTemplate must contain {input}" in refused("eval", "CreateEvalTask", evaluation)
    evaluation["evalObjectType"] = "ModelVersion"
    assert "'evalObjectType' must be one of model, inferDataset" in refused(
        "eval", "CreateEvalTask", evaluation
    )
    uploaded = [
        {"inferDatasetId": dataset["versionId"]}
    ]  # not a batch inference result: the model is unknown
    evaluation["evalObjectType"] = "inferDataset"
    evaluation["evalObjectConfig"] = {"evalInferDatasetConfig": {"evalInferDatasetConfigList": uploaded}}
    assert "is not the result set of a batch inference task" in refused("eval", "CreateEvalTask", evaluation)

    bad_suffix = {"name": "svc", "modelId": model["modelId"], "urlSuffix": "Bad-Suffix"}
    assert "urlSuffix" in refused("service", "CreateService", bad_suffix)


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
    dataset = platform_api.upload("d", '{"prompt": "1+1=?", "response": "2"}\n')
    # The fake model cannot run, so these tasks fail; listing them is what is under test.
    ids = [
        platform_api.call(
            "batchinference",
            "CreateBatchInferenceTask",
            {"name": f"t{index}", "modelId": model["modelId"], "inputDatasetId": dataset["versionId"]},
        )["taskId"]
        for index in range(3)
    ]
    assert all(task_id.startswith("infer-") for task_id in ids)

    def listed(body: dict) -> tuple[list[str], dict]:
        result = platform_api.call("batchinference", "DescribeBatchInferenceTasks", body)
        assert set(result) == {"taskList", "pageInfo"}
        return [task["taskId"] for task in result["taskList"]], result["pageInfo"]

    first, info = listed({"maxKeys": 2})
    assert first == ids[:2]
    # The marker is inclusive: nextMarker is the id of the next page's first item.
    assert info == {"marker": "", "maxKeys": 2, "isTruncated": True, "nextMarker": ids[2]}
    rest, info = listed({"maxKeys": 2, "marker": info["nextMarker"]})
    assert rest == ids[2:]
    assert info == {"marker": ids[2], "maxKeys": 2, "isTruncated": False}  # no nextMarker on the last page
    assert listed({"marker": ids[1]})[0] == ids[1:]
    everything, info = listed({})
    assert everything == ids
    assert (info["maxKeys"], info["isTruncated"]) == (10, False)  # the default page size
    assert listed({"maxKeys": 1000})[1]["maxKeys"] == 100  # larger values are read as 100
    assert listed({"pageReverse": True})[0] == ids[::-1]
    assert listed({"pageReverse": True, "maxKeys": 2})[1]["nextMarker"] == ids[0]
    unknown = platform_api.post(
        "/v2/batchinference?Action=DescribeBatchInferenceTasks", {"marker": "infer-unknown"}
    )
    assert "is not an id of this list" in _error(unknown, 400, "InvalidParameter")

    # No name filter is documented [B6]: runStatus narrows the list.
    platform_api.wait(lambda: listed({"runStatus": ["Failed"]})[0] == ids)
    assert listed({"runStatus": ["Done", "Queuing", "Running"]})[0] == []
    failed = platform_api.call("batchinference", "DescribeBatchInferenceTask", {"taskId": ids[1]})
    assert failed["runStatus"] == "Failed"
    assert failed["errorCode"] == 500
    assert failed["errorReason"]
    again = {"name": "t1", "modelId": model["modelId"], "inputDatasetId": dataset["versionId"]}
    assert platform_api.call("batchinference", "CreateBatchInferenceTask", again)["taskId"] == ids[1]


@pytest.mark.slow
def test_evaluation_and_compression_lists(platform_api, tmp_path: Path, fake_model):
    model = platform_api.call(
        "model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))}
    )
    other = platform_api.call(
        "model", "ImportLocalModel", {"name": "other", "path": str(fake_model(tmp_path / "other"))}
    )
    dataset = platform_api.upload("d", '{"prompt": "1+1=?", "response": "2"}\n')

    def evaluation(name: str, version_id: str) -> str:
        body = {
            "taskName": name,
            "evalObjectType": "model",
            "evalObjectConfig": {
                "evalModelConfig": {
                    "versionId": dataset["versionId"],
                    "storageType": "sysStorage",
                    "evalModelConfigList": [{"modelId": version_id, "promptTemplate": "{input}"}],
                }
            },
            "evalConfig": {"evalMode": "rule", "autoRuleEvalConfig": {"scoreModes": ["accuracy"]}},
        }
        task_id = platform_api.call("eval", "CreateEvalTask", body)
        assert isinstance(task_id, str)  # the create's result is the id itself [E2]
        assert task_id.startswith("ame-")
        return task_id

    alpha, beta = evaluation("eval-alpha", model["modelId"]), evaluation("eval-beta", other["modelId"])

    def evals(body: dict) -> list[str]:
        result = platform_api.call("eval", "DescribeEvalTasks", body)
        assert set(result) == {"evalTaskList", "pageInfo"}
        return [task["taskId"] for task in result["evalTaskList"]]

    missing = platform_api.post("/v2/eval?Action=DescribeEvalTasks", {})
    assert "'evalType'" in _error(missing, 400, "InvalidParameter")  # evalType is required [E3]
    assert evals({"evalType": "auto"}) == [alpha, beta]
    assert evals({"evalType": "manual"}) == []
    assert evals({"evalType": "auto", "keyFilter": "alpha"}) == [alpha]  # fuzzy on the name
    assert evals({"evalType": "auto", "keyFilter": beta[-6:]}) == [beta]  # ... and on the id
    assert evals({"evalType": "auto", "keyFilter": other["modelId"]}) == [beta]  # exact on a version id
    assert evals({"evalType": "auto", "keyFilter": "gamma"}) == []
    assert evals({"evalType": "auto", "maxKeys": 1, "marker": beta}) == [beta]
    described = platform_api.call("eval", "DescribeEvalTask", {"taskId": alpha})
    assert (described["taskId"], described["taskName"], described["evalType"]) == (
        alpha,
        "eval-alpha",
        "auto",
    )
    assert described["state"] in ("Queued", "Running", "Failed")
    assert platform_api.call("eval", "StopEvalTask", {"taskId": beta}) == {}
    assert platform_api.call("eval", "DescribeEvalTask", {"taskId": beta})["state"] in ("Failed", "Stopped")
    deleted = platform_api.post("/v2/eval?Action=DeleteEvalTask", {"taskId": alpha})
    assert "has no action 'DeleteEvalTask'" in _error(deleted, 400, "InvalidParameter")

    def compression(name: str, source: dict) -> str:
        body = {
            "name": name,
            "sourceModelId": source["modelId"],
            "modelSetId": source["modelSetId"],
            "config": {"strategy": "Quantization", "weight": "INT8-PTQ"},
        }
        task_id = platform_api.call("model", "CreateModelCompTask", body)
        assert isinstance(task_id, str)  # the create's result is the id itself [C2]
        assert task_id.startswith("amva-")
        return task_id

    first, second = compression("comp-1", model), compression("comp-2", other)

    def comps(body: dict) -> tuple[list[str], dict]:
        result = platform_api.call("model", "DescribeModelCompTasks", body)
        assert set(result) == {"modelCompTaskList", "pageInfo"}
        return [task["id"] for task in result["modelCompTaskList"]], result["pageInfo"]

    assert comps({}) == ([first, second], {"marker": "", "maxKeys": 10, "isTruncated": False})
    assert comps({"maxKeys": 1}) == (
        [first],
        {"marker": "", "maxKeys": 1, "isTruncated": True, "nextMarker": second},
    )
    assert comps({"sourceModelId": other["modelId"]})[0] == [second]
    cancelled = platform_api.post("/v2/model?Action=CancelModelCompTask", {"modelCompTaskId": second})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"requestId": cancelled.headers["X-Bce-Request-Id"]}  # no result [C4]
    described = platform_api.call("model", "DescribeModelCompTask", {"modelCompTaskId": second})
    assert (described["id"], described["name"], described["sourceModelId"]) == (
        second,
        "comp-2",
        other["modelId"],
    )
    assert described["status"] in ("failed", "stopped")
    assert described["modelId"] == ""  # only a succeeded task names its output version
    assert described["config"] == {"strategy": "Quantization", "weight": "INT8-PTQ"}


def test_an_evaluation_runs_only_custom_code_sent_with_it_never_a_module_named(
    platform_api, tmp_path: Path, fake_model
):
    # an evaluation naming `module:function` alone would have the worker import whatever lies on its path
    model = platform_api.call(
        "model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))}
    )
    dataset = platform_api.upload("d", '{"prompt": "1+1=?", "response": "2"}\n')
    evaluation = {
        "taskName": "e",
        "evalObjectType": "model",
        "evalObjectConfig": {
            "evalModelConfig": {
                "versionId": dataset["versionId"],
                "storageType": "sysStorage",
                "evalModelConfigList": [{"modelId": model["modelId"], "promptTemplate": "{input}"}],
            }
        },
        "evalConfig": {"evalMode": "rule", "customEvalConfig": {"functions": ["os:system"]}},
    }
    message = _error(platform_api.post("/v2/eval?Action=CreateEvalTask", evaluation), 400, "InvalidParameter")
    assert "customEvalConfig.sources has no source for 'os:system'" in message
    assert "runs a custom evaluator only from the module source sent with the task" in message
