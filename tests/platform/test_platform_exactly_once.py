"""Creates are never retried blindly: a lost answer is resolved by looking the task up by its name."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

from runner.errors import PlatformRateLimited, PlatformServerError, PlatformStatusError, PlatformUnavailable
from runner.platform.protocol import TaskKind, TaskRef, TaskRequest

if TYPE_CHECKING:
    from conftest import FakeConsole, Harness

INFER = TaskRequest(
    TaskKind.BATCH_INFERENCE,
    "qa-base_infer-abc123",
    {"model_version_id": "amv-1", "dataset_id": "dsv-1", "inference_params": {}},
)
SERVICE = TaskRequest(
    TaskKind.SERVICE,
    "qa-serve-abc123",
    {
        "model_version_id": "amv-1",
        "name": "qa",
        "url_suffix": "qa",
        "replicas": 1,
        "billing": {"payment": "prepaid", "months": 1},
        "resource_type": "GPU-1-1",
    },
)


def acted_then_dropped(fake: FakeConsole, exc: type[httpx.TransportError]) -> Callable[..., httpx.Response]:
    """The platform performs the create, then the answer is lost on the way back."""

    def fault(request: httpx.Request) -> httpx.Response:
        action = request.url.params["Action"]
        fake._answer(action, json.loads(request.content))
        raise exc("the connection dropped", request=request)

    return fault


def dropped_before_acting(exc: type[httpx.TransportError]) -> Callable[..., httpx.Response]:
    def fault(request: httpx.Request) -> httpx.Response:
        raise exc("the connection dropped", request=request)

    return fault


def answer(status: int, code: str) -> Callable[..., httpx.Response]:
    return lambda request: httpx.Response(status, json={"requestId": "r", "code": code, "message": code})


def creates(fake: FakeConsole) -> int:
    return sum(1 for action, _ in fake.bodies if action.startswith("Create"))


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError])
def test_a_dropped_answer_to_a_create_is_resolved_by_name_and_created_once(
    harness: Harness, exc: type[httpx.TransportError]
) -> None:
    harness.fake.faults["CreateBatchInferenceTask"] = [acted_then_dropped(harness.fake, exc)]
    ref = harness.client.create_task(INFER)
    assert list(harness.fake.tasks) == [ref.task_id]
    assert ref == TaskRef(TaskKind.BATCH_INFERENCE, ref.task_id, INFER.name)
    assert harness.fake.actions() == ["CreateBatchInferenceTask", "DescribeBatchInferenceTasks"]


def test_a_prepaid_service_whose_answer_was_lost_is_not_bought_twice(harness: Harness) -> None:
    harness.fake.models["amv-1"] = {"modelId": "amv-1", "modelSetId": "am-1"}
    harness.fake.faults["CreateService"] = [acted_then_dropped(harness.fake, httpx.ReadTimeout)]
    ref = harness.client.create_task(SERVICE)
    assert creates(harness.fake) == 1
    assert list(harness.fake.tasks) == [ref.task_id]


def test_a_create_lost_before_the_platform_acted_is_created_again_once(harness: Harness) -> None:
    harness.fake.faults["CreateBatchInferenceTask"] = [dropped_before_acting(httpx.ReadTimeout)]
    ref = harness.client.create_task(INFER)
    assert list(harness.fake.tasks) == [ref.task_id]
    assert harness.fake.actions() == [
        "CreateBatchInferenceTask",
        "DescribeBatchInferenceTasks",
        "CreateBatchInferenceTask",
    ]


def test_a_server_error_on_create_is_ambiguous_and_looked_up_first(harness: Harness) -> None:
    harness.fake.faults["CreateBatchInferenceTask"] = [answer(503, "ServerHighLoad")]
    harness.client.create_task(INFER)
    assert harness.fake.actions() == [
        "CreateBatchInferenceTask",
        "DescribeBatchInferenceTasks",
        "CreateBatchInferenceTask",
    ]
    assert len(harness.fake.tasks) == 1


@pytest.mark.parametrize(
    "fault",
    [dropped_before_acting(httpx.ConnectError), answer(429, "RateLimitExceeded")],
    ids=["connect error", "rate limited"],
)
def test_a_create_the_platform_never_saw_is_retried_without_a_lookup(
    harness: Harness, fault: Callable[..., httpx.Response]
) -> None:
    harness.fake.faults["CreateBatchInferenceTask"] = [fault]
    harness.client.create_task(INFER)
    assert harness.fake.actions() == ["CreateBatchInferenceTask", "CreateBatchInferenceTask"]
    assert len(harness.fake.tasks) == 1


def test_a_create_that_keeps_failing_ambiguously_gives_up_with_the_error(harness: Harness) -> None:
    harness.fake.faults["CreateBatchInferenceTask"] = [dropped_before_acting(httpx.ReadTimeout)] * 10
    with pytest.raises(PlatformUnavailable, match="CreateBatchInferenceTask: no answer in time"):
        harness.client.create_task(INFER)
    assert creates(harness.fake) == 4  # the first try and max_retries=3 more, each after a lookup
    assert harness.fake.actions().count("DescribeBatchInferenceTasks") == 4
    assert harness.fake.tasks == {}


def test_persistent_rate_limits_on_create_end_as_rate_limited(harness: Harness) -> None:
    harness.fake.faults["CreateBatchInferenceTask"] = [answer(429, "RateLimitExceeded")] * 10
    with pytest.raises(PlatformRateLimited):
        harness.client.create_task(INFER)
    assert creates(harness.fake) == 4
    assert "DescribeBatchInferenceTasks" not in harness.fake.actions()


def test_a_refused_create_is_not_retried_or_looked_up(harness: Harness) -> None:
    harness.fake.faults["CreateBatchInferenceTask"] = [answer(400, "InvalidParameter")]
    with pytest.raises(PlatformStatusError):
        harness.client.create_task(INFER)
    assert harness.fake.actions() == ["CreateBatchInferenceTask"]


def test_a_failing_lookup_after_an_ambiguous_create_is_reported(harness: Harness) -> None:
    harness.fake.faults["CreateBatchInferenceTask"] = [dropped_before_acting(httpx.ReadTimeout)]
    harness.fake.faults["DescribeBatchInferenceTasks"] = [answer(500, "InternalError")] * 10
    with pytest.raises(PlatformServerError):
        harness.client.create_task(INFER)
    assert creates(harness.fake) == 1


def test_a_full_task_queue_makes_the_create_wait_not_fail(qianfan_harness: Harness) -> None:
    """TaskRunningNumberExceedLimit (20 batch tasks per account [B1]) is waited out, then the create goes."""

    def full(request: httpx.Request) -> httpx.Response:
        body = {"requestId": "r", "code": "TaskRunningNumberExceedLimit", "message": "too many running tasks"}
        return httpx.Response(400, json=body)

    qianfan_harness.fake.faults["CreateBatchInferenceTask"] = [full, full]
    request = TaskRequest(
        TaskKind.BATCH_INFERENCE,
        "qf-infer-0123456789",
        {"model_version_id": "amv-1", "input_bos_uri": "bos:/b/in/", "output_bos_uri": "bos:/b/out/"},
    )
    ref = qianfan_harness.client.create_task(request)
    assert ref.task_id.startswith("infer-")
    assert qianfan_harness.sleeps == [30.0, 30.0]
    assert qianfan_harness.fake.actions().count("CreateBatchInferenceTask") == 3


@pytest.mark.parametrize(("status", "code"), [(409, "Conflict"), (400, "DuplicateName")])
def test_a_create_refused_because_the_name_is_taken_adopts_the_task_of_that_name(
    harness: Harness, status: int, code: str
) -> None:
    harness.fake._answer("CreateBatchInferenceTask", {"name": INFER.name})
    harness.fake.faults["CreateBatchInferenceTask"] = [answer(status, code)]
    ref = harness.client.create_task(INFER)
    assert ref.name == INFER.name
    assert ref.task_id in harness.fake.tasks
    assert creates(harness.fake) == 1  # the refused create only


def test_a_conflict_with_no_task_of_that_name_is_reported_not_swallowed(harness: Harness) -> None:
    harness.fake.faults["CreateBatchInferenceTask"] = [answer(409, "Conflict")]
    with pytest.raises(PlatformStatusError, match="Conflict"):
        harness.client.create_task(INFER)
