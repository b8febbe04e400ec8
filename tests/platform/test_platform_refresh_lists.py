"""The list actions a refresh reads, on the real local platform over HTTP: DescribeCustomModelSets and
DescribeServices page as Qianfan pages, DeleteModel and ReleaseComputeUnit are seen by the next list, and the
client asks one paged list per kind, describing only what a list leaves out.

Services are written into the platform's store (a deployment's processes are not what these tests are about);
models are stand-in folders, which the API imports without loading.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.local.app import create_app
from runner.local.home import Home
from runner.local.rows import SERVICE_FAILED, SERVICE_STOPPED, SERVING
from runner.local.store import Store
from runner.platform.client import PlatformClient
from runner.platform.protocol import ServiceState, TaskStatus
from runner.platform.settings import settings_from_pipeline
from runner.testing.serving import serve_app


class Counting(httpx.HTTPTransport):
    """A transport that keeps the ``Action`` of every request the client sends."""

    def __init__(self) -> None:
        super().__init__()
        self.actions: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.actions.append(request.url.params.get("Action", request.url.path))
        return super().handle_request(request)


@dataclass
class Local:
    url: str
    token: str
    client: PlatformClient
    transport: Counting
    store: Store
    tmp: Path

    def call(self, route: str, action: str, body: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.post(f"{self.url}/v2/{route}?Action={action}", json=body, headers=headers, timeout=30)

    def import_model(self, name: str) -> dict[str, Any]:
        folder = self.tmp / name
        folder.mkdir()
        (folder / "config.json").write_text('{"model_type": "llama"}')
        (folder / "model.safetensors").write_bytes(name.encode() * 64)
        answer = self.call("model", "ImportLocalModel", {"name": name, "path": str(folder)})
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()["result"]
        return result

    def service(self, version_id: str, status: str) -> str:
        service_id = f"svco-{secrets.token_hex(6)}"
        params = {"instance_id": f"unit-{service_id}", "description": "qfrun task x"}
        self.store.create_service(
            service_id=service_id,
            name="svc",
            endpoint_suffix=service_id[-8:],
            model_version_id=version_id,
            params=params,
        )
        self.store.update_service(service_id, status=status)
        return service_id


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Local]:
    monkeypatch.setattr("runner.platform.actions.session.LIST_PAGE_SIZE", 2)  # three items take two pages
    token = secrets.token_hex(16)
    home = Home(tmp_path / "home")
    app = create_app(home, token)
    with serve_app(app) as url:
        settings = settings_from_pipeline("local", environ={"QFRUN_LOCAL_TOKEN": token}, local_base_url=url)
        transport = Counting()
        store = Store(home.db_path)
        with PlatformClient(settings, transport=transport) as client:
            yield Local(url, token, client, transport, store, tmp_path)
        store.close()


def test_describe_custom_model_sets_pages_with_page_info_and_lists_each_models_versions(local: Local) -> None:
    versions = [local.import_model(name) for name in ("alpha", "beta", "gamma")]
    first = local.call("model", "DescribeCustomModelSets", {"maxKeys": 2}).json()["result"]
    assert [item["modelSetName"] for item in first["customModelSetList"]] == ["alpha", "beta"]
    assert first["customModelSetList"][0]["modelIds"] == [versions[0]["modelId"]]
    assert first["customModelSetList"][0]["modelNames"] == ["1"]
    assert first["customModelSetList"][0]["modelCount"] == 1
    info = first["pageInfo"]
    assert info["isTruncated"] is True
    assert info["maxKeys"] == 2
    second = local.call("model", "DescribeCustomModelSets", {"marker": info["nextMarker"]}).json()["result"]
    assert [item["modelSetName"] for item in second["customModelSetList"]] == ["gamma"]
    assert second["pageInfo"]["isTruncated"] is False
    assert "nextMarker" not in second["pageInfo"]


def test_delete_model_removes_the_version_and_its_files_and_the_next_list_sees_it(local: Local) -> None:
    version = local.import_model("alpha")
    stored = local.store.version(version["modelId"])
    assert stored is not None
    answer = local.call("model", "DeleteModel", {"modelId": version["modelId"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] is True
    assert not Path(stored.path).exists()
    assert local.call("model", "DescribeModel", {"modelId": version["modelId"]}).status_code == 404
    (item,) = local.call("model", "DescribeCustomModelSets", {}).json()["result"]["customModelSetList"]
    assert (item["modelIds"], item["modelCount"]) == ([], 0)  # the model set stays
    assert local.call("model", "DeleteModel", {"modelId": version["modelId"]}).status_code == 404


def test_a_version_that_a_live_service_serves_is_not_deleted_until_the_service_is_released(
    local: Local,
) -> None:
    version = local.import_model("alpha")["modelId"]
    service = local.service(version, SERVING)
    refused = local.call("model", "DeleteModel", {"modelId": version})
    assert refused.status_code == 409
    assert refused.json()["message"] == (
        f"Model version {version} is in use by service {service}; release or stop that first."
    )
    local.store.update_service(service, status=SERVICE_STOPPED)
    assert local.call("model", "DeleteModel", {"modelId": version}).status_code == 200
    # the released service still names the version it served, as its record on Qianfan would
    described = local.call("service", "DescribeService", {"serviceId": service}).json()["result"]
    assert (described["modelId"], described["runStatus"]) == (version, "Stopped")


def test_the_client_finds_which_versions_exist_with_one_paged_list_and_describes_only_the_missing(
    local: Local,
) -> None:
    ids = [local.import_model(name)["modelId"] for name in ("alpha", "beta", "gamma")]
    assert local.client.list_model_versions(ids) == frozenset(ids)
    assert local.transport.actions == ["DescribeCustomModelSets"] * 2  # 3 models, 2 per page
    local.transport.actions.clear()

    assert local.call("model", "DeleteModel", {"modelId": ids[1]}).status_code == 200
    assert local.client.list_model_versions(ids) == frozenset({ids[0], ids[2]})
    assert local.transport.actions == ["DescribeCustomModelSets"] * 2 + ["DescribeModel"]


def test_the_client_reads_each_services_state_from_one_paged_list(local: Local) -> None:
    version = local.import_model("alpha")["modelId"]
    serving, stopped, released, failed = (local.service(version, SERVING) for _ in range(4))
    local.store.update_service(stopped, status=SERVICE_STOPPED, message="its prepaid term ended")
    local.store.update_service(failed, status=SERVICE_FAILED, message="replica 1 exited")
    answer = local.call(
        "serviceresources", "ReleaseComputeUnit", {"serviceId": released, "instanceId": f"unit-{released}"}
    )
    assert answer.status_code == 200, answer.text
    missing = "svco-000000000000"

    found = local.client.list_services([serving, stopped, released, failed, missing])
    assert found[serving] == ServiceState(serving, TaskStatus.SUCCEEDED)
    assert found[stopped] == ServiceState(stopped, TaskStatus.STOPPED, "its prepaid term ended")
    assert found[failed] == ServiceState(failed, TaskStatus.FAILED, "replica 1 exited")
    assert found[released].status is TaskStatus.STOPPED
    assert missing not in found
    # four services, two per page; the one no page names is described once, and is gone
    assert local.transport.actions == ["DescribeServices"] * 2 + ["DescribeService"]
