"""Every typed operation of the client against a MockTransport: request fields out, protocol values in."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runner.errors import PlatformNotFound, PlatformStatusError
from runner.platform.protocol import ChatMessage, Platform, TaskKind, TaskRef, TaskRequest, TaskStatus

if TYPE_CHECKING:
    from conftest import Harness

MODEL = {
    "modelId": "amv-1",
    "modelSetId": "am-1",
    "modelSetName": "tiny-qa",
    "version": "1",
    "sourceType": "Import",
    "state": "Ready",
    "sizeBytes": 4500000,
    "details": {"scheme": "fp32"},
}
DATASET = {
    "versionId": "dsv-1",
    "datasetId": "ds-1",
    "datasetName": "qa_eval",
    "entityCount": 20,
    "sha256": "ab",
}


def test_the_client_is_a_platform(harness: Harness) -> None:
    assert isinstance(harness.client, Platform)
    assert harness.client.display_name == "local http://platform.test"


def test_describe_model_version_completes_the_model_set_id(harness: Harness) -> None:
    harness.fake.models["amv-1"] = MODEL
    version = harness.client.describe_model_version("amv-1")
    assert (version.version_id, version.model_id, version.name) == ("amv-1", "am-1", "tiny-qa")
    assert version.size_bytes == 4500000
    assert version.source == "import"
    assert version.details["scheme"] == "fp32"
    assert version.details["state"] == "Ready"
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
    harness.fake.datasets["dsv-1"] = DATASET
    path = tmp_path / "qa.jsonl"
    path.write_text('{"prompt": "Q: 1+1=? A:", "response": " 2"}\n', encoding="utf-8")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    dataset = harness.client.ensure_dataset(name="qa_eval", path=str(path), sha256=digest)
    assert (dataset.dataset_id, dataset.name, dataset.rows, dataset.sha256) == ("dsv-1", "qa_eval", 20, "ab")
    action, body = harness.fake.bodies[0]
    assert action == "ImportLocalDataset"
    assert body == {"name": "qa_eval", "sha256": digest, "content": path.read_text(encoding="utf-8")}


def test_an_unreadable_dataset_file_is_a_sentence_naming_it(harness: Harness, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(PlatformStatusError, match=r"nope\.jsonl cannot be read"):
        harness.client.ensure_dataset(name="x", path=str(missing), sha256="0")


def test_describe_and_export_dataset(harness: Harness) -> None:
    harness.fake.datasets["dsv-1"] = DATASET
    assert harness.client.describe_dataset("dsv-1").rows == 20
    assert harness.client.export_dataset("dsv-1", limit=5) == '{"prompt": "p"}\n'
    assert harness.fake.bodies[-1] == ("ExportDatasetVersion", {"versionId": "dsv-1", "limit": 5})


def test_local_only_operations_are_refused_on_qianfan_with_what_to_do(qianfan_harness: Harness) -> None:
    with pytest.raises(PlatformStatusError, match="works only on the local platform; on Qianfan name"):
        qianfan_harness.client.import_model(name="m", path="/m")
    with pytest.raises(PlatformStatusError, match="qianfan_dataset_id"):
        qianfan_harness.client.ensure_dataset(name="d", path="/d.jsonl", sha256="0")
    assert qianfan_harness.fake.requests == []


def test_create_batch_inference_sends_the_documented_fields(harness: Harness) -> None:
    request = TaskRequest(
        TaskKind.BATCH_INFERENCE,
        "qa-base_infer-1a2b",
        {
            "model_version_id": "amv-1",
            "dataset_id": "dsv-1",
            "inference_params": {"temperature": 0.1},
            "batch_size": 8,
        },
    )
    ref = harness.client.create_task(request)
    assert ref == TaskRef(TaskKind.BATCH_INFERENCE, ref.task_id, "qa-base_infer-1a2b")
    assert ref.task_id.startswith("bi-")
    assert harness.fake.bodies == [
        (
            "CreateBatchInferenceTask",
            {
                "name": "qa-base_infer-1a2b",
                "description": "qfrun task qa-base_infer-1a2b",
                "modelId": "amv-1",
                "inferenceParams": {"temperature": 0.1},
                "inputDatasetId": "dsv-1",
                "batchSize": 8,
            },
        )
    ]


def test_create_evaluation_of_earlier_results(harness: Harness) -> None:
    request = TaskRequest(
        TaskKind.EVALUATION,
        "qa-eval-9",
        {
            "model_version_ids": ["amv-1"],
            "dataset_id": None,
            "result_dataset_ids": {"amv-1": "dsv-7"},
            "inference_params": {},
            "evaluators": [{"kind": "rule", "accuracy": True, "similarity": True}],
        },
    )
    harness.client.create_task(request)
    action, body = harness.fake.bodies[0]
    assert action == "CreateEvalTask"
    assert body["taskName"] == "qa-eval-9"
    assert body["evalObjectType"] == "ResultDataset"
    assert body["evalObjectConfig"]["resultDatasetIds"] == {"amv-1": "dsv-7"}
    assert body["evalConfig"] == {"evaluators": [{"kind": "rule", "accuracy": True, "similarity": True}]}


def test_create_compression_looks_up_the_model_set_and_accepts_a_bare_id(harness: Harness) -> None:
    harness.fake.models["amv-1"] = MODEL
    request = TaskRequest(
        TaskKind.COMPRESSION,
        "qa-w4-3",
        {
            "model_version_id": "amv-1",
            "strategy": "Quantization",
            "weight": "W4A16C16",
            "dataset_id": "dsv-1",
        },
    )
    ref = harness.client.create_task(request)
    assert ref.task_id.startswith("mct-")
    assert harness.fake.bodies[0] == ("DescribeModel", {"modelId": "amv-1"})
    assert harness.fake.bodies[1] == (
        "CreateModelCompTask",
        {
            "name": "qa-w4-3",
            "sourceModelId": "amv-1",
            "modelSetId": "am-1",
            "config": {"strategy": "Quantization", "weight": "W4A16C16", "datasetId": "dsv-1"},
            "description": "qfrun task qa-w4-3",
        },
    )


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("Pending", TaskStatus.PENDING),
        ("Running", TaskStatus.RUNNING),
        ("Done", TaskStatus.SUCCEEDED),
        ("Failed", TaskStatus.FAILED),
        ("Stopped", TaskStatus.STOPPED),
    ],
)
def test_batch_inference_status_words_are_normalised(harness: Harness, word: str, status: TaskStatus) -> None:
    harness.fake.tasks["bi-1"] = {
        "taskId": "bi-1",
        "runStatus": word,
        "progress": 3,
        "totalCount": 10,
        "outputDatasetId": "dsv-9",
        "failedReason": "out of memory" if word == "Failed" else "",
    }
    info = harness.client.describe_task(TaskRef(TaskKind.BATCH_INFERENCE, "bi-1", "n"))
    assert info.status is status
    assert (info.rows_done, info.rows_total) == (3, 10)
    if status is TaskStatus.SUCCEEDED:
        assert info.result == {"result_dataset_id": "dsv-9", "rows": 10}
    if status is TaskStatus.FAILED:
        assert info.message == "out of memory"
    assert harness.fake.bodies == [("DescribeBatchInferenceTask", {"taskId": "bi-1"})]


def test_a_finished_evaluation_reads_its_report_with_sample_counts(harness: Harness) -> None:
    harness.fake.tasks["et-1"] = {
        "taskId": "et-1",
        "taskName": "n",
        "status": "Done",
        "progress": 20,
        "totalCount": 20,
    }
    harness.fake.reports["et-1"] = {
        "taskId": "et-1",
        "reports": [
            {"modelVersionId": "amv-1", "metrics": {"accuracy": 0.9, "similarity": 1}, "sampleCount": 20}
        ],
    }
    info = harness.client.describe_task(TaskRef(TaskKind.EVALUATION, "et-1", "n"))
    assert info.status is TaskStatus.SUCCEEDED
    assert info.result == {
        "models": {"amv-1": {"metrics": {"accuracy": 0.9, "similarity": 1.0}, "samples": 20}}
    }
    assert harness.fake.actions() == ["DescribeEvalTask", "DescribeEvalTaskReport"]


def test_a_running_evaluation_costs_one_request_and_partly_done_is_a_failure(harness: Harness) -> None:
    harness.fake.tasks["et-1"] = {"taskId": "et-1", "status": "Doing"}
    assert (
        harness.client.describe_task(TaskRef(TaskKind.EVALUATION, "et-1", "n")).status is TaskStatus.RUNNING
    )
    harness.fake.tasks["et-1"] = {"taskId": "et-1", "status": "PartlyDone"}
    assert harness.client.describe_task(TaskRef(TaskKind.EVALUATION, "et-1", "n")).status is TaskStatus.FAILED
    assert harness.fake.actions() == ["DescribeEvalTask", "DescribeEvalTask"]


def test_a_succeeded_compression_names_the_new_version(harness: Harness) -> None:
    harness.fake.tasks["mct-1"] = {
        "modelCompTaskId": "mct-1",
        "status": "succeeded",
        "modelId": "amv-2",
        "modelSetId": "am-1",
        "sizeBytes": 1200000,
        "scheme": "W4A16",
        "seconds": 12.5,
    }
    info = harness.client.describe_task(TaskRef(TaskKind.COMPRESSION, "mct-1", "n"))
    assert info.status is TaskStatus.SUCCEEDED
    assert info.result == {
        "version_id": "amv-2",
        "model_id": "am-1",
        "size_bytes": 1200000,
        "scheme": "W4A16",
        "seconds": 12.5,
    }


def test_find_task_pages_through_the_list_and_matches_the_name_exactly(harness: Harness) -> None:
    for index in range(5):
        harness.fake.tasks[f"bi-{index}"] = {"taskId": f"bi-{index}", "name": "other", "runStatus": "Done"}
    harness.fake.tasks["bi-9"] = {"taskId": "bi-9", "name": "wanted", "runStatus": "Done"}
    assert harness.client.find_task(TaskKind.BATCH_INFERENCE, "wanted") == TaskRef(
        TaskKind.BATCH_INFERENCE, "bi-9", "wanted"
    )
    assert harness.client.find_task(TaskKind.EVALUATION, "wanted") is None
    assert harness.client.find_task(TaskKind.COMPRESSION, "wanted") is None


def test_find_task_follows_the_next_marker(harness: Harness) -> None:
    harness.fake.page_size = 1
    for index in range(3):
        harness.fake.tasks[f"et-{index}"] = {"taskId": f"et-{index}", "taskName": "same", "status": "Done"}
    assert harness.client.find_task(TaskKind.EVALUATION, "same") == TaskRef(
        TaskKind.EVALUATION, "et-0", "same"
    )
    assert harness.fake.bodies[0] == ("DescribeEvalTasks", {"keyFilter": "same", "maxKeys": 100})


def test_find_task_reads_later_pages(harness: Harness) -> None:
    harness.fake.page_size = 1
    harness.fake.tasks["mct-1"] = {"modelCompTaskId": "mct-1", "name": "a", "status": "running"}
    harness.fake.tasks["mct-2"] = {"modelCompTaskId": "mct-2", "name": "a", "status": "running"}
    harness.fake.tasks["mct-1"]["name"] = "a-different"  # only the second page holds the name now
    assert harness.client.find_task(TaskKind.COMPRESSION, "a") == TaskRef(TaskKind.COMPRESSION, "mct-2", "a")


@pytest.mark.parametrize(
    ("kind", "action", "field"),
    [
        (TaskKind.BATCH_INFERENCE, "StopBatchInferenceTask", "taskId"),
        (TaskKind.EVALUATION, "StopEvalTask", "taskId"),
        (TaskKind.COMPRESSION, "CancelModelCompTask", "modelCompTaskId"),
    ],
)
def test_cancel_task_uses_the_kinds_action(harness: Harness, kind: TaskKind, action: str, field: str) -> None:
    harness.client.cancel_task(TaskRef(kind, "x-1", "n"))
    assert harness.fake.bodies == [(action, {field: "x-1"})]


def test_cancelling_an_evaluation_on_qianfan_deletes_it(qianfan_harness: Harness) -> None:
    qianfan_harness.client.cancel_task(TaskRef(TaskKind.EVALUATION, "et-1", "n"))
    assert qianfan_harness.fake.bodies == [("DeleteEvalTask", {"taskId": "et-1"})]
    assert qianfan_harness.fake.requests[0].headers["Authorization"].startswith("bce-auth-v1/")


def test_chat_posts_messages_to_the_endpoint_and_reads_usage(harness: Harness) -> None:
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
    harness.fake.tasks["bi-1"] = {"taskId": "bi-1", "runStatus": "Pending", "progress": 0, "totalCount": 0}
    info = harness.client.describe_task(TaskRef(TaskKind.BATCH_INFERENCE, "bi-1", "n"))
    assert (info.rows_done, info.rows_total) == (0, None)


def test_the_client_repr_names_the_platform_and_no_credential(
    qianfan_harness: Harness, secrets: tuple[str, ...]
) -> None:
    text = repr(qianfan_harness.client) + repr(qianfan_harness.client.settings)
    assert "qianfan https://qianfan.test" in text
    for secret in secrets:
        assert secret not in text
