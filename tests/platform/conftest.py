"""An in-memory platform behind ``httpx.MockTransport``, with scripted faults, for the client's tests."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from runner.platform.client import PlatformClient
from runner.platform.ratelimit import TokenBucket
from runner.platform.settings import BosSettings, Credentials, PlatformSettings

AK = "AKtestAccessKey0123456789abcdef"
SK = "SKtestSecretKey0123456789abcdef"
TOKEN = "bearer-token-secret-value-42"
SECRETS = (AK, SK, TOKEN)

Fault = Callable[[httpx.Request], httpx.Response]

# Written from shared/reference/qianfan-official-api.md, not from runner.platform.wire, so that the client is
# checked against the documented shapes: (id prefix, list field, name field) [B6][E3][C3][S3].
LIST_ACTIONS = {
    "DescribeBatchInferenceTasks": ("infer", "taskList", "name"),
    "DescribeEvalTasks": ("ame", "evalTaskList", "taskName"),
    "DescribeModelCompTasks": ("amva", "modelCompTaskList", "name"),
    "DescribeServices": ("svco", "serviceList", "name"),
}
# (id prefix, id field in describe results, name field, status field, first status word) [B4][E2][C2][S2]
CREATE_ACTIONS = {
    "CreateBatchInferenceTask": ("infer", "taskId", "name", "runStatus", "Queuing"),
    "CreateEvalTask": ("ame", "taskId", "taskName", "state", "Queued"),
    "CreateModelCompTask": ("amva", "id", "name", "status", "creating"),
    "CreateService": ("svco", "serviceId", "name", "runStatus", "New"),
}


@dataclass
class FakeConsole:
    """Answers the console actions qfrun uses from dicts; ``faults[action]`` replaces the next answers."""

    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> describe result
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    objects: dict[str, bytes] = field(default_factory=dict)  # BOS: path -> bytes
    puts: list[str] = field(default_factory=list)
    bodies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    page_size: int = 2
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def actions(self) -> list[str]:
        return [action for action, _ in self.bodies]

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method in ("HEAD", "PUT", "GET"):
            return self._object(request)
        self.requests.append(request)
        action = request.url.params.get("Action") or request.url.path.rsplit("/", 1)[-1]
        body = json.loads(request.content or b"{}")
        self.bodies.append((action, body))
        script = self.faults.get(action)
        if script:
            fault = script.pop(0)
            return fault(request)
        return self._answer(action, body)

    def _object(self, request: httpx.Request) -> httpx.Response:
        """BOS's object calls (``/{bucket}/{key}``): kept in ``objects``, ETag the MD5 of the bytes."""
        path = request.url.path
        if request.method == "GET" and path.count("/") == 1:  # ListObjects [BOS]: /{bucket}?prefix=
            prefix = f"{path}/{request.url.params.get('prefix', '')}"
            contents = [
                {"key": key[len(path) + 1 :], "size": len(data), "eTag": hashlib.md5(data).hexdigest()}
                for key, data in sorted(self.objects.items())
                if key.startswith(prefix)
            ]
            return httpx.Response(200, json={"name": path[1:], "contents": contents, "isTruncated": False})
        if request.method == "PUT":
            self.objects[path] = request.content
            self.puts.append(path)
            return httpx.Response(200, headers={"ETag": f'"{hashlib.md5(request.content).hexdigest()}"'})
        if path not in self.objects:
            return httpx.Response(404, json={"code": "NoSuchKey", "message": "no such key", "requestId": "r"})
        data = self.objects[path]
        headers = {"ETag": f'"{hashlib.md5(data).hexdigest()}"', "Content-Length": str(len(data))}
        return httpx.Response(200, headers=headers, content=b"" if request.method == "HEAD" else data)

    def _ok(self, result: Any) -> httpx.Response:
        return httpx.Response(200, json={"requestId": f"req-{next(self._ids)}", "result": result})

    def _missing(self) -> httpx.Response:
        return httpx.Response(
            404, json={"requestId": "req-404", "code": "ResourceNotFound", "message": "no such id"}
        )

    def _answer(self, action: str, body: dict[str, Any]) -> httpx.Response:
        if action in SERVICE_ACTIONS:
            return SERVICE_ACTIONS[action](self, body)
        if action in CREATE_ACTIONS:
            prefix, id_field, name_field, status_field, word = CREATE_ACTIONS[action]
            task_id = f"{prefix}-{next(self._ids)}"
            self.tasks[task_id] = {id_field: task_id, name_field: body[name_field], status_field: word}
            if prefix in ("ame", "amva"):
                return self._ok(task_id)  # the id is the result [E2][C2]
            return self._ok({"taskId": task_id} if prefix == "infer" else {id_field: task_id})
        if action in LIST_ACTIONS:
            prefix, list_field, name_field = LIST_ACTIONS[action]
            items = [
                t
                for task_id, t in self.tasks.items()
                if task_id.startswith(prefix + "-")
                and (action != "DescribeEvalTasks" or body.get("keyFilter", "") in t.get(name_field, ""))
            ]
            start = int(body.get("marker") or 0)
            page = items[start : start + self.page_size]
            more = start + self.page_size < len(items)
            info: dict[str, Any] = {
                "marker": body.get("marker", ""),
                "maxKeys": self.page_size,
                "isTruncated": more,
            }
            if more:
                info["nextMarker"] = str(start + self.page_size)
            return self._ok({list_field: page, "pageInfo": info})
        if action.startswith("Describe") and action != "DescribeEvalTaskReport":
            key = next(iter(body.values()), "")
            table = {"DescribeModel": self.models, "DescribeDatasetVersion": self.datasets}.get(
                action, self.tasks
            )
            return self._ok(table[key]) if key in table else self._missing()
        if action == "DescribeEvalTaskReport":
            return self._ok(self.reports[body["taskId"]])
        if action in ("ImportLocalModel",):
            return self._ok(next(iter(self.models.values())))
        if action in ("ImportLocalDataset",):
            return self._ok(next(iter(self.datasets.values())))
        if action == "ExportDatasetVersion":
            return self._ok(
                {"versionId": body["versionId"], "entityCount": 1, "content": '{"prompt": "p"}\n'}
            )
        if action == "StopBatchInferenceTask":
            return self._ok(True)  # [B7]
        if action in ("CancelModelCompTask", "DeleteModelCompTask"):
            return httpx.Response(200, json={"requestId": f"req-{next(self._ids)}"})  # no result [C4]
        if action.startswith(("Stop", "Release")):
            return self._ok({})
        if "chat" in action or action.startswith("qa"):
            return httpx.Response(
                200,
                json={"id": "as-1", "result": "5", "usage": {"prompt_tokens": 4, "completion_tokens": 1}},
            )
        return httpx.Response(
            400, json={"requestId": "r", "code": "InvalidParameter", "message": "unknown action"}
        )


def _create_service(fake: FakeConsole, body: dict[str, Any]) -> httpx.Response:
    """CreateService as [S1] and the SDK fixture answer it: the service id and its compute instance."""
    number = next(fake._ids)
    service_id, instance_id = f"svco-{number}", f"unit-{number}"
    fake.tasks[service_id] = {
        "serviceId": service_id,
        "name": body["name"],
        "description": body.get("description", ""),
        "runStatus": "Deploying",
        "url": f"https://aip.test/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/{body['urlSuffix']}",
        "resourceConfig": dict(body.get("resourceConfig") or {}),
    }
    return fake._ok({"serviceId": service_id, "instanceId": instance_id})


def _list_services(fake: FakeConsole, body: dict[str, Any]) -> httpx.Response:
    """DescribeServices: every service (``name`` filters fuzzily), paged through ``result.pageInfo``."""
    items = [
        t for key, t in fake.tasks.items() if key.startswith("svco-") and body.get("name", "") in t["name"]
    ]
    start = int(body.get("marker") or 0)
    page = items[start : start + fake.page_size]
    more = start + fake.page_size < len(items)
    info: dict[str, Any] = {
        "marker": body.get("marker", ""),
        "maxKeys": body.get("maxKeys", 10),
        "isTruncated": more,
    }
    if more:
        info["nextMarker"] = str(start + fake.page_size)
    return fake._ok({"serviceList": page, "pageInfo": info})


def _release(fake: FakeConsole, body: dict[str, Any]) -> httpx.Response:
    return fake._ok(True)


SERVICE_ACTIONS: dict[str, Callable[[FakeConsole, dict[str, Any]], httpx.Response]] = {
    "CreateService": _create_service,
    "DescribeServices": _list_services,
    "ReleaseComputeUnit": _release,
}


def make_settings(kind: str = "local", *, max_retries: int = 3, signing: bool = False) -> PlatformSettings:
    creds = (
        Credentials(access_key=AK, secret_key=SK, bearer_token=TOKEN)
        if signing
        else Credentials(bearer_token=TOKEN)
    )
    base = "http://platform.test" if kind == "local" else "https://qianfan.test"
    return PlatformSettings(
        kind,  # type: ignore[arg-type]
        base,
        base if kind == "local" else "https://aip.test",
        creds,
        rps=1000.0,
        bos=BosSettings(base if kind == "local" else "https://bos.test", "qfrun-bucket"),
        max_retries=max_retries,
        backoff_base_s=0.01,
    )


@dataclass
class Harness:
    fake: FakeConsole
    client: PlatformClient
    sleeps: list[float]


@pytest.fixture
def secrets() -> tuple[str, ...]:
    """The AK, SK and bearer token the harnesses hold: none may appear in an error or a log line."""
    return SECRETS


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from _harness("local")


@pytest.fixture
def qianfan_harness() -> Iterator[Harness]:
    yield from _harness("qianfan", signing=True)


def _harness(kind: str, *, signing: bool = False) -> Iterator[Harness]:
    fake = FakeConsole()
    sleeps: list[float] = []
    client = PlatformClient(
        make_settings(kind, signing=signing),
        transport=httpx.MockTransport(fake.handler),
        bucket=TokenBucket(1e6, 1000),
        sleep=sleeps.append,
    )
    with client:
        yield Harness(fake, client, sleeps)
