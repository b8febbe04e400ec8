"""The client's fine-tuning calls against the real local platform over HTTP: the job is found by the task's
name before it is created again, the task is found in its job, and publishing (CreateCustomModel, sourceType
Train) and the model set it goes into are made once, whoever asks twice; a running task shows its latest
training and validation loss (``runMetrics``, a local field) on ``TaskInfo.live`` before it is done."""

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
from runner.platform.protocol import Dataset, TaskInfo, TaskRef, TaskRequest, TaskStatus
from runner.platform.settings import settings_from_pipeline
from runner.platform.wire.finetuning import FINETUNING
from runner.testing.serving import serve_app

ROOT = Path(__file__).resolve().parents[2]
ROWS = ROOT / "data" / "subtraction" / "train.jsonl"
ROW_LINES = ROWS.read_text(encoding="utf-8").splitlines(True)


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


def _dataset(client: PlatformClient, folder: Path, name: str, rows: list[str]) -> Dataset:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(rows), encoding="utf-8")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return client.ensure_dataset(name=name, path=str(path), sha256=digest)


def test_a_running_fine_tuning_task_reports_its_latest_training_and_validation_loss(
    client: PlatformClient, tmp_path: Path
) -> None:
    base = client.import_model(name="tiny-adder", path=str(ROOT / "models" / "tiny-adder"))
    train = _dataset(client, tmp_path, "train", ROW_LINES[:8])
    check = _dataset(client, tmp_path, "check", ROW_LINES[8:12])
    request = TaskRequest(
        FINETUNING,
        "qf-tuned-live012345",
        {
            "model_version_id": base.version_id,
            "method": "LoRA",
            # far more steps than the test waits for: it is stopped once it has shown a loss while running
            "hyper_parameters": {"maxSteps": 100000, "batchSize": 4, "loggingSteps": 1, "saveStep": 100000},
            "dataset_id": train.dataset_id,
            "validation_dataset_id": check.dataset_id,
        },
    )
    ref = client.create_task(
        TaskRequest(FINETUNING, request.name, {**request.params, **client.prepare_task(request)})
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            info: TaskInfo = client.describe_task(ref)
            assert info.status in (TaskStatus.PENDING, TaskStatus.RUNNING), info
            if {"loss", "eval_loss"} <= set(info.live) and info.rows_total:  # (the worker copies steps 4x/s)
                break
            assert time.monotonic() < deadline, info
            time.sleep(0.1)
        assert info.status is TaskStatus.RUNNING
        assert info.live["loss"] > 0
        assert info.live["eval_loss"] > 0
        assert info.rows_total == 100000
        assert info.rows_done is not None
        assert info.rows_done >= 1
        assert info.result == {}  # nothing final yet: the loss comes while it runs, not only once done
    finally:
        client.cancel_task(ref)  # StopFineTuningTask [F4]
    deadline = time.monotonic() + 60
    while not (stopped := client.describe_task(ref)).status.terminal:
        assert time.monotonic() < deadline, stopped
        time.sleep(0.1)
    assert stopped.status is TaskStatus.STOPPED
