"""The client's fine-tuning calls against the real local platform over HTTP: the job is found by the task's
name before it is created again, the task is found in its job, and publishing (CreateCustomModel, sourceType
Train) and the model set it goes into are made once, whoever asks twice."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.local.app import create_app
from runner.local.home import Home
from runner.platform.client import PlatformClient
from runner.platform.protocol import TaskInfo, TaskRef, TaskRequest, TaskStatus
from runner.platform.settings import settings_from_pipeline
from runner.platform.wire.finetuning import FINETUNING
from runner.testing.serving import serve_app

ROOT = Path(__file__).resolve().parents[2]
ROWS = ROOT / "data" / "subtraction" / "train.jsonl"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[PlatformClient]:
    token = secrets.token_hex(16)
    with serve_app(create_app(Home(tmp_path / "home"), token)) as url:
        settings = settings_from_pipeline("local", environ={"QFRUN_LOCAL_TOKEN": token}, local_base_url=url)
        with PlatformClient(settings) as platform:
            yield platform


def _finished(client: PlatformClient, ref: TaskRef) -> TaskInfo:
    deadline = time.monotonic() + 300
    while (info := client.describe_task(ref)).status.terminal is False:
        assert time.monotonic() < deadline, info
        time.sleep(0.2)
    return info


def test_job_task_and_publish_are_each_made_once(client: PlatformClient, tmp_path: Path) -> None:
    base = client.import_model(name="tiny-adder", path=str(ROOT / "models" / "tiny-adder"))
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(ROWS.read_text(encoding="utf-8").splitlines(True)[:4]), encoding="utf-8")
    dataset = client.ensure_dataset(
        name="rows", path=str(rows), sha256=hashlib.sha256(rows.read_bytes()).hexdigest()
    )
    request = TaskRequest(
        FINETUNING,
        "qf-tuned-0123456789",
        {
            "model_version_id": base.version_id,
            "method": "LoRA",
            "hyper_parameters": {"maxSteps": 1, "batchSize": 4},
            "dataset_id": dataset.dataset_id,
        },
    )
    prepared = client.prepare_task(request)
    assert prepared == client.prepare_task(request)  # found by the task's name, not created again
    assert client.find_task(FINETUNING, request.name, prepared) is None  # an empty job
    assert client.find_task(FINETUNING, request.name) is None  # no job recorded: no task was created
    ref = client.create_task(TaskRequest(FINETUNING, request.name, {**request.params, **prepared}))
    assert client.find_task(FINETUNING, request.name, prepared) == ref
    info = _finished(client, ref)
    assert info.result["job_id"] == prepared["job_id"]
    assert (info.rows_done, info.rows_total) == (1, 1)  # steps

    model_set = client.ensure_model_set("qfrun-tuned")
    assert client.ensure_model_set("qfrun-tuned") == model_set != base.model_id
    version = client.publish_trained(ref.task_id, model_set_id=model_set)
    again = client.publish_trained(ref.task_id, model_set_id=model_set)
    assert again.version_id == version.version_id
    assert version.model_id == model_set
    assert version.source == "train"
    assert client.list_model_versions([version.version_id]) == {version.version_id}


def test_a_cancelled_task_is_stopped_with_stop_fine_tuning_task(
    client: PlatformClient, tmp_path: Path
) -> None:
    base = client.import_model(name="tiny-adder", path=str(ROOT / "models" / "tiny-adder"))
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(ROWS.read_text(encoding="utf-8").splitlines(True)[:4]), encoding="utf-8")
    dataset = client.ensure_dataset(
        name="rows", path=str(rows), sha256=hashlib.sha256(rows.read_bytes()).hexdigest()
    )
    request = TaskRequest(
        FINETUNING,
        "qf-long-0123456789",
        {
            "model_version_id": base.version_id,
            "method": "LoRA",
            "hyper_parameters": {"maxSteps": 100000},
            "dataset_id": dataset.dataset_id,
        },
    )
    ref = client.create_task(
        TaskRequest(FINETUNING, request.name, {**request.params, **client.prepare_task(request)})
    )
    client.cancel_task(ref)  # StopFineTuningTask [F4]
    info = _finished(client, ref)
    assert info.status is TaskStatus.STOPPED
