"""The client's side of services, against the reference's shapes [S1]-[S6]: what it sends, what it reads.

The fake answers as Qianfan documents it (replicas under ``resourceConfig``, no ``urlSuffix`` or
``expireTime``, lists paged through ``result.pageInfo``), so these tests fail if the client relies on the
local platform's extra fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from runner.errors import PlatformProtocolError, PlatformStatusError
from runner.platform.protocol import TaskKind, TaskRef, TaskRequest, TaskStatus

if TYPE_CHECKING:
    from conftest import Harness

CHAT_URL = "https://aip.baidubce.com/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"


def service(billing: dict[str, Any], **extra: Any) -> TaskRequest:
    params = {
        "model_version_id": "amv-1",
        "name": "qa",
        "url_suffix": "qa_w4",
        "replicas": 2,
        "billing": billing,
    }
    return TaskRequest(TaskKind.SERVICE, "qfrun-qa-serve-abc123-1", {**params, **extra})


@pytest.fixture
def model(harness: Harness) -> None:
    harness.fake.models["amv-1"] = {"modelId": "amv-1", "modelSetId": "am-1"}


@pytest.mark.usefixtures("model")
def test_a_prepaid_service_is_bought_by_the_month_on_a_documented_resource_type(harness: Harness) -> None:
    request = service({"payment": "prepaid", "months": 3}, resource_type="GPU-1-2", region="bj", qps=1.5)
    ref = harness.client.create_task(request)
    assert harness.fake.bodies[1] == (
        "CreateService",
        {
            "modelSetId": "am-1",
            "modelId": "amv-1",
            "name": "qa",
            "description": "qfrun task qfrun-qa-serve-abc123-1",
            "urlSuffix": "qa_w4",
            "resourceConfig": {"type": "GPU-1-2", "region": "bj", "qps": 1.5, "replicasCount": 2},
            "billing": {
                "paymentTiming": "Prepaid",
                "reservation": {"reservationTimeUnit": "Month", "reservationLength": 3},
            },
        },
    )
    # The compute instance comes back with the service id and is kept: releasing needs it [S5].
    assert list(harness.fake.tasks) == [ref.task_id]
    assert ref == TaskRef(TaskKind.SERVICE, ref.task_id, request.name, ref.task_id.replace("svco", "unit"))


@pytest.mark.usefixtures("model")
def test_a_postpaid_service_names_its_charge_type_and_by_tokens_buys_no_compute(harness: Harness) -> None:
    harness.client.create_task(
        service({"payment": "postpaid", "charge": "computing_unit"}, resource_type="CPU-1-1")
    )
    harness.client.create_task(service({"payment": "postpaid", "charge": "tokens"}))
    by_unit, by_tokens = (body for action, body in harness.fake.bodies if action == "CreateService")
    assert by_unit["billing"] == {"paymentTiming": "Postpaid", "chargeType": "ComputingUnit"}
    assert by_unit["resourceConfig"] == {"type": "CPU-1-1", "replicasCount": 2}
    assert by_tokens["billing"] == {"paymentTiming": "Postpaid", "chargeType": "Tokens"}
    assert "resourceConfig" not in by_tokens
    assert "serviceType" not in by_unit


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("New", TaskStatus.PENDING),
        ("Deploying", TaskStatus.RUNNING),
        ("Serving", TaskStatus.SUCCEEDED),
        ("Failed", TaskStatus.FAILED),
        ("Stopped", TaskStatus.STOPPED),
    ],
)
def test_the_five_documented_run_statuses_and_the_documented_result(
    harness: Harness, word: str, status: TaskStatus
) -> None:
    harness.fake.tasks["svco-1"] = {
        "serviceId": "svco-1",
        "name": "qa",
        "url": CHAT_URL + "qa_w4",
        "serviceType": "chat",
        "runStatus": word,
        "resourceConfig": {"type": "GPU-I-2", "replicasCount": 2, "qps": 0.5},
    }
    info = harness.client.describe_task(TaskRef(TaskKind.SERVICE, "svco-1", "n"))
    assert info.status is status
    assert info.result == {
        "service_id": "svco-1",
        "url_suffix": "qa_w4",  # Qianfan returns no urlSuffix: it is the chat URL's last part
        "url": CHAT_URL + "qa_w4",
        "replicas": 2,
        "resource_type": "GPU-I-2",
        "expires_at": None,
        "instance_id": None,
    }


@pytest.mark.parametrize("word", ["Done", "DeployFailed", "Expired", "Deleted"])
def test_an_undocumented_run_status_is_a_protocol_error_naming_field_and_value(
    harness: Harness, word: str
) -> None:
    harness.fake.tasks["svco-1"] = {"serviceId": "svco-1", "runStatus": word}
    with pytest.raises(PlatformProtocolError, match=f"'result.runStatus' has the unknown status '{word}'"):
        harness.client.describe_task(TaskRef(TaskKind.SERVICE, "svco-1", "n"))


def test_fields_the_local_platform_adds_are_read_when_present(harness: Harness) -> None:
    harness.fake.tasks["svco-1"] = {
        "serviceId": "svco-1",
        "url": "http://127.0.0.1:9/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/qa_w4",
        "runStatus": "Stopped",
        "resourceConfig": {"replicasCount": 1},
        "urlSuffix": "qa_w4",
        "expireTime": "2027-01-01T00:00:00Z",
        "instanceId": "unit-7",
        "failedReason": "The service's prepaid term ended, so its replicas were stopped.",
    }
    info = harness.client.describe_task(TaskRef(TaskKind.SERVICE, "svco-1", "n"))
    assert (info.result["expires_at"], info.result["instance_id"]) == ("2027-01-01T00:00:00Z", "unit-7")
    assert info.message == "The service's prepaid term ended, so its replicas were stopped."


def listed(harness: Harness, service_id: str, name: str, description: str) -> None:
    harness.fake.tasks[service_id] = {
        "serviceId": service_id,
        "name": name,
        "description": description,
        "runStatus": "Serving",
    }


def test_find_task_pages_to_the_end_and_matches_the_intent_in_the_description_exactly(
    harness: Harness,
) -> None:
    harness.fake.page_size = 1
    listed(harness, "svco-1", "qa", "qfrun task intent-1-longer")  # same name, another intent
    listed(harness, "svco-2", "qa-2", "made by hand")
    listed(harness, "svco-3", "qa", "qfrun task intent-1")
    found = harness.client.find_task(TaskKind.SERVICE, "intent-1")
    assert found == TaskRef(TaskKind.SERVICE, "svco-3", "intent-1")
    requests = [body for action, body in harness.fake.bodies if action == "DescribeServices"]
    assert requests == [{"maxKeys": 100}, {"maxKeys": 100, "marker": "1"}, {"maxKeys": 100, "marker": "2"}]
    assert harness.client.find_task(TaskKind.SERVICE, "intent-2") is None


def test_a_list_item_without_a_description_is_described_before_it_is_matched(harness: Harness) -> None:
    listed(harness, "svco-1", "qa", "qfrun task intent-1")

    def lists_without_description(request: httpx.Request) -> httpx.Response:
        item = {"serviceId": "svco-1", "name": "qa", "runStatus": "Serving"}
        return harness.fake._ok({"serviceList": [item], "pageInfo": {"isTruncated": False}})

    harness.fake.faults["DescribeServices"] = [lists_without_description]
    assert harness.client.find_task(TaskKind.SERVICE, "intent-1") == TaskRef(
        TaskKind.SERVICE, "svco-1", "intent-1"
    )
    assert harness.fake.actions() == ["DescribeServices", "DescribeService"]


def test_a_list_whose_array_has_another_name_is_still_read(harness: Harness) -> None:
    def other_name(request: httpx.Request) -> httpx.Response:
        services = [{"serviceId": "svco-4", "name": "qa", "description": "qfrun task i", "instanceId": "u-4"}]
        return harness.fake._ok({"services": services, "pageInfo": {"isTruncated": False}})

    harness.fake.faults["DescribeServices"] = [other_name]
    assert harness.client.find_task(TaskKind.SERVICE, "i") == TaskRef(TaskKind.SERVICE, "svco-4", "i", "u-4")


def test_cancelling_a_service_releases_its_compute_unit(harness: Harness) -> None:
    harness.client.cancel_task(TaskRef(TaskKind.SERVICE, "svco-1", "n", "unit-1"))
    assert harness.fake.bodies == [("ReleaseComputeUnit", {"serviceId": "svco-1", "instanceId": "unit-1"})]
    assert harness.fake.requests[0].url.path == "/v2/serviceresources"


def test_a_service_found_without_its_instance_is_described_for_it_before_release(harness: Harness) -> None:
    harness.fake.tasks["svco-1"] = {"serviceId": "svco-1", "runStatus": "Serving", "instanceId": "unit-9"}
    harness.client.cancel_task(TaskRef(TaskKind.SERVICE, "svco-1", "n"))
    assert harness.fake.bodies[-1] == ("ReleaseComputeUnit", {"serviceId": "svco-1", "instanceId": "unit-9"})


def test_a_service_whose_instance_is_unknown_is_not_released_blindly(harness: Harness) -> None:
    harness.fake.tasks["svco-1"] = {"serviceId": "svco-1", "runStatus": "Serving"}
    with pytest.raises(PlatformStatusError) as caught:
        harness.client.cancel_task(TaskRef(TaskKind.SERVICE, "svco-1", "n"))
    assert "the service svco-1 cannot be released: the platform did not say which compute instance" in str(
        caught.value
    )
    assert "ReleaseComputeUnit" not in harness.fake.actions()


def test_a_release_that_does_not_answer_true_is_a_protocol_error(harness: Harness) -> None:
    harness.fake.faults["ReleaseComputeUnit"] = [lambda request: harness.fake._ok({})]
    with pytest.raises(PlatformProtocolError, match=r"ReleaseComputeUnit should be true, not \{\}"):
        harness.client.cancel_task(TaskRef(TaskKind.SERVICE, "svco-1", "n", "unit-1"))
