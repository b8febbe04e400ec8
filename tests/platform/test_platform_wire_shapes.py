"""The wire layer writes each create in the documented shape, adds the local platform's extensions only for
it, and reads every answer strictly: a field of the wrong shape is a ``WireError`` that names the field,
never a KeyError or a wrong value passed on."""

from __future__ import annotations

from typing import Any

import pytest

from runner.platform import wire
from runner.platform.protocol import ChatReply, ManualSample, TaskKind, TaskRef, TaskRequest, TaskStatus
from runner.platform.wire import WireError

BATCH = TaskKind.BATCH_INFERENCE
EVAL = TaskKind.EVALUATION
COMP = TaskKind.COMPRESSION


def _request(kind: TaskKind, **params: Any) -> TaskRequest:
    return TaskRequest(kind, "w4", params)


def test_a_batch_on_an_endpoint_names_it_and_local_fields_go_only_to_the_local_platform() -> None:
    request = _request(
        BATCH,
        endpoint="ep-1",
        input_bos_uri="bos:/in/",
        output_bos_uri="bos:/out/",
        dataset_id="ds-1",
        batch_size=8,
        inference_params={"temperature": 0.1},
    )
    cloud = wire.create_body(request)
    assert cloud == {
        "name": "w4",
        "description": "qfrun w4",
        "inferenceParams": {"temperature": 0.1},
        "endpoint": "ep-1",
        "inputBosUri": "bos:/in/",
        "outputBosUri": "bos:/out/",
    }
    local = wire.create_body(request, local=True)
    assert local == {**cloud, "inputDatasetId": "ds-1", "batchSize": 8}


def test_an_evaluation_of_result_sets_names_the_producing_version_only_locally() -> None:
    request = _request(
        EVAL,
        result_dataset_ids={"amv-1": "ds-r1"},
        evaluators=[{"kind": "rule", "accuracy": True}, {"kind": "custom", "function": "m:f", "source": "x"}],
    )
    cloud = wire.create_body(request)
    assert cloud["evalObjectType"] == "inferDataset"
    items = cloud["evalObjectConfig"]["evalInferDatasetConfig"]["evalInferDatasetConfigList"]
    assert items == [{"inferDatasetId": "ds-r1"}]
    local_items = wire.create_body(request, local=True)["evalObjectConfig"]["evalInferDatasetConfig"]
    assert local_items["evalInferDatasetConfigList"] == [{"inferDatasetId": "ds-r1", "modelId": "amv-1"}]
    assert cloud["evalConfig"] == {
        "evalMode": "rule",
        "autoRuleEvalConfig": {"scoreModes": ["accuracy"]},
        "customEvalConfig": {"functions": ["m:f"], "sources": {"m:f": "x"}},
    }


def test_a_judge_by_model_version_with_manual_scoring_orders_the_modes() -> None:
    config = wire.eval_config(
        [
            {"kind": "manual", "dimensions": [{"name": "format"}], "scale": {"min": 0, "max": 10}},
            {"kind": "llm_judge", "judge_version_id": "amv-j", "prompt": "p", "max_score": 5},
            {"kind": "rule", "bleu": True},
            {"kind": "rule", "bleu": True, "rouge_l": True},  # a second rule adds only what is new
        ],
        local=True,
    )
    assert config["evalMode"] == "rule,model,manual"
    assert config["autoRuleEvalConfig"] == {"scoreModes": ["bleu", "rouge_l"]}
    assert config["autoModelEvalConfig"] == {"modelId": "amv-j", "prompt": "p", "maxScore": 5}
    assert config["manualEvalConfig"] == {
        "evaluationDimension": [{"dimension": wire.SATISFACTION_WIRE}, {"dimension": "format"}],
        "scoreRange": {"min": 0, "max": 10},
    }
    cloud = wire.eval_config([{"kind": "llm_judge", "judge_endpoint": "judge", "prompt": "p"}], local=False)
    assert cloud["autoModelEvalConfig"] == {"apiName": "judge"}  # prompt and max score are local


def test_a_compression_sends_its_calibration_data_only_locally() -> None:
    request = _request(COMP, model_version_id="amv-1", strategy="Sparsity", weight=None, dataset_id="ds-c")
    assert wire.create_body(request, model_set_id="am-1")["config"] == {"strategy": "Sparsity"}
    local = wire.create_body(request, model_set_id="am-1", local=True)
    assert local["config"] == {"strategy": "Sparsity", "datasetId": "ds-c"}
    assert (local["sourceModelId"], local["modelSetId"]) == ("amv-1", "am-1")


@pytest.mark.parametrize(
    ("kind", "result", "expected"),
    [
        (EVAL, "ame-1", "ame-1"),
        (COMP, {"id": "amva-1"}, "amva-1"),
        (COMP, {"taskId": "amva-2"}, "amva-2"),
        (BATCH, {"taskId": "infer-1"}, "infer-1"),
    ],
)
def test_the_new_tasks_id_is_read_where_each_kind_puts_it(kind: TaskKind, result: Any, expected: str) -> None:
    assert wire.created_id(kind, result) == expected


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (
            lambda: wire.created_id(EVAL, ["ame-1"]),
            "the field 'result' should be the new task's id (a string), not list",
        ),
        (lambda: wire.created_id(EVAL, ""), "not str"),
        (
            lambda: wire.created_id(BATCH, {"taskId": True}),
            "'result.taskId' should be a non-empty string, not bool",
        ),
        (lambda: wire.created_id(BATCH, None), "the field 'result' should be an object, not NoneType"),
        (lambda: wire.manual_samples({"samples": {}}), "the field 'result.samples' should be an array"),
        (
            lambda: wire.manual_samples({"samples": [{"modelId": "amv-1", "index": 0}]}),
            "the field 'result.samples[0].index' should be a whole number from 1",
        ),
        (
            lambda: wire.manual_samples({"samples": [{"modelId": "amv-1", "index": True}]}),
            "the field 'result.samples[0].index' should be a whole number from 1",
        ),
        (
            lambda: wire.manual_samples({"samples": [{"modelId": "amv-1", "index": 1, "input": ["x"]}]}),
            "the field 'result.samples[0].input' should be a string, not list",
        ),
        (lambda: wire.eval_report({"models": []}), "the evaluation report should be an array, not dict"),
        (
            lambda: wire.eval_report([{"effectMetric": 3}]),
            "the field 'result[0].effectMetric' should be an object",
        ),
        (
            lambda: wire.chat_reply({"result": None}, "r"),
            "the field 'result' of the chat response should be a string",
        ),
        (
            lambda: wire.chat_reply({"result": "2", "usage": {"prompt_tokens": "many"}}, "r"),
            "the field 'usage.prompt_tokens' should be an integer, not 'many'",
        ),
        (
            lambda: wire.chat_reply({"result": "2", "usage": {"prompt_tokens": [1]}}, "r"),
            "the field 'usage.prompt_tokens' should be an integer, not list",
        ),
        (
            lambda: wire.task_info(BATCH, TaskRef(BATCH, "infer-1", "w4"), {"runStatus": "Exploded"}),
            "the field 'result.runStatus' has the unknown status 'Exploded'",
        ),
    ],
)
def test_an_answer_of_the_wrong_shape_is_a_wire_error_naming_the_field(call: Any, words: str) -> None:
    with pytest.raises(WireError) as caught:
        call()
    assert words in str(caught.value)


def test_manual_samples_and_chat_replies_are_read_field_by_field() -> None:
    samples = wire.manual_samples(
        {"samples": [{"modelId": "amv-1", "index": 2, "input": "1+1=?", "expected": "2", "output": 2}]}
    )
    assert samples == [ManualSample("amv-1", 2, "1+1=?", "2", "2")]
    reply = wire.chat_reply({"result": "2", "usage": {"prompt_tokens": 5, "completion_tokens": "1"}}, None)
    assert reply == ChatReply(text="2", prompt_tokens=5, completion_tokens=1, request_id="")


def test_a_failed_batch_names_its_reason_and_code_and_an_expired_one_says_why() -> None:
    ref = TaskRef(BATCH, "infer-1", "w4")
    failed = wire.task_info(BATCH, ref, {"runStatus": "Failed", "errorReason": "bad row 3", "errorCode": 500})
    assert (failed.status, failed.message) == (TaskStatus.FAILED, "bad row 3 (error code 500)")
    expired = wire.task_info(BATCH, ref, {"runStatus": "Expired"})
    assert expired.message == "the task ran past its completion window (Expired)"
    done = wire.task_info(
        BATCH,
        ref,
        {
            "runStatus": "Done",
            "progress": 7,
            "totalCount": 0,  # 0: not known, so the rows are the progress
            "outputBosUri": "bos:/out/",
            "outputDir": "bos:/out/infer-1/",
            "inputTokenUsage": 70,
            "outputTokenUsage": "7",
            "errorReason": "a stale reason",
        },
    )
    assert done.message == ""
    assert done.result == {
        "rows": 7,
        "output_bos_uri": "bos:/out/",
        "output_dir": "bos:/out/infer-1/",
        "input_tokens": 70,
        "output_tokens": 7,
    }


def test_a_list_page_without_page_info_is_the_last_only_when_it_is_not_full() -> None:
    items = [{"taskId": f"infer-{n}"} for n in range(3)]
    assert wire.list_page(BATCH, {"taskList": items}, max_keys=10) == (items, None)
    assert wire.list_page(BATCH, {}, max_keys=10) == ([], None)
    with pytest.raises(WireError, match="missing from a full page"):
        wire.list_page(BATCH, {"taskList": items}, max_keys=3)
    with pytest.raises(WireError, match=r"'result\.taskList' should be an array, not dict"):
        wire.list_page(BATCH, {"taskList": {}}, max_keys=3)
    with pytest.raises(WireError, match=r"'result\.pageInfo\.isTruncated' should be a boolean"):
        wire.list_page(BATCH, {"taskList": items, "pageInfo": {"isTruncated": "no"}}, max_keys=10)
    truncated = {"taskList": items, "pageInfo": {"isTruncated": True, "nextMarker": "infer-3"}}
    assert wire.list_page(BATCH, truncated, max_keys=3) == (items, "infer-3")
