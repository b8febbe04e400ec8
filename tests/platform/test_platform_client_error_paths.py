"""The client's error paths: each failure a platform or a file can produce becomes one sentence of the
right error class, naming what failed, and never a create that runs twice. The platform is the scripted
console of conftest.py (a fake is the only way to make a platform misbehave on cue)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from runner.errors import PlatformError, PlatformNotFound, PlatformProtocolError, PlatformStatusError
from runner.platform.actions import creates, inference, session
from runner.platform.protocol import TaskKind, TaskRef, TaskRequest

if TYPE_CHECKING:
    from conftest import Harness


def _answer(result: Any) -> Any:
    return lambda request: httpx.Response(200, json={"requestId": "req-x", "result": result})


def _refuse(status: int, code: str, message: str = "refused") -> Any:
    return lambda request: httpx.Response(
        status, json={"requestId": "req-r", "code": code, "message": message}
    )


# -- datasets -------------------------------------------------------------------------------------------


def test_a_dataset_that_is_not_utf8_is_refused_before_anything_is_sent(
    harness: Harness, tmp_path: Path
) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"prompt": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(PlatformStatusError) as caught:
        harness.client.ensure_dataset(name="x", path=str(path), sha256="0")
    assert f"the dataset file {path} cannot be read for upload" in str(caught.value)
    assert "utf-8" in str(caught.value)
    assert harness.fake.requests == []
    assert harness.fake.puts == []


def test_a_dataset_that_changed_since_it_was_hashed_is_not_uploaded(harness: Harness, tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text('{"prompt": "1+1=?"}\n')
    stale = hashlib.sha256(b"what it held when the plan hashed it").hexdigest()
    with pytest.raises(PlatformStatusError) as caught:
        harness.client.ensure_dataset(name="x", path=str(path), sha256=stale)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"changed while qfrun read it (sha256 {actual}, not {stale}); run again" in str(caught.value)
    assert harness.fake.puts == []


def test_a_dataset_that_is_a_folder_is_refused_by_name(harness: Harness, tmp_path: Path) -> None:
    with pytest.raises(PlatformStatusError, match="is not a regular file"):
        harness.client.ensure_dataset(name="x", path=str(tmp_path), sha256="0")


def test_an_export_whose_content_is_not_text_is_a_protocol_error(harness: Harness) -> None:
    harness.fake.faults["ExportDatasetVersion"] = [_answer({"versionId": "ds-1"}), _answer(["rows"])]
    for _ in range(2):
        with pytest.raises(PlatformProtocolError, match=r"'result\.content' should be a string"):
            harness.client.export_dataset("ds-1")


def test_exporting_on_qianfan_says_where_to_do_it_instead(qianfan_harness: Harness) -> None:
    with pytest.raises(PlatformStatusError, match="Qianfan's console to export it to BOS"):
        qianfan_harness.client.export_dataset("ds-1")
    assert qianfan_harness.fake.requests == []


# -- lists that never end --------------------------------------------------------------------------------


def test_a_list_that_pages_forever_is_an_error_rather_than_a_second_create(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "MAX_LIST_PAGES", 3)
    for index in range(20):
        harness.fake.tasks[f"infer-{index + 100}"] = {
            "taskId": f"infer-{index + 100}",
            "name": f"other-{index}",
        }
    with pytest.raises(PlatformStatusError) as caught:
        harness.client.find_task(TaskKind.BATCH_INFERENCE, "qf-mine-0123456789")
    assert "more than 300 entries" in str(caught.value)
    assert "rather than risk creating it twice" in str(caught.value)
    assert harness.fake.actions().count("DescribeBatchInferenceTasks") == 3


def test_a_list_whose_next_marker_repeats_stops_instead_of_looping(harness: Harness) -> None:
    page = {
        "taskList": [{"taskId": "infer-1", "name": "a"}],
        "pageInfo": {"marker": "m", "maxKeys": 1, "isTruncated": True, "nextMarker": "m"},
    }
    first = {**page, "pageInfo": {**page["pageInfo"], "marker": ""}}
    harness.fake.faults["DescribeBatchInferenceTasks"] = [_answer(first), _answer(page)]
    assert harness.client.find_task(TaskKind.BATCH_INFERENCE, "b") is None
    assert harness.fake.actions() == ["DescribeBatchInferenceTasks", "DescribeBatchInferenceTasks"]


# -- creates ---------------------------------------------------------------------------------------------


def _request(name: str = "qf-e-0123456789") -> TaskRequest:
    return TaskRequest(TaskKind.BATCH_INFERENCE, name, {"model_version_id": "amv-1", "dataset_id": "ds-1"})


def test_a_create_refused_for_another_reason_than_the_name_is_raised_as_is(harness: Harness) -> None:
    harness.fake.faults["CreateBatchInferenceTask"] = [_refuse(400, "InvalidParameter", "bad temperature")]
    with pytest.raises(PlatformStatusError, match="bad temperature"):
        harness.client.create_task(_request())
    assert "DescribeBatchInferenceTasks" not in harness.fake.actions()  # nothing to adopt


def test_a_create_refused_because_the_name_is_taken_but_no_task_has_it_is_raised(harness: Harness) -> None:
    harness.fake.faults["CreateBatchInferenceTask"] = [_refuse(400, "TaskNameAlreadyExist", "name taken")]
    with pytest.raises(PlatformStatusError, match="name taken"):
        harness.client.create_task(_request())
    assert harness.fake.actions() == ["CreateBatchInferenceTask", "DescribeBatchInferenceTasks"]


def test_a_create_refused_with_409_adopts_the_task_of_that_name(harness: Harness) -> None:
    harness.fake.tasks["infer-7"] = {"taskId": "infer-7", "name": "qf-e-0123456789", "runStatus": "Running"}
    harness.fake.faults["CreateBatchInferenceTask"] = [_refuse(409, "Conflict", "exists")]
    ref = harness.client.create_task(_request())
    assert (ref.task_id, ref.name) == ("infer-7", "qf-e-0123456789")


@pytest.mark.parametrize(
    ("code", "taken"),
    [
        ("DuplicateName", True),
        ("TaskNameAlreadyExist", True),
        ("NameExists", True),
        ("conflict", True),
        ("QuotaExceeded", False),
        (None, False),
        (400, False),
    ],
)
def test_what_counts_as_a_name_already_taken(code: str | int | None, taken: bool) -> None:
    assert creates.says_name_taken(code) is taken


def test_a_create_answer_without_an_id_is_a_protocol_error_naming_the_field(harness: Harness) -> None:
    harness.fake.faults["CreateBatchInferenceTask"] = [_answer({"name": "qf-e-0123456789"})]
    with pytest.raises(PlatformProtocolError, match="taskId"):
        harness.client.create_task(_request())


# -- services --------------------------------------------------------------------------------------------


def test_a_service_the_list_leaves_out_is_described_and_kept_when_it_exists(harness: Harness) -> None:
    harness.fake.faults["DescribeServices"] = [
        _answer({"serviceList": [], "pageInfo": {"isTruncated": False}})
    ]
    harness.fake.faults["DescribeService"] = [_answer({"serviceId": "svco-9", "runStatus": "Serving"})]
    states = harness.client.list_services({"svco-9"})
    assert set(states) == {"svco-9"}


def test_a_service_described_without_a_run_status_is_a_protocol_error(harness: Harness) -> None:
    harness.fake.faults["DescribeServices"] = [
        _answer({"serviceList": [], "pageInfo": {"isTruncated": False}})
    ]
    harness.fake.faults["DescribeService"] = [_answer({"serviceId": "svco-9"})]
    with pytest.raises(PlatformProtocolError, match=r"'result\.runStatus' is missing"):
        harness.client.list_services({"svco-9"})


def test_a_service_that_is_not_found_is_gone_and_no_service_asked_is_no_request(harness: Harness) -> None:
    harness.fake.faults["DescribeServices"] = [
        _answer({"serviceList": [], "pageInfo": {"isTruncated": False}})
    ]
    assert harness.client.list_services({"svco-404"}) == {}
    assert harness.fake.actions() == ["DescribeServices", "DescribeService"]
    assert harness.client.list_services(set()) == {}
    assert harness.client.list_model_versions(set()) == frozenset()
    assert len(harness.fake.actions()) == 2


def test_a_service_without_a_known_instance_is_released_by_the_instance_its_description_names(
    qianfan_harness: Harness,
) -> None:
    qianfan_harness.fake.faults["DescribeService"] = [
        _answer({"serviceId": "svco-3", "runStatus": "Serving", "resourceConfig": {}, "instanceId": "unit-3"})
    ]
    qianfan_harness.client.cancel_task(TaskRef(TaskKind.SERVICE, "svco-3", "serve"))
    assert qianfan_harness.fake.actions() == ["DescribeService", "ReleaseComputeUnit"]
    assert qianfan_harness.fake.bodies[-1][1] == {"serviceId": "svco-3", "instanceId": "unit-3"}


def test_a_service_whose_description_names_no_instance_is_not_released_blindly(
    qianfan_harness: Harness,
) -> None:
    qianfan_harness.fake.faults["DescribeService"] = [
        _answer({"serviceId": "svco-3", "runStatus": "Serving"})
    ]
    with pytest.raises(PlatformStatusError) as caught:
        qianfan_harness.client.cancel_task(TaskRef(TaskKind.SERVICE, "svco-3", "serve"))
    assert "the service svco-3 cannot be released" in str(caught.value)
    assert "ReleaseComputeUnit" not in qianfan_harness.fake.actions()


def test_a_service_with_its_instance_recorded_is_released_without_a_describe(
    qianfan_harness: Harness,
) -> None:
    qianfan_harness.client.cancel_task(TaskRef(TaskKind.SERVICE, "svco-3", "serve", "unit-3"))
    assert qianfan_harness.fake.actions() == ["ReleaseComputeUnit"]
    assert qianfan_harness.fake.bodies[-1][1] == {"serviceId": "svco-3", "instanceId": "unit-3"}


# -- model versions --------------------------------------------------------------------------------------


def test_a_version_the_model_list_leaves_out_exists_when_its_description_does(harness: Harness) -> None:
    harness.fake.faults["DescribeCustomModelSets"] = [
        _answer({"customModelSetList": [], "pageInfo": {"isTruncated": False}})
    ]
    harness.fake.models["amv-2"] = {
        "modelSetId": "am-1",
        "modelId": "amv-2",
        "modelName": "m",
        "status": "Ready",
        "sourceInfo": {"sourceType": "Import"},
    }
    assert harness.client.list_model_versions({"amv-2", "amv-gone"}) == frozenset({"amv-2"})


# -- manual evaluation and batch results -----------------------------------------------------------------


def test_manual_scores_are_handed_over_only_on_the_local_platform(qianfan_harness: Harness) -> None:
    ref = TaskRef(TaskKind.EVALUATION, "ame-1", "e")
    assert qianfan_harness.client.manual_samples(ref) is None
    with pytest.raises(PlatformStatusError, match="people score in its console"):
        qianfan_harness.client.submit_manual_scores(ref, [])
    assert "ame-1" in qianfan_harness.client.manual_scoring_place(ref)
    assert qianfan_harness.fake.requests == []


def test_a_batch_output_line_that_is_not_json_names_the_object_and_the_line(qianfan_harness: Harness) -> None:
    folder = "/qfrun-bucket/out/task-1"
    qianfan_harness.fake.objects[f"{folder}/a.jsonl"] = b'{"id": "1"}\n\n[1, 2]\n{broken\n'
    with pytest.raises(PlatformStatusError) as caught:
        qianfan_harness.client.batch_results("bos:/qfrun-bucket/out/", "task-1")
    assert "the batch output bos:/qfrun-bucket/out/task-1/a.jsonl line 4 is not JSON" in str(caught.value)


def test_batch_output_rows_that_are_not_objects_are_kept_under_value(qianfan_harness: Harness) -> None:
    folder = "/qfrun-bucket/task-2"
    qianfan_harness.fake.objects[f"{folder}/b.jsonl"] = b'[1, 2]\n"x"\n'
    qianfan_harness.fake.objects[f"{folder}/a.jsonl"] = b'{"id": "1"}\n'
    qianfan_harness.fake.objects[f"{folder}/sub/"] = b""  # a folder marker is no output file
    rows = qianfan_harness.client.batch_results("bos://qfrun-bucket", "task-2")
    assert rows == [{"id": "1"}, {"value": [1, 2]}, {"value": "x"}]


def test_batch_output_past_the_size_read_back_stays_in_bos(
    qianfan_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inference, "MAX_RESULTS_BYTES", 10)
    qianfan_harness.fake.objects["/qfrun-bucket/o/t/a.jsonl"] = json.dumps(
        {"id": "1", "x": "y" * 20}
    ).encode()
    assert qianfan_harness.client.batch_results("bos:/qfrun-bucket/o", "t") is None
    assert not any(r.method == "GET" and r.url.path.endswith(".jsonl") for r in qianfan_harness.fake.requests)


# -- every refusal is a PlatformError with its request id and no credential ------------------------------


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [(404, "ResourceNotFound", PlatformNotFound), (400, "InvalidParameter", PlatformStatusError)],
)
def test_a_refused_describe_is_its_error_class_with_the_request_id(
    harness: Harness, secrets: tuple[str, ...], status: int, code: str, kind: type[PlatformError]
) -> None:
    harness.fake.faults["DescribeModel"] = [_refuse(status, code, "it says no")]
    with pytest.raises(kind) as caught:
        harness.client.describe_model_version("amv-1")
    text = str(caught.value)
    assert "it says no" in text
    assert "(request id req-r)" in text
    assert not any(secret in text for secret in secrets)
