"""Contract tests: the real client against the real local platform app, served by uvicorn on 127.0.0.1.

The same client talks to Qianfan, so these tests keep docs/platform-api.md, the server and the client from
drifting apart. Models here are stand-in folders (config.json plus a .safetensors file): the API accepts
them, and the task runner's job fails on them later, which is all the task-level contract needs.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from runner.errors import PlatformAuthError, PlatformNotFound, PlatformStatusError
from runner.local.app import create_app
from runner.local.home import Home
from runner.platform.client import PlatformClient
from runner.platform.protocol import ChatMessage, TaskInfo, TaskKind, TaskRef, TaskRequest, TaskStatus
from runner.platform.settings import settings_from_pipeline
from runner.testing.serving import serve_app


@dataclass
class Live:
    url: str
    token: str
    client: PlatformClient
    tmp: Path


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    token = secrets.token_hex(16)
    app = create_app(Home(tmp_path / "home"), token)
    with serve_app(app) as url:
        settings = settings_from_pipeline("local", environ={"QFRUN_LOCAL_TOKEN": token}, local_base_url=url)
        with PlatformClient(settings) as client:
            yield Live(url, token, client, tmp_path)


def stand_in_model(folder: Path, seed: str = "a") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    (folder / "model.safetensors").write_bytes(seed.encode() * 64)
    return folder


def dataset_file(tmp: Path, rows: int = 3) -> tuple[Path, str]:
    path = tmp / "qa.jsonl"
    lines = [f'{{"prompt": "Q: {i}+1=? A:", "response": " {i + 1}"}}' for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def wait_terminal(live: Live, ref: TaskRef, timeout_s: float = 120) -> TaskInfo:
    deadline = time.monotonic() + timeout_s
    while True:
        info = live.client.describe_task(ref)
        if info.status.terminal or time.monotonic() > deadline:
            return info
        time.sleep(0.2)


def test_dataset_upload_is_idempotent_and_reads_back(live: Live) -> None:
    path, digest = dataset_file(live.tmp)
    first = live.client.ensure_dataset(name="qa_eval", path=str(path), sha256=digest)
    again = live.client.ensure_dataset(name="qa_eval", path=str(path), sha256=digest)
    assert first == again
    assert (first.name, first.rows, first.sha256) == ("qa_eval", 3, digest)
    assert first.dataset_id.startswith("ds-")
    assert first.batch_input_uri == f"bos:/qfrun-local/qfrun/batch-input/{digest}/"
    assert live.client.describe_dataset(first.dataset_id) == replace(first, batch_input_uri=None)
    assert live.client.export_dataset(first.dataset_id, limit=1).count("\n") == 1


def test_a_wrong_hash_is_refused_with_the_platforms_sentence(live: Live) -> None:
    path, _ = dataset_file(live.tmp)
    with pytest.raises(
        PlatformStatusError, match=r"changed while qfrun read it \(sha256 [0-9a-f]{64}, not 0+\)"
    ):
        live.client.ensure_dataset(name="qa", path=str(path), sha256="0" * 64)


def test_model_import_round_trips_through_describe(live: Live) -> None:
    folder = stand_in_model(live.tmp / "tiny")
    version = live.client.import_model(name="tiny", path=str(folder))
    assert version.version_id.startswith("amv-")
    assert version.model_id.startswith("am-")
    assert version.name == "tiny"
    assert version.source == "import"
    assert (version.size_bytes or 0) > 0
    assert live.client.import_model(name="tiny", path=str(folder)) == version
    assert live.client.describe_model_version(version.version_id) == version


def test_unknown_ids_are_not_found_with_a_request_id(live: Live) -> None:
    with pytest.raises(PlatformNotFound) as caught:
        live.client.describe_model_version("amv-missing")
    assert caught.value.status == 404
    assert caught.value.path == "/v2/model?Action=DescribeModel"
    assert caught.value.request_id
    with pytest.raises(PlatformNotFound):
        live.client.describe_task(TaskRef(TaskKind.EVALUATION, "et-missing", "n"))


def test_a_wrong_token_is_an_auth_error_that_does_not_show_either_token(live: Live) -> None:
    wrong = "wrong-token-" + secrets.token_hex(8)
    settings = settings_from_pipeline("local", environ={"QFRUN_LOCAL_TOKEN": wrong}, local_base_url=live.url)
    with PlatformClient(settings) as client, pytest.raises(PlatformAuthError) as caught:
        client.describe_dataset("dsv-1")
    assert caught.value.status == 401
    for text in (str(caught.value), repr(caught.value)):
        assert wrong not in text
        assert live.token not in text


def test_chat_on_an_unknown_endpoint_is_not_found(live: Live) -> None:
    with pytest.raises(PlatformNotFound) as caught:
        live.client.chat("nobody_here", [ChatMessage("user", "hi")])
    assert caught.value.code == 336005


@pytest.mark.slow
def test_tasks_are_created_once_found_by_name_described_and_cancelled(live: Live) -> None:
    version = live.client.import_model(name="tiny", path=str(stand_in_model(live.tmp / "tiny")))
    path, digest = dataset_file(live.tmp)
    dataset = live.client.ensure_dataset(name="qa", path=str(path), sha256=digest)
    requests = [
        TaskRequest(
            TaskKind.COMPRESSION,
            "contract-compress",
            {"model_version_id": version.version_id, "strategy": "Quantization", "weight": "W8A16C16"},
        ),
        TaskRequest(
            TaskKind.BATCH_INFERENCE,
            "contract-infer",
            {
                "model_version_id": version.version_id,
                "dataset_id": dataset.dataset_id,
                "inference_params": {},
            },
        ),
        TaskRequest(
            TaskKind.EVALUATION,
            "contract-eval",
            {
                "model_version_ids": [version.version_id],
                "dataset_id": dataset.dataset_id,
                "inference_params": {"temperature": 0.0},
                "evaluators": [{"kind": "rule", "accuracy": True, "similarity": True}],
            },
        ),
    ]
    for request in requests:
        assert live.client.find_task(request.kind, request.name) is None
        ref = live.client.create_task(request)
        assert live.client.create_task(request) == ref  # the platform is idempotent by name too
        assert live.client.find_task(request.kind, request.name) == ref
        info = live.client.describe_task(ref)
        assert info.ref == ref
        assert info.status in {TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.FAILED}
    for request in requests[1:]:
        ref = live.client.find_task(request.kind, request.name)
        assert ref is not None
        live.client.cancel_task(ref)
        assert wait_terminal(live, ref).status in {TaskStatus.STOPPED, TaskStatus.FAILED}
    compress = live.client.find_task(TaskKind.COMPRESSION, "contract-compress")
    assert compress is not None
    final = wait_terminal(live, compress)
    assert final.status in {TaskStatus.FAILED, TaskStatus.STOPPED}
    assert final.message  # the platform says why a stand-in model could not be compressed


def test_a_service_is_bought_found_by_its_intent_and_released(live: Live) -> None:
    version = live.client.import_model(name="tiny", path=str(stand_in_model(live.tmp / "tiny")))
    request = TaskRequest(
        TaskKind.SERVICE,
        "qfrun-contract-serve-0123456789ab-1",  # longer than a service name may be: it goes in description
        {
            "model_version_id": version.version_id,
            "name": "contract",
            "url_suffix": "contract",
            "replicas": 1,
            "billing": {"payment": "prepaid", "months": 2},
            "resource_type": "GPU-1-1",
            "region": "bd",
        },
    )
    assert live.client.find_task(TaskKind.SERVICE, request.name) is None
    ref = live.client.create_task(request)
    assert ref.task_id.startswith("svco-")
    assert ref.instance_id.startswith("unit-")
    assert live.client.find_task(TaskKind.SERVICE, request.name) == ref
    info = live.client.describe_task(ref)
    assert info.result["url_suffix"] == "contract"
    assert info.result["url"] == f"{live.url}/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/contract"
    assert (info.result["replicas"], info.result["resource_type"]) == (1, "GPU-1-1")
    assert info.result["expires_at"]  # prepaid: the term ends
    live.client.cancel_task(ref)
    live.client.cancel_task(ref)  # a second release is harmless
    final = wait_terminal(live, ref)
    assert final.status in {TaskStatus.STOPPED, TaskStatus.FAILED}
    with pytest.raises(PlatformNotFound):
        live.client.chat("contract", [ChatMessage("user", "1+1=?")])
