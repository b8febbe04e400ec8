"""Every typed operation of the client against a MockTransport: request fields out, protocol values in."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from runner.errors import PlatformNotFound, PlatformProtocolError, PlatformStatusError
from runner.platform.bos import BosClient
from runner.platform.protocol import ChatMessage, Platform, TaskKind, TaskRef, TaskRequest, TaskStatus

if TYPE_CHECKING:
    from conftest import Harness

# DescribeModel's documented fields [M2], plus the local platform's sizeBytes and details.
MODEL = {
    "modelSetId": "am-1",
    "modelId": "amv-1",
    "status": "Ready",
    "modelName": "tiny-qa",
    "sourceInfo": {"sourceType": "Import"},
    "modelApplicationType": "chat",
    "isSupportModelComp": True,
    "sizeBytes": 4500000,
    "details": {"scheme": "fp32"},
}
DATASET = {
    "versionId": "ds-1",
    "datasetId": "dg-1",
    "datasetName": "qa_eval",
    "sampleCount": 20,
    "sha256": "ab",
}


def test_the_client_is_a_platform(harness: Harness) -> None:
    assert isinstance(harness.client, Platform)
    assert harness.client.display_name == "local http://platform.test"


def test_describe_model_version_completes_the_model_set_id(harness: Harness) -> None:
    # Checks DescribeModel's documented fields, modelSetId among them [M2].
    harness.fake.models["amv-1"] = MODEL
    version = harness.client.describe_model_version("amv-1")
    assert (version.version_id, version.model_id, version.name) == ("amv-1", "am-1", "tiny-qa")
    assert version.size_bytes == 4500000
    assert version.source == "import"
    assert version.details["scheme"] == "fp32"
    assert version.details["status"] == "Ready"
    assert harness.fake.bodies == [("DescribeModel", {"modelId": "amv-1"})]
    request = harness.fake.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/v2/model"
    assert request.url.params["Action"] == "DescribeModel"


def test_import_model_sends_name_and_path(harness: Harness) -> None:
    harness.fake.models["amv-1"] = MODEL
    version = harness.client.import_model(name="tiny-qa", path="/models/tiny-qa")
    assert version.version_id == "amv-1"
    assert harness.fake.bodies == [("ImportLocalModel", {"name": "tiny-qa", "path": "/models/tiny-qa"})]


def test_ensure_dataset_uploads_the_file_content_with_its_hash(harness: Harness, tmp_path: Path) -> None:
    harness.fake.datasets["ds-1"] = DATASET
    path = tmp_path / "qa.jsonl"
    path.write_text('{"prompt": "Q: 1+1=? A:", "response": " 2"}\n', encoding="utf-8")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    dataset = harness.client.ensure_dataset(name="qa_eval", path=str(path), sha256=digest)
    assert (dataset.dataset_id, dataset.name, dataset.rows, dataset.sha256) == ("ds-1", "qa_eval", 20, "ab")
    action, body = harness.fake.bodies[0]
    assert action == "ImportLocalDataset"
    assert body == {"name": "qa_eval", "sha256": digest, "content": path.read_text(encoding="utf-8")}


def test_an_unreadable_dataset_file_is_a_sentence_naming_it(harness: Harness, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(PlatformStatusError, match=r"nope\.jsonl cannot be read"):
        harness.client.ensure_dataset(name="x", path=str(missing), sha256="0")


def test_describe_and_export_dataset(harness: Harness) -> None:
    # Checks DescribeDatasetVersion read as a version id with its rows [D3].
    harness.fake.datasets["ds-1"] = DATASET
    assert harness.client.describe_dataset("ds-1").rows == 20
    assert harness.client.export_dataset("ds-1", limit=5) == '{"prompt": "p"}\n'
    assert harness.fake.bodies[-1] == ("ExportDatasetVersion", {"versionId": "ds-1", "limit": 5})


def test_a_model_folder_that_is_gone_is_refused_on_qianfan_before_any_request(
    qianfan_harness: Harness,
) -> None:
    with pytest.raises(PlatformStatusError, match="the model folder /m is not a folder"):
        qianfan_harness.client.import_model(name="m", path="/m")
    assert qianfan_harness.fake.requests == []


def test_on_qianfan_a_dataset_becomes_batch_input_in_bos_uploaded_once(qianfan_harness: Harness) -> None:
    """The batch input half of ``ensure_dataset`` on Qianfan (its import into the console's datasets runs
    against the real local platform in test_platform_dataset_import.py)."""
    text = '{"prompt": "1+1=?", "response": "2"}\n\n{"prompt": "2+2=?"}\n'
    digest = hashlib.sha256(text.encode()).hexdigest()
    client = qianfan_harness.client
    with BosClient(client.settings, transport=client._transport) as bos:
        first = bos.upload_batch_input(text, digest, where="qa.jsonl")
        again = bos.upload_batch_input(text, digest, where="qa.jsonl")
    assert first == again == (f"bos:/qfrun-bucket/qfrun/batch-input/{digest}/", 2)
    key = f"/qfrun-bucket/qfrun/batch-input/{digest}/input.jsonl"
    assert qianfan_harness.fake.puts == [key]  # the second call found it by its MD5 and sent nothing
    lines = [json.loads(line) for line in qianfan_harness.fake.objects[key].decode().splitlines()]
    assert lines == [{"id": "1", "query": "1+1=?"}, {"id": "2", "query": "2+2=?"}]  # [B2]/[B8]'s input lines
    assert qianfan_harness.fake.requests == []  # no console call: Qianfan's batch input is BOS only


def test_a_batch_task_without_an_output_folder_gets_qfruns(qianfan_harness: Harness) -> None:
    request = TaskRequest(
        TaskKind.BATCH_INFERENCE, "qf-infer-1", {"model_version_id": "amv-1", "input_bos_uri": "bos:/b/in/"}
    )
    qianfan_harness.client.create_task(request)
    assert qianfan_harness.fake.bodies[0][1]["outputBosUri"] == "bos:/qfrun-bucket/qfrun/batch-output/"


def test_create_batch_inference_sends_the_documented_fields(qianfan_harness: Harness) -> None:
    request = TaskRequest(
        TaskKind.BATCH_INFERENCE,
        "qf-infer-1a2b3c4d5e",
        {
            "model_version_id": "amv-1",
            "inference_params": {"temperature": 0.9, "top_p": 0.3},
            "input_bos_uri": "bos:/bucket/in/",
            "output_bos_uri": "bos:/bucket/out/",
            "dataset_id": "ds-1",
            "batch_size": 8,
            "description": "qfrun qa/infer",
        },
    )
    ref = qianfan_harness.client.create_task(request)
    assert ref == TaskRef(TaskKind.BATCH_INFERENCE, ref.task_id, "qf-infer-1a2b3c4d5e")
    assert ref.task_id.startswith("infer-")
    # [B1]'s example body, with a model version instead of a preset endpoint; no local-only field
    assert qianfan_harness.fake.bodies == [
        (
            "CreateBatchInferenceTask",
            {
                "name": "qf-infer-1a2b3c4d5e",
                "description": "qfrun qa/infer",
                "modelId": "amv-1",
                "inferenceParams": {"temperature": 0.9, "top_p": 0.3},
                "inputBosUri": "bos:/bucket/in/",
                "outputBosUri": "bos:/bucket/out/",
            },
        )
    ]


def test_the_local_platform_gets_its_dataset_extension(harness: Harness) -> None:
    request = TaskRequest(
        TaskKind.BATCH_INFERENCE,
        "qf-infer-1",
        {"model_version_id": "amv-1", "dataset_id": "ds-1", "batch_size": 8},
    )
    harness.client.create_task(request)
    body = harness.fake.bodies[0][1]
    assert (body["inputDatasetId"], body["batchSize"]) == ("ds-1", 8)


def test_create_evaluation_of_models_sends_the_documented_shape(qianfan_harness: Harness) -> None:
    # Checks CreateEvalTask's documented body [E1].
    request = TaskRequest(
        TaskKind.EVALUATION,
        "qf-eval-9",
        {
            "model_version_ids": ["amv-1", "amv-2"],
            "dataset_id": "ds-7",
            "inference_params": {"temperature": 0.5},
            "prompt_template": "Answer: {input}",
            "evaluators": [
                {"kind": "rule", "accuracy": True, "similarity": True},
                {"kind": "llm_judge", "judge_endpoint": "ernie-judge"},
            ],
        },
    )
    task_id = qianfan_harness.client.create_task(request).task_id
    assert task_id.startswith("ame-")  # the result is the id itself [E2]
    action, body = qianfan_harness.fake.bodies[0]
    assert action == "CreateEvalTask"
    assert body["evalObjectType"] == "model"
    assert body["evalObjectConfig"] == {
        "evalModelConfig": {
            "versionId": "ds-7",
            "storageType": "sysStorage",
            "evalModelConfigList": [
                {"modelId": "amv-1", "promptTemplate": "Answer: {input}", "params": {"temperature": 0.5}},
                {"modelId": "amv-2", "promptTemplate": "Answer: {input}", "params": {"temperature": 0.5}},
            ],
        }
    }
    assert body["evalConfig"] == {
        "evalMode": "rule,model",
        "autoRuleEvalConfig": {"scoreModes": ["accuracy", "similarity"]},
        "autoModelEvalConfig": {"apiName": "ernie-judge"},
    }


def test_create_manual_evaluation_sends_the_documented_mode_and_dimensions(qianfan_harness: Harness) -> None:
    # evalMode `manual` with 满意度 first and up to four more dimensions [E1][E12]; no local extension
    request = TaskRequest(
        TaskKind.EVALUATION,
        "qf-eval-m",
        {
            "model_version_ids": ["amv-1"],
            "dataset_id": "ds-7",
            "evaluators": [
                {"kind": "rule", "accuracy": True},
                {
                    "kind": "manual",
                    "dimensions": [{"name": "fluency", "description": "reads naturally"}, {"name": "format"}],
                    "scale": {"min": 0, "max": 10},
                },
            ],
        },
    )
    qianfan_harness.client.create_task(request)
    _, body = qianfan_harness.fake.bodies[0]
    assert body["evalConfig"] == {
        "evalMode": "rule,manual",
        "autoRuleEvalConfig": {"scoreModes": ["accuracy"]},
        "manualEvalConfig": {
            "evaluationDimension": [
                {"dimension": "满意度"},
                {"dimension": "fluency", "description": "reads naturally"},
                {"dimension": "format"},
            ]
        },
    }


def test_on_qianfan_people_score_in_the_console_which_the_client_names(qianfan_harness: Harness) -> None:
    ref = TaskRef(TaskKind.EVALUATION, "ame-1", "n")
    assert qianfan_harness.client.manual_samples(ref) is None
    assert "console.bce.baidu.com/qianfan" in qianfan_harness.client.manual_scoring_place(ref)
    assert "ame-1" in qianfan_harness.client.manual_scoring_place(ref)
    assert qianfan_harness.fake.bodies == []  # nothing to ask: no documented action reads the scores back


def test_find_task_looks_for_an_evaluation_among_automatic_and_manual_ones(harness: Harness) -> None:
    # DescribeEvalTasks requires evalType and lists one type [E3]: a manual task is found too, so a crash
    # between create and record never creates a manual evaluation twice
    assert harness.client.find_task(TaskKind.EVALUATION, "qf-eval-x") is None
    assert [body["evalType"] for action, body in harness.fake.bodies] == ["auto", "manual"]


def test_create_evaluation_of_earlier_results(harness: Harness) -> None:
    request = TaskRequest(
        TaskKind.EVALUATION,
        "qf-eval-9",
        {
            "model_version_ids": ["amv-1"],
            "dataset_id": None,
            "result_dataset_ids": {"amv-1": "ds-7"},
            "inference_params": {},
            "evaluators": [{"kind": "rule", "accuracy": True}],
        },
    )
    harness.client.create_task(request)
    action, body = harness.fake.bodies[0]
    assert action == "CreateEvalTask"
    assert body["taskName"] == "qf-eval-9"
    assert body["evalObjectType"] == "inferDataset"
    assert body["evalObjectConfig"] == {
        "evalInferDatasetConfig": {
            "evalInferDatasetConfigList": [{"inferDatasetId": "ds-7", "modelId": "amv-1"}]
        }
    }
    assert body["evalConfig"] == {"evalMode": "rule", "autoRuleEvalConfig": {"scoreModes": ["accuracy"]}}


def test_create_compression_looks_up_the_model_set_and_reads_the_bare_id(qianfan_harness: Harness) -> None:
    qianfan_harness.fake.models["amv-1"] = MODEL
    request = TaskRequest(
        TaskKind.COMPRESSION,
        "qf-w4-3",
        {
            "model_version_id": "amv-1",
            "strategy": "Quantization",
            "weight": "W4A16C16",
            "dataset_id": "ds-1",
            "description": "qfrun qa/w4",
        },
    )
    ref = qianfan_harness.client.create_task(request)
    assert ref.task_id.startswith("amva-")
    assert qianfan_harness.fake.bodies[0] == ("DescribeModel", {"modelId": "amv-1"})
    assert qianfan_harness.fake.bodies[1] == (  # [C1]'s fields; the calibration set is local-only
        "CreateModelCompTask",
        {
            "name": "qf-w4-3",
            "description": "qfrun qa/w4",
            "sourceModelId": "amv-1",
            "modelSetId": "am-1",
            "config": {"strategy": "Quantization", "weight": "W4A16C16"},
        },
    )


@pytest.mark.parametrize(
    ("word", "status"),
    [  # every documented runStatus word [B4]
        ("Queuing", TaskStatus.PENDING),
        ("Running", TaskStatus.RUNNING),
        ("Stopping", TaskStatus.RUNNING),
        ("Done", TaskStatus.SUCCEEDED),
        ("Failed", TaskStatus.FAILED),
        ("Expired", TaskStatus.FAILED),
        ("Stopped", TaskStatus.STOPPED),
    ],
)
def test_batch_inference_status_words_are_normalised(harness: Harness, word: str, status: TaskStatus) -> None:
    harness.fake.tasks["infer-1"] = {
        "taskId": "infer-1",
        "runStatus": word,
        "progress": 3,
        "totalCount": 10,
        "outputBosUri": "bos:/b/out/",
        "outputDir": "abcdefghijklmnopqrstuvwx",
        "outputDatasetId": "ds-9",
        **({"errorCode": 17, "errorReason": "out of quota"} if word == "Failed" else {}),
    }
    info = harness.client.describe_task(TaskRef(TaskKind.BATCH_INFERENCE, "infer-1", "n"))
    assert info.status is status
    assert (info.rows_done, info.rows_total) == (3, 10)
    if status is TaskStatus.SUCCEEDED:
        assert info.result == {
            "result_dataset_id": "ds-9",
            "rows": 10,
            "output_bos_uri": "bos:/b/out/",
            "output_dir": "abcdefghijklmnopqrstuvwx",
        }
    if word == "Failed":
        assert info.message == "out of quota (error code 17)"
    if word == "Expired":
        assert "completion window" in info.message
    assert harness.fake.bodies == [("DescribeBatchInferenceTask", {"taskId": "infer-1"})]


def test_an_unknown_status_word_is_a_protocol_error_naming_field_and_value(harness: Harness) -> None:
    harness.fake.tasks["infer-1"] = {"taskId": "infer-1", "runStatus": "Pending"}
    with pytest.raises(PlatformProtocolError, match=r"result\.runStatus.*'Pending'.*Queuing"):
        harness.client.describe_task(TaskRef(TaskKind.BATCH_INFERENCE, "infer-1", "n"))


def test_a_finished_evaluation_reads_its_report_list(harness: Harness) -> None:
    harness.fake.tasks["ame-1"] = {
        "taskId": "ame-1",
        "taskName": "n",
        "evalType": "auto",
        "state": "Successed",
    }
    harness.fake.reports["ame-1"] = [  # one entry per sub-task [E4]
        {
            "taskId": "ame-1",
            "taskName": "n",
            "modelId": "amv-1",
            "inferDatasetId": "",
            "evalObjectType": "model",
            "evalMode": "rule,model",
            "effectMetric": {
                "accuracy": 0.9,
                "bleu4": 0.5,
                "avgJudgeScore": 4,
                "scoreDistribution": {"1": 2},
            },
        }
    ]
    info = harness.client.describe_task(TaskRef(TaskKind.EVALUATION, "ame-1", "n"))
    assert info.status is TaskStatus.SUCCEEDED
    assert info.result == {
        "models": {"amv-1": {"metrics": {"accuracy": 0.9, "bleu": 0.5, "judge_score": 4.0}, "samples": None}}
    }
    assert harness.fake.actions() == ["DescribeEvalTask", "DescribeEvalTaskReport"]


@pytest.mark.parametrize(
    ("word", "status"),
    [  # every documented state word [E2]
        ("Queued", TaskStatus.PENDING),
        ("Running", TaskStatus.RUNNING),
        ("RunningWithManualBegin", TaskStatus.AWAITING_SCORES),
        ("RunningWithMetricsCalculating", TaskStatus.RUNNING),
        ("Stopping", TaskStatus.RUNNING),
        ("Failed", TaskStatus.FAILED),
        ("Stopped", TaskStatus.STOPPED),
    ],
)
def test_evaluation_state_words_cost_one_request(harness: Harness, word: str, status: TaskStatus) -> None:
    harness.fake.tasks["ame-1"] = {"taskId": "ame-1", "state": word}
    assert harness.client.describe_task(TaskRef(TaskKind.EVALUATION, "ame-1", "n")).status is status
    assert harness.fake.actions() == ["DescribeEvalTask"]


def test_a_succeeded_compression_names_the_new_version(harness: Harness) -> None:
    harness.fake.tasks["amva-1"] = {  # [C2]'s fields, plus the local platform's additions
        "id": "amva-1",
        "name": "n",
        "status": "succeeded",
        "sourceModelId": "amv-1",
        "modelId": "amv-2",
        "modelSetId": "am-1",
        "sizeBytes": 1200000,
        "scheme": "W4A16",
        "seconds": 12.5,
    }
    info = harness.client.describe_task(TaskRef(TaskKind.COMPRESSION, "amva-1", "n"))
    assert info.status is TaskStatus.SUCCEEDED
    assert info.result == {
        "version_id": "amv-2",
        "model_id": "am-1",
        "size_bytes": 1200000,
        "scheme": "W4A16",
        "seconds": 12.5,
    }
    assert harness.fake.bodies == [("DescribeModelCompTask", {"modelCompTaskId": "amva-1"})]


def test_find_task_pages_through_the_list_and_matches_the_name_exactly(harness: Harness) -> None:
    for index in range(5):
        harness.fake.tasks[f"infer-{index}"] = {
            "taskId": f"infer-{index}",
            "name": "other",
            "runStatus": "Done",
        }
    harness.fake.tasks["infer-9"] = {"taskId": "infer-9", "name": "wanted", "runStatus": "Done"}
    assert harness.client.find_task(TaskKind.BATCH_INFERENCE, "wanted") == TaskRef(
        TaskKind.BATCH_INFERENCE, "infer-9", "wanted"
    )
    # no name filter exists for batch inference [B6]: every page is read, 2 items at a time
    assert [body for action, body in harness.fake.bodies] == [
        {"maxKeys": 100},
        {"maxKeys": 100, "marker": "2"},
        {"maxKeys": 100, "marker": "4"},
    ]
    assert harness.client.find_task(TaskKind.EVALUATION, "wanted") is None
    assert harness.client.find_task(TaskKind.COMPRESSION, "wanted") is None


def test_find_task_matches_exactly_what_a_fuzzy_filter_returns(harness: Harness) -> None:
    harness.fake.page_size = 1
    harness.fake.tasks["ame-1"] = {"taskId": "ame-1", "taskName": "same-but-longer", "state": "Successed"}
    harness.fake.tasks["ame-2"] = {"taskId": "ame-2", "taskName": "same", "state": "Successed"}
    assert harness.client.find_task(TaskKind.EVALUATION, "same") == TaskRef(
        TaskKind.EVALUATION, "ame-2", "same"
    )
    # evalType is required [E3]; keyFilter is fuzzy, so the client still compares names itself
    assert harness.fake.bodies[0] == (
        "DescribeEvalTasks",
        {"evalType": "auto", "maxKeys": 100, "keyFilter": "same"},
    )


def test_find_task_reads_later_pages(harness: Harness) -> None:
    harness.fake.page_size = 1
    harness.fake.tasks["amva-1"] = {"id": "amva-1", "name": "a-different", "status": "running"}
    harness.fake.tasks["amva-2"] = {"id": "amva-2", "name": "a", "status": "running"}
    assert harness.client.find_task(TaskKind.COMPRESSION, "a") == TaskRef(TaskKind.COMPRESSION, "amva-2", "a")


def test_a_full_page_without_page_info_is_a_protocol_error(harness: Harness) -> None:
    def flat(request: httpx.Request) -> httpx.Response:
        items = [{"taskId": f"infer-{i}", "name": "x"} for i in range(100)]
        return httpx.Response(200, json={"requestId": "r", "result": {"taskList": items}})

    harness.fake.faults["DescribeBatchInferenceTasks"] = [flat]
    with pytest.raises(PlatformProtocolError, match=r"result\.pageInfo"):
        harness.client.find_task(TaskKind.BATCH_INFERENCE, "wanted")


@pytest.mark.parametrize(
    ("kind", "action", "field"),
    [
        (TaskKind.BATCH_INFERENCE, "StopBatchInferenceTask", "taskId"),
        (TaskKind.EVALUATION, "StopEvalTask", "taskId"),
        (TaskKind.COMPRESSION, "CancelModelCompTask", "modelCompTaskId"),
    ],
)
def test_cancel_task_uses_the_kinds_action_and_its_result_shape(
    qianfan_harness: Harness, kind: TaskKind, action: str, field: str
) -> None:
    qianfan_harness.client.cancel_task(TaskRef(kind, "x-1", "n"))  # true, {} and no result at all
    assert qianfan_harness.fake.bodies == [(action, {field: "x-1"})]
    assert qianfan_harness.fake.requests[0].headers["Authorization"].startswith("bce-auth-v1/")


def test_a_stop_answered_false_is_an_error(harness: Harness) -> None:
    harness.fake.faults["StopBatchInferenceTask"] = [
        lambda request: httpx.Response(200, json={"requestId": "r", "result": False})
    ]
    with pytest.raises(PlatformStatusError, match="did not stop it"):
        harness.client.cancel_task(TaskRef(TaskKind.BATCH_INFERENCE, "infer-1", "n"))


def test_chat_posts_messages_to_the_endpoint_and_reads_usage(harness: Harness) -> None:
    # Checks the chat call on a custom service [S7].
    reply = harness.client.chat("qa_w4", [ChatMessage("user", "2+3=?")], temperature=0.1)
    assert (reply.text, reply.prompt_tokens, reply.completion_tokens, reply.request_id) == ("5", 4, 1, "as-1")
    request = harness.fake.requests[0]
    assert request.url.path == "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/qa_w4"
    assert harness.fake.bodies[0][1] == {
        "messages": [{"role": "user", "content": "2+3=?"}],
        "temperature": 0.1,
    }


def test_chat_on_qianfan_goes_to_the_inference_base(qianfan_harness: Harness) -> None:
    qianfan_harness.client.chat("qa_w4", [ChatMessage("user", "hi")])
    assert str(qianfan_harness.fake.requests[0].url).startswith("https://aip.test/rpc/2.0/")


def test_an_unknown_task_is_not_found(harness: Harness) -> None:
    with pytest.raises(PlatformNotFound, match="DescribeService -> 404"):
        harness.client.describe_task(TaskRef(TaskKind.SERVICE, "svco-x", "n"))


def test_the_local_token_is_sent_as_a_bearer_header(harness: Harness) -> None:
    harness.fake.models["amv-1"] = MODEL
    harness.client.describe_model_version("amv-1")
    assert harness.fake.requests[0].headers["Authorization"].startswith("Bearer ")


def test_an_unknown_total_is_none_not_zero(harness: Harness) -> None:
    harness.fake.tasks["infer-1"] = {
        "taskId": "infer-1",
        "runStatus": "Queuing",
        "progress": 0,
        "totalCount": 0,
    }
    info = harness.client.describe_task(TaskRef(TaskKind.BATCH_INFERENCE, "infer-1", "n"))
    assert (info.rows_done, info.rows_total) == (0, None)


def test_the_client_repr_names_the_platform_and_no_credential(
    qianfan_harness: Harness, secrets: tuple[str, ...]
) -> None:
    text = repr(qianfan_harness.client) + repr(qianfan_harness.client.settings)
    assert "qianfan https://qianfan.test" in text
    for secret in secrets:
        assert secret not in text


def test_a_preset_version_id_is_described_by_describe_system_model_on_qianfan(
    qianfan_harness: Harness,
) -> None:
    # [M7]: preset versions have their own describe action with the same fields as DescribeModel [M2]
    preset = {"modelSetId": "am-ernie", "modelId": "amv-pzqtzdspm77m", "modelName": "ERNIE-Speed-8K"}
    preset |= {"status": "Ready", "isSupportDeploy": False, "isSupportModelComp": False}

    def system_model(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"requestId": "r", "result": preset})

    qianfan_harness.fake.faults["DescribeSystemModel"] = [system_model]
    version = qianfan_harness.client.describe_model_version("amv-pzqtzdspm77m")
    assert (version.version_id, version.model_id, version.name) == (
        "amv-pzqtzdspm77m",
        "am-ernie",
        "ERNIE-Speed-8K",
    )
    assert version.source == "platformpreset"
    assert qianfan_harness.fake.actions() == ["DescribeModel", "DescribeSystemModel"]


def test_batch_results_are_read_back_from_the_tasks_output_folder(qianfan_harness: Harness) -> None:
    # [B5]: output files live in outputBosUri + outputDir, one line per input line [B8]
    line = {"id": "1", "query": "1+1=?", "output": {"result": "2", "object": "chat.completion"}}
    folder = "/qfrun-bucket/qfrun/batch-output/abcdefghijklmnopqrstuvwx"
    qianfan_harness.fake.objects[f"{folder}/input.jsonl"] = (json.dumps(line) + "\n").encode()
    qianfan_harness.fake.objects["/qfrun-bucket/qfrun/batch-output/other-task/input.jsonl"] = b'{"id": "9"}\n'
    rows = qianfan_harness.client.batch_results(
        "bos:/qfrun-bucket/qfrun/batch-output/", "abcdefghijklmnopqrstuvwx"
    )
    assert rows == [line]
