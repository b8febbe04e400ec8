"""Task creates, called in-process, refuse at once what their job would fail on minutes later, naming the
field; a refused create stores no task, and a create by a known name returns the task already there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from runner.local.home import Home

if TYPE_CHECKING:
    from conftest import Api

Ids = dict[str, str]


@pytest.fixture
def ids(asgi_api: Api, tmp_path: Path, fake_model: Callable[[Path], Path]) -> Ids:
    """A model version (``model``, ``set``), another of another set (``other``) and a dataset version."""
    model = asgi_api.call("model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))})
    other = asgi_api.call("model", "ImportLocalModel", {"name": "o", "path": str(fake_model(tmp_path / "o"))})
    dataset = asgi_api.upload("d", '{"prompt": "1+1=?", "response": "2"}\n')
    return {
        "model": model["modelId"],
        "set": model["modelSetId"],
        "other": other["modelId"],
        "dataset": dataset["versionId"],
    }


def _batch(ids: Ids, **fields: Any) -> dict[str, Any]:
    return {"name": "infer-1", "modelId": ids["model"], "inputDatasetId": ids["dataset"], **fields}


def _eval(ids: Ids, config: dict[str, Any], models: list[Any] | None = None) -> dict[str, Any]:
    entries = models if models is not None else [{"modelId": ids["model"], "promptTemplate": "Q: {input}"}]
    return {
        "taskName": "eval-1",
        "evalObjectType": "model",
        "evalObjectConfig": {
            "evalModelConfig": {"versionId": ids["dataset"], "evalModelConfigList": entries}
        },
        "evalConfig": config,
    }


RULE = {"evalMode": "rule", "autoRuleEvalConfig": {"scoreModes": ["accuracy"]}}


def _infer_sets(ids: Ids, entries: list[Any]) -> dict[str, Any]:
    return {
        "taskName": "eval-1",
        "evalObjectType": "inferDataset",
        "evalObjectConfig": {"evalInferDatasetConfig": {"evalInferDatasetConfigList": entries}},
        "evalConfig": RULE,
    }


def _comp(ids: Ids, config: dict[str, Any]) -> dict[str, Any]:
    return {"name": "comp-1", "sourceModelId": ids["model"], "modelSetId": ids["set"], "config": config}


# (route, action, body builder, the refusal's words)
REFUSALS: list[tuple[str, str, Callable[[Ids], dict[str, Any]], str]] = [
    (
        "batchinference",
        "CreateBatchInferenceTask",
        lambda ids: _batch(ids, endpoint="adder"),
        "the local platform runs model versions; name one with modelId, not endpoint.",
    ),
    (
        "batchinference",
        "CreateBatchInferenceTask",
        lambda ids: {"name": "infer-1", "modelId": ids["model"]},
        "needs inputBosUri and outputBosUri: the BOS folders to read and write.",
    ),
    (
        "batchinference",
        "CreateBatchInferenceTask",
        lambda ids: _batch(ids, inputBosUri="bos:/in/"),
        "needs both inputBosUri and outputBosUri, or neither.",
    ),
    (
        "batchinference",
        "CreateBatchInferenceTask",
        lambda ids: _batch(ids, batchSize=0),
        "'batchSize' must be between 1 and 1024, not 0.",
    ),
    (
        "batchinference",
        "CreateBatchInferenceTask",
        lambda ids: _batch(ids, inferenceParams={"do_sample": 1}),
        "inferenceParams.do_sample must be a boolean.",
    ),
    (
        "batchinference",
        "CreateBatchInferenceTask",
        lambda ids: _batch(ids, inferenceParams={"top_k": True}),
        "inferenceParams.top_k must be a number.",
    ),
    (
        "eval",
        "CreateEvalTask",
        lambda ids: _eval(ids, RULE, ["not an object"]),
        "evalModelConfigList[0] must be an object.",
    ),
    (
        "eval",
        "CreateEvalTask",
        lambda ids: _eval(ids, RULE, []),
        "evalModelConfigList must name 1 to 5 models, not 0.",
    ),
    (
        "eval",
        "CreateEvalTask",
        lambda ids: _eval(
            ids,
            RULE,
            [
                {"modelId": ids["model"], "promptTemplate": "Q: {input}"},
                {"modelId": ids["other"], "promptTemplate": "Question: {input}"},
            ],
        ),
        "the local platform takes one promptTemplate for all models.",
    ),
    (
        "eval",
        "CreateEvalTask",
        lambda ids: _eval(
            ids,
            RULE,
            [
                {"modelId": ids["model"], "promptTemplate": "{input}", "params": {"temperature": 0.1}},
                {"modelId": ids["other"], "promptTemplate": "{input}", "params": {"temperature": 0.9}},
            ],
        ),
        "the local platform takes the same params for all models.",
    ),
    (
        "eval",
        "CreateEvalTask",
        lambda ids: _eval(ids, {"evalMode": "rule", "customEvalConfig": {"functions": ["no colon"]}}),
        "the function 'no colon' is not 'module:function'.",
    ),
    (
        "eval",
        "CreateEvalTask",
        lambda ids: _eval(
            ids,
            {
                "evalMode": "rule",
                "customEvalConfig": {"functions": ["checks:score"], "sources": {"checks:score": "  "}},
            },
        ),
        "has no source for 'checks:score'",
    ),
    (
        "eval",
        "CreateEvalTask",
        lambda ids: _eval(
            ids,
            {
                "evalMode": "model",
                "autoModelEvalConfig": {"apiName": "judge"},
                "autoRuleEvalConfig": {"scoreModes": ["accuracy"]},
            },
        ),
        "evalMode 'model' runs no rule, so it takes no scoreModes, functions or benchmarks.",
    ),
    (
        "eval",
        "CreateEvalTask",
        lambda ids: _eval(
            ids,
            {"evalMode": "model", "autoModelEvalConfig": {"apiName": "judge", "maxScore": 101}},
        ),
        "'maxScore' must be between 1 and 100, not 101.",
    ),
    (
        "eval",
        "CreateEvalTask",
        lambda ids: _eval(
            ids,
            {
                **RULE,
                "manualEvalConfig": {"evaluationDimension": [{"dimension": "fluency"}]},
            },
        ),
        "manualEvalConfig is given, but evalMode does not include manual.",
    ),
    (
        "eval",
        "CreateEvalTask",
        lambda ids: _infer_sets(ids, [7]),
        "evalInferDatasetConfigList[0] must be an object.",
    ),
    (
        "eval",
        "CreateEvalTask",
        lambda ids: _infer_sets(ids, []),
        "evalInferDatasetConfigList must name 1 to 5 result sets.",
    ),
    (
        "model",
        "CreateModelCompTask",
        lambda ids: _comp(ids, {"strategy": "Distillation"}),
        "'strategy' must be one of Quantization, Sparsity, not 'Distillation'.",
    ),
    (
        "model",
        "CreateModelCompTask",
        lambda ids: _comp(ids, {"strategy": "Quantization", "weight": "INT4"}),
        "'weight' must be one of INT8-PTQ, W8A16C16, W4A16C16, not 'INT4'.",
    ),
]


@pytest.mark.parametrize(
    ("route", "action", "build", "words"),
    REFUSALS,
    ids=[f"{action}:{words[:40]}" for _, action, _, words in REFUSALS],
)
def test_a_create_that_its_job_could_not_run_is_refused_and_stores_nothing(
    asgi_api: Api, ids: Ids, route: str, action: str, build: Callable[[Ids], dict[str, Any]], words: str
) -> None:
    response = asgi_api.post(f"/v2/{route}?Action={action}", build(ids))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "InvalidParameter"
    assert words in response.json()["message"]
    assert asgi_api.app.state.context.store.tasks() == []


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda ids: _batch(ids, inputDatasetId="ds-none"), "The dataset version 'ds-none' does not exist"),
        (lambda ids: _batch(ids, modelId="amv-none"), "The model version 'amv-none' does not exist"),
        (
            lambda ids: _infer_sets(ids, [{"inferDatasetId": ids["dataset"], "modelId": "amv-none"}]),
            "The model version 'amv-none' does not exist",
        ),
        (
            lambda ids: _eval(ids, {"evalMode": "model", "autoModelEvalConfig": {"modelId": "amv-none"}}),
            "The model version 'amv-none' does not exist",
        ),
        (
            lambda ids: _comp(ids, {"strategy": "Sparsity", "datasetId": "ds-none"}),
            "The dataset version 'ds-none' does not exist",
        ),
    ],
)
def test_a_create_naming_an_unknown_resource_is_a_404_and_stores_nothing(
    asgi_api: Api, ids: Ids, build: Callable[[Ids], dict[str, Any]], words: str
) -> None:
    body = build(ids)
    action = "CreateBatchInferenceTask" if "inputDatasetId" in body else None
    route = "batchinference" if action else ("eval" if "taskName" in body else "model")
    action = action or ("CreateEvalTask" if route == "eval" else "CreateModelCompTask")
    response = asgi_api.post(f"/v2/{route}?Action={action}", body)
    assert response.status_code == 404, response.text
    assert words in response.json()["message"]
    assert asgi_api.app.state.context.store.tasks() == []


def test_a_create_by_a_known_name_returns_that_task_without_checking_the_new_body(
    asgi_api: Api, ids: Ids
) -> None:
    first = asgi_api.call("batchinference", "CreateBatchInferenceTask", _batch(ids))
    again = asgi_api.call("batchinference", "CreateBatchInferenceTask", _batch(ids, modelId="amv-none"))
    assert again == first
    assert [task.id for task in asgi_api.app.state.context.store.tasks()] == [first["taskId"]]


def test_an_evaluation_of_result_sets_names_each_model_and_a_judge_by_model_version(
    asgi_api: Api, ids: Ids, platform_home: Home
) -> None:
    body = _infer_sets(ids, [{"inferDatasetId": ids["dataset"], "modelId": ids["model"]}])
    body["evalConfig"] = {
        "evalMode": "rule,model",
        "autoRuleEvalConfig": {"scoreModes": ["accuracy", "bleu"]},
        "autoModelEvalConfig": {"modelId": ids["other"], "prompt": "Score {output}", "maxScore": 5},
    }
    task_id = asgi_api.call("eval", "CreateEvalTask", body)
    task = asgi_api.app.state.context.store.task(task_id)
    assert task.params["result_dataset_ids"] == {ids["model"]: ids["dataset"]}
    assert task.params["dataset_id"] is None
    assert task.params["evaluators"] == [
        {"kind": "rule", "accuracy": True, "bleu": True},
        {"kind": "llm_judge", "judge_version_id": ids["other"], "prompt": "Score {output}", "max_score": 5},
    ]
    described = asgi_api.call("eval", "DescribeEvalTask", {"taskId": task_id})
    assert (described["taskName"], described["evalType"]) == ("eval-1", "auto")
    listed = asgi_api.call("eval", "DescribeEvalTasks", {"evalType": "auto", "keyFilter": ids["model"]})
    assert [entry["taskId"] for entry in listed["evalTaskList"]] == [task_id]
    none = asgi_api.call("eval", "DescribeEvalTasks", {"evalType": "manual"})
    assert none["evalTaskList"] == []


def test_compression_lists_filter_by_source_model_and_describe_the_config(asgi_api: Api, ids: Ids) -> None:
    quantized = asgi_api.call(
        "model", "CreateModelCompTask", _comp(ids, {"strategy": "Quantization", "weight": "W8A16C16"})
    )
    sparse = asgi_api.call(
        "model",
        "CreateModelCompTask",
        {**_comp(ids, {"strategy": "Sparsity", "datasetId": ids["dataset"]}), "name": "comp-2"},
    )
    listed = asgi_api.call("model", "DescribeModelCompTasks", {"sourceModelId": ids["model"]})
    assert [entry["id"] for entry in listed["modelCompTaskList"]] == [quantized, sparse]
    assert asgi_api.call("model", "DescribeModelCompTasks", {"sourceModelId": ids["other"]}) == {
        "modelCompTaskList": [],
        "pageInfo": {"marker": "", "maxKeys": 10, "isTruncated": False},
    }
    described = asgi_api.call("model", "DescribeModelCompTask", {"modelCompTaskId": quantized})
    assert described["config"] == {"strategy": "Quantization", "weight": "W8A16C16"}
    assert described["sourceModelId"] == ids["model"]
    assert described["modelId"] == ""  # only a finished compression has a new version
    sparse_config = asgi_api.call("model", "DescribeModelCompTask", {"modelCompTaskId": sparse})["config"]
    assert sparse_config == {"strategy": "Sparsity"}


def test_cancelling_a_compression_answers_only_the_request_id_and_stops_it(asgi_api: Api, ids: Ids) -> None:
    task_id = asgi_api.call(
        "model", "CreateModelCompTask", _comp(ids, {"strategy": "Quantization", "weight": "INT8-PTQ"})
    )
    response = asgi_api.post("/v2/model?Action=CancelModelCompTask", {"modelCompTaskId": task_id})
    assert response.status_code == 200, response.text
    assert response.json() == {"requestId": response.headers["X-Bce-Request-Id"]}
    described = asgi_api.call("model", "DescribeModelCompTask", {"modelCompTaskId": task_id})
    assert described["status"] == "stopped"  # compression words are lower case [C2]
    assert described["failedReason"] == "The task was stopped on request."
    assert described["finishTime"]
