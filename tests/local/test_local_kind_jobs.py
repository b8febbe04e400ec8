"""Each task kind prepares and finishes its job against the real store: what the job would trip over is a
sentence before it starts, an interrupted batch keeps only its complete rows, and a compression that yields
the same model twice registers one version."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.local import workers
from runner.local.home import Home
from runner.local.jobspec import JobSetupError, read_rows
from runner.local.kinds import batch_inference, compression, evaluation
from runner.local.rows import SERVING, TaskRow
from runner.local.store import Store

BATCH_INFERENCE = batch_inference.KIND.store_kind
COMPRESSION = compression.KIND.store_kind
EVALUATION = evaluation.KIND.store_kind
PREPARE = {
    BATCH_INFERENCE: batch_inference.prepare,
    COMPRESSION: compression.prepare,
    EVALUATION: evaluation.prepare,
}


@pytest.fixture
def store(platform_home: Home) -> Iterator[Store]:
    platform_home.ensure()
    store = Store(platform_home.db_path)
    yield store
    store.close()


@pytest.fixture
def version(store: Store, tmp_path: Path, fake_model: Callable[[Path], Path]) -> str:
    model = store.ensure_model("m")
    row = store.add_version(
        version_id="amv-1",
        model_id=model.id,
        path=str(fake_model(tmp_path / "model")),
        content_hash="0" * 64,
        size_bytes=64,
        source="import",
        details={},
    )
    return row.id


@pytest.fixture
def dataset(store: Store, tmp_path: Path) -> str:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"{n}+1=?"}) + "\n" for n in range(3)), encoding="utf-8")
    row = store.add_dataset(name="d", path=str(path), sha256="1" * 64, rows=3, size_bytes=1, source="upload")
    return row.id


def _task(store: Store, kind: str, **params: Any) -> TaskRow:
    store.create_task(task_id=f"t-{kind}", kind=kind, name="t", params=params)
    task = store.task(f"t-{kind}")
    assert task is not None
    return task


def _refusal(home: Home, store: Store, task: TaskRow, tmp_path: Path) -> str:
    with pytest.raises(JobSetupError) as caught:
        PREPARE[task.kind](home, store, task, tmp_path / "work")
    return str(caught.value)


def test_an_interrupted_batch_keeps_its_complete_rows_and_drops_the_one_being_written(tmp_path: Path) -> None:
    (tmp_path / "output.jsonl").write_text('{"n": 0}\n', encoding="utf-8")
    (tmp_path / "part.jsonl").write_text('{"n": 1}\n{"n": 2}\n{"n": 3', encoding="utf-8")
    assert batch_inference.merge_partial_output(tmp_path) == 3
    assert not (tmp_path / "part.jsonl").exists()
    assert read_rows(tmp_path / "output.jsonl") == ['{"n": 0}', '{"n": 1}', '{"n": 2}']
    (tmp_path / "part.jsonl").write_text('{"n": 3}\nnot json\n{"n": 5}\n', encoding="utf-8")
    assert batch_inference.merge_partial_output(tmp_path) == 4  # a garbled row ends what can be trusted
    assert batch_inference.merge_partial_output(tmp_path / "nothing-yet") == 0


def test_a_batch_whose_rows_are_all_written_needs_no_job(
    platform_home: Home, store: Store, version: str, dataset: str, tmp_path: Path
) -> None:
    task = _task(store, BATCH_INFERENCE, model_version_id=version, dataset_id=dataset)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "output.jsonl").write_text("".join(json.dumps({"n": n}) + "\n" for n in range(3)))
    prepared = batch_inference.prepare(platform_home, store, task, workdir)
    assert (prepared.spec, prepared.offset, prepared.extra["total"]) == (None, 3, 3)
    (tmp_path / "fresh").mkdir()
    partway = batch_inference.prepare(platform_home, store, task, tmp_path / "fresh")
    assert partway.spec is not None
    assert partway.spec["params"]["batch_size"] == batch_inference.DEFAULT_BATCH_SIZE


def test_a_batch_that_wrote_fewer_rows_than_it_read_fails_with_both_counts(
    platform_home: Home, store: Store, version: str, dataset: str
) -> None:
    task = _task(store, BATCH_INFERENCE, model_version_id=version, dataset_id=dataset)
    workdir = platform_home.task_dir(task.id)
    workdir.mkdir(parents=True)  # as the task runner makes it
    prepared = batch_inference.prepare(platform_home, store, task, workdir)
    (workdir / "part.jsonl").write_text('{"output": "1"}\n', encoding="utf-8")
    with pytest.raises(JobSetupError) as caught:
        batch_inference.finish(platform_home, store, task, prepared, {})
    assert str(caught.value) == f"The batch inference job of task {task.id} wrote 1 rows for 3 input rows."


def test_a_task_naming_what_is_gone_fails_before_its_job_starts(
    platform_home: Home, store: Store, version: str, tmp_path: Path
) -> None:
    missing_data = _task(store, BATCH_INFERENCE, model_version_id=version, dataset_id="ds-gone")
    assert _refusal(platform_home, store, missing_data, tmp_path) == (
        "Task t-batch_inference names dataset version 'ds-gone', which does not exist."
    )
    row = store.version(version)
    assert row is not None
    for path in Path(row.path).iterdir():
        path.unlink()
    Path(row.path).rmdir()
    compression = _task(store, COMPRESSION, model_version_id=version, strategy="Sparsity")
    assert _refusal(platform_home, store, compression, tmp_path) == (
        f"The files of model version {version} are missing from {row.path}."
    )


def test_a_batch_whose_bos_input_cannot_be_read_fails_before_its_job_starts(
    platform_home: Home, store: Store, version: str, tmp_path: Path
) -> None:
    task = _task(
        store,
        BATCH_INFERENCE,
        model_version_id=version,
        input_bos_uri="bos:/no-bucket/in/",
        output_bos_uri="x",
    )
    message = _refusal(platform_home, store, task, tmp_path)
    assert message.startswith("Task t-batch_inference cannot read its input: ")
    assert "no-bucket" in message


def test_a_task_of_a_kind_the_platform_does_not_run_is_refused(
    platform_home: Home, store: Store, tmp_path: Path
) -> None:
    task = _task(store, "finetune")
    with pytest.raises(JobSetupError) as caught:
        workers._kind(task)
    assert str(caught.value) == "Task t-finetune has kind 'finetune', which the local platform does not run."


@pytest.mark.parametrize(
    ("judge", "words"),
    [
        (
            {"kind": "llm_judge", "judge_endpoint": "judge"},
            "names judge endpoint 'judge', which is not deployed.",
        ),
        ({"kind": "llm_judge"}, "names neither a judge version nor endpoint."),
    ],
)
def test_an_evaluation_whose_judge_cannot_answer_fails_before_its_job_starts(
    platform_home: Home,
    store: Store,
    version: str,
    dataset: str,
    tmp_path: Path,
    judge: dict[str, Any],
    words: str,
) -> None:
    task = _task(
        store,
        EVALUATION,
        model_version_ids=[version],
        dataset_id=dataset,
        evaluators=[judge],
        result_dataset_ids={},
    )
    assert words in _refusal(platform_home, store, task, tmp_path)


def test_a_judge_service_still_deploying_is_named_as_such(
    platform_home: Home, store: Store, version: str, dataset: str, tmp_path: Path
) -> None:
    service = store.create_service(
        service_id="svco-j", name="judge", endpoint_suffix="judge", model_version_id=version, params={}
    )
    store.update_service(service.id, status="Deploying")
    judge = {"kind": "llm_judge", "judge_endpoint": "judge"}
    task = _task(
        store,
        EVALUATION,
        model_version_ids=[version],
        dataset_id=dataset,
        evaluators=[judge],
        result_dataset_ids={},
    )
    assert "which is not deploying." in _refusal(platform_home, store, task, tmp_path)
    store.update_service(service.id, status=SERVING, replicas=[{"pid": 1, "url": "http://127.0.0.1:7001"}])
    (tmp_path / "work").mkdir()
    prepared = evaluation.prepare(platform_home, store, task, tmp_path / "work")
    assert prepared.spec is not None
    evaluators = prepared.spec["params"]["evaluators"]
    assert evaluators[0]["judge_url"] == "http://127.0.0.1:7001/v1/chat/completions"


def test_a_compression_that_yields_a_known_model_registers_no_second_version(
    platform_home: Home, store: Store, version: str, tmp_path: Path, fake_model: Callable[[Path], Path]
) -> None:
    outcome = {"scheme": "W8A16", "seconds": 1.5, "note": ""}
    results = []
    for name in ("first", "second"):
        store.create_task(
            task_id=f"amva-{name}",
            kind=COMPRESSION,
            name=name,
            params={"model_version_id": version, "strategy": "Quantization", "weight": "W8A16C16"},
        )
        task = store.task(f"amva-{name}")
        assert task is not None
        prepared = compression.prepare(platform_home, store, task, platform_home.task_dir(task.id))
        fake_model(platform_home.task_dir(task.id) / "model")  # what the job writes: the same bytes twice
        results.append(compression.finish(platform_home, store, task, prepared, outcome))
    assert results[0]["version_id"] == results[1]["version_id"]
    assert results[0]["version_id"] != version
    assert not (platform_home.task_dir("amva-second") / "model").exists()  # the duplicate was removed
    lineage = store.version(results[0]["version_id"]).details["lineage"]  # type: ignore[union-attr]
    assert lineage == {"source_version_id": version, "task_id": "amva-first"}


def test_a_compression_job_that_wrote_no_model_fails_naming_the_folder(
    platform_home: Home, store: Store, version: str
) -> None:
    task = _task(store, COMPRESSION, model_version_id=version, strategy="Sparsity")
    prepared = compression.prepare(platform_home, store, task, platform_home.task_dir(task.id))
    with pytest.raises(JobSetupError) as caught:
        compression.finish(platform_home, store, task, prepared, {})
    built = platform_home.task_dir(task.id) / "model"
    assert str(caught.value) == f"The compression job of task {task.id} wrote no model to {built}."
