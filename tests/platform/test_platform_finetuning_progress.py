"""A fine-tuning task on the real local platform over HTTP shows its loss while it runs: the trainer's latest
training and validation loss come back in DescribeFineTuningTask (``runMetrics``, a local field) and the
client puts them on the task's ``TaskInfo.live``, next to the steps done, before the task is done."""

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
from runner.platform.protocol import Dataset, TaskInfo, TaskRequest, TaskStatus
from runner.platform.settings import settings_from_pipeline
from runner.platform.wire.finetuning import FINETUNING
from runner.testing.serving import serve_app

ROOT = Path(__file__).resolve().parents[2]
ROWS = (ROOT / "data" / "subtraction" / "train.jsonl").read_text(encoding="utf-8").splitlines(True)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[PlatformClient]:
    token = secrets.token_hex(16)
    with serve_app(create_app(Home(tmp_path / "home"), token)) as url:
        settings = settings_from_pipeline("local", environ={"QFRUN_LOCAL_TOKEN": token}, local_base_url=url)
        with PlatformClient(settings) as platform:
            yield platform


def _dataset(client: PlatformClient, folder: Path, name: str, rows: list[str]) -> Dataset:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(rows), encoding="utf-8")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return client.ensure_dataset(name=name, path=str(path), sha256=digest)


def test_a_running_fine_tuning_task_reports_its_latest_training_and_validation_loss(
    client: PlatformClient, tmp_path: Path
) -> None:
    base = client.import_model(name="tiny-adder", path=str(ROOT / "models" / "tiny-adder"))
    train = _dataset(client, tmp_path, "train", ROWS[:8])
    check = _dataset(client, tmp_path, "check", ROWS[8:12])
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
