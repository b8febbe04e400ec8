"""The error paths of the fine-tuning creates on Qianfan's wire (an in-memory console, for faults the real
local platform cannot be made to show): a job, a model set or a publish whose answer was lost is looked up
before it is created again, a taken name adopts what holds it, and a task with no name is found in its job."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runner.errors import PlatformServerError, PlatformStatusError
from runner.platform.client import PlatformClient
from runner.platform.protocol import TaskRequest
from runner.platform.ratelimit import TokenBucket
from runner.platform.settings import BosSettings, Credentials, PlatformSettings
from runner.platform.wire.finetuning import FINETUNING


class Console:
    """Jobs, tasks, model sets and versions in dicts; ``lost`` names creates performed whose answer is a 503,
    ``taken`` creates refused with a name conflict."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.sets: dict[str, dict[str, Any]] = {"am-other": {"modelSetId": "am-other", "modelSetName": "x"}}
        self.versions: dict[str, dict[str, Any]] = {}
        self.lost: list[str] = []
        self.taken: list[str] = []
        self.actions: list[str] = []
        self.last: dict[str, dict[str, Any]] = {}  # the last body of each action
        self.ids = itertools.count(1)

    def handler(self, request: httpx.Request) -> httpx.Response:
        action = request.url.params["Action"]
        body = json.loads(request.content or b"{}")
        self.actions.append(action)
        self.last[action] = body
        if action in self.taken:
            self.taken.remove(action)
            return httpx.Response(409, json={"requestId": "r", "code": "DuplicateName", "message": "taken"})
        result = self.answer(action, body)
        if action in self.lost:
            self.lost.remove(action)
            return httpx.Response(503, json={"requestId": "r", "code": "ServerHighLoad", "message": "busy"})
        return httpx.Response(200, json={"requestId": "r", "result": result})

    def answer(self, action: str, body: dict[str, Any]) -> Any:
        number = next(self.ids)
        if action == "CreateFineTuningJob":
            self.jobs[f"job-{number}"] = {"jobId": f"job-{number}", **body}
            return {"jobId": f"job-{number}"}
        if action == "DescribeFineTuningJobs":
            return {"jobList": list(self.jobs.values()), "pageInfo": {"isTruncated": False}}
        if action == "CreateFineTuningTask":
            self.tasks[f"task-{number}"] = {"taskId": f"task-{number}", "jobId": body["jobId"]}
            return {"jobId": body["jobId"], "taskId": f"task-{number}"}
        if action == "DescribeFineTuningTasks":
            items = [task for task in self.tasks.values() if task["jobId"] == body["jobId"]]
            return {"taskList": items, "pageInfo": {"isTruncated": False}}
        if action == "CreateCustomModelSet":
            self.sets[f"am-{number}"] = {"modelSetId": f"am-{number}", "modelSetName": body["modelSetName"]}
            return f"am-{number}"
        if action == "DescribeCustomModelSets":
            items = [
                {**item, "modelIds": [v for v, d in self.versions.items() if d["modelSetId"] == set_id]}
                for set_id, item in self.sets.items()
            ]
            return {"customModelSetList": items, "pageInfo": {"isTruncated": False}}
        if action == "CreateCustomModel":
            self.versions[f"amv-{number}"] = {
                "modelSetId": body["modelSetId"],
                "description": body["description"],
            }
            return {"modelId": f"amv-{number}"}
        if action == "DescribeModel":
            version = self.versions[body["modelId"]]
            return {"modelId": body["modelId"], "modelName": "tuned", "status": "Ready", **version}
        raise AssertionError(action)


@pytest.fixture
def console() -> Iterator[tuple[Console, PlatformClient]]:
    fake = Console()
    settings = PlatformSettings(
        "qianfan",
        "https://qianfan.test",
        "https://aip.test",
        Credentials(bearer_token="token"),
        rps=1000.0,
        bos=BosSettings("https://bos.test", "qfrun-bucket"),
        max_retries=1,
        backoff_base_s=0.01,
    )
    client = PlatformClient(
        settings,
        transport=httpx.MockTransport(fake.handler),
        bucket=TokenBucket(1e6, 1000),
        sleep=lambda s: None,
    )
    with client:
        yield fake, client


REQUEST = TaskRequest(
    FINETUNING,
    "qf-tuned-0123456789",
    {
        "model_version_id": "amv-pzqtzdspm77m",
        "base_model_name": "ERNIE-Speed-8K",
        "method": "LoRA",
        "hyper_parameters": {"epoch": 1},
        "dataset_id": "ds-he8srs01ym0b8fh7",
        "description": "qfrun tune/tuned fingerprint 0123 attempt 1",
    },
)


def test_a_job_whose_answer_was_lost_is_found_by_name_and_its_nameless_task_in_it(console) -> None:
    fake, client = console
    fake.lost.append("CreateFineTuningJob")
    prepared = client.prepare_task(REQUEST)
    assert list(fake.jobs) == [prepared["job_id"]]  # created once, found by its name after the 503
    assert fake.jobs[prepared["job_id"]]["model"] == "ERNIE-Speed-8K"  # Qianfan: the base model's name
    assert fake.actions == ["DescribeFineTuningJobs", "CreateFineTuningJob", "DescribeFineTuningJobs"]
    assert client.find_task(FINETUNING, REQUEST.name, prepared) is None
    ref = client.create_task(TaskRequest(FINETUNING, REQUEST.name, {**REQUEST.params, **prepared}))
    sent = fake.last["CreateFineTuningTask"]
    assert "name" not in sent
    assert sent["jobId"] == prepared["job_id"]
    assert client.find_task(FINETUNING, REQUEST.name, prepared) == ref  # the task of its job


def test_a_model_set_is_found_by_name_and_a_lost_publish_by_its_description(console) -> None:
    fake, client = console
    fake.sets["am-x"] = {"modelSetId": "am-x", "modelSetName": "qfrun-tuned"}
    assert client.ensure_model_set("qfrun-tuned") == "am-x"  # found: no create
    assert "CreateCustomModelSet" not in fake.actions
    fake.actions.clear()
    fake.lost.append("CreateCustomModel")
    version = client.publish_trained("task-1", model_set_id="am-x", checkpoint_step=50)
    assert list(fake.versions) == [version.version_id]  # one version, found after the lost answer
    assert "CreateCustomModel" in fake.actions
    assert fake.actions.count("CreateCustomModel") == 1
    assert client.publish_trained("task-1", model_set_id="am-x", checkpoint_step=50) == version
    assert len(fake.versions) == 1


def test_a_job_name_taken_adopts_the_job_of_that_name_and_a_refusal_without_one_is_raised(console) -> None:
    fake, client = console
    fake.taken.append("CreateFineTuningJob")
    original = fake.answer

    def appears(action: str, body: dict[str, Any]) -> Any:  # the job holding the name shows up in the list
        if action == "DescribeFineTuningJobs" and fake.actions.count(action) > 1 and not fake.jobs:
            fake.jobs["job-late"] = {"jobId": "job-late", "name": REQUEST.name}
        return original(action, body)

    fake.answer = appears  # type: ignore[method-assign]
    assert client.prepare_task(REQUEST) == {"job_id": "job-late"}
    fake.jobs.clear()
    fake.answer = original  # type: ignore[method-assign]
    fake.taken.append("CreateFineTuningJob")
    with pytest.raises(PlatformStatusError, match="taken"):
        client.prepare_task(REQUEST)  # refused, and no job of that name to adopt


def test_a_create_lost_every_time_gives_up_with_the_error(console) -> None:
    fake, client = console
    fake.answer = lambda action, body: (  # type: ignore[method-assign]
        {"jobList": [], "pageInfo": {"isTruncated": False}} if action == "DescribeFineTuningJobs" else {}
    )
    fake.lost.extend(["CreateFineTuningJob"] * 2)
    with pytest.raises(PlatformServerError):
        client.prepare_task(REQUEST)
    assert fake.actions.count("CreateFineTuningJob") == 2  # the first try and max_retries=1 more
