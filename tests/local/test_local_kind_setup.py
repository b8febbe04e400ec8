"""What the compression and evaluation kinds make of a stored task before and after its job, on a real store
(no model is loaded): the job spec names the files the task's ids resolve to, a judge named by endpoint
must be serving, and a compressed model is registered once, with its lineage, under the right model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.local.home import Home
from runner.local.jobspec import JobSetupError, Prepared, store_file_as_dataset
from runner.local.kinds import compression, evaluation
from runner.local.rows import SERVING, TaskRow
from runner.local.store import Store


def _version(home: Home, store: Store, version_id: str = "amv-1", model: str = "tiny") -> str:
    folder = home.models_dir / version_id
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    entry = store.ensure_model(model)
    store.add_version(
        version_id=version_id,
        model_id=entry.id,
        path=str(folder),
        content_hash=version_id * 4,
        size_bytes=1000,
        source="import",
        details={},
    )
    return entry.id


def _dataset(home: Home, store: Store, tmp_path: Path, text: str, name: str = "qa") -> str:
    path = tmp_path / f"{name}.jsonl"
    path.write_text(text)
    return str(store_file_as_dataset(home, store, path, name=name, source="upload").id)


def _task(store: Store, kind: str, params: dict[str, Any], task_id: str = "t-1") -> TaskRow:
    return store.create_task(task_id=task_id, kind=kind, name=f"qf-{task_id}", params=params)


# -- compression ---------------------------------------------------------------------------------------


def test_a_compression_spec_names_the_source_folder_a_fresh_output_and_its_calibration(
    home: Home, store: Store, tmp_path: Path
) -> None:
    _version(home, store)
    calib = _dataset(home, store, tmp_path, '{"prompt": "1+1=?"}\n')
    task = _task(
        store, "compression", {"model_version_id": "amv-1", "strategy": "Quantization", "dataset_id": calib}
    )
    workdir = home.task_dir(task.id)
    (workdir / "model").mkdir(parents=True)
    (workdir / "model" / "stale.bin").write_bytes(b"from a killed run")
    prepared = compression.prepare(home, store, task, workdir)
    assert prepared.spec is not None
    params = prepared.spec["params"]
    assert params["model_dir"] == str(home.models_dir / "amv-1")
    assert params["output_dir"] == str(workdir / "model")
    assert not (workdir / "model").exists()  # a half-written model is never registered
    assert params["calib_path"] is not None
    assert Path(params["calib_path"]).read_text() == '{"prompt": "1+1=?"}\n'
    assert params["weight"] is None


def test_a_compression_of_a_missing_version_fails_with_the_tasks_reason(home: Home, store: Store) -> None:
    task = _task(store, "compression", {"model_version_id": "amv-gone", "strategy": "Sparsity"})
    with pytest.raises(JobSetupError, match="names model version 'amv-gone', which does not exist"):
        compression.prepare(home, store, task, home.task_dir(task.id))


def _built(home: Home, task: TaskRow, weights: bytes = b"int4") -> None:
    model = home.task_dir(task.id) / "model"
    model.mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text('{"quantization_config": {}}')
    (model / "model.safetensors").write_bytes(weights)


def test_a_compressed_model_is_a_new_version_of_its_source_model_with_its_lineage(
    home: Home, store: Store
) -> None:
    model_id = _version(home, store)
    task = _task(
        store, "compression", {"model_version_id": "amv-1", "strategy": "Quantization", "weight": "W4A16C16"}
    )
    _built(home, task)
    outcome = {"scheme": "W4A16", "seconds": 1.5, "note": "", "recipe": "gptq"}
    result = compression.finish(home, store, task, Prepared(None), outcome)
    version = store.version(result["version_id"])
    assert version is not None
    assert (result["model_id"], version.model_id, version.version) == (model_id, model_id, 2)
    assert version.details["lineage"] == {"source_version_id": "amv-1", "task_id": task.id}
    assert version.details["source_size_bytes"] == 1000
    assert (version.details["scheme"], version.details["weight"]) == ("W4A16", "W4A16C16")
    assert version.source == f"compression:{task.id}"
    assert result["size_bytes"] == version.size_bytes


def test_a_compression_that_names_a_model_registers_under_that_name(home: Home, store: Store) -> None:
    _version(home, store)
    task = _task(
        store, "compression", {"model_version_id": "amv-1", "strategy": "Sparsity", "name": "tiny-sparse"}
    )
    _built(home, task)
    result = compression.finish(home, store, task, Prepared(None), {"scheme": "2:4"})
    named = store.model_by_name("tiny-sparse")
    assert named is not None
    assert result["model_id"] == named.id


def test_the_same_compressed_content_twice_is_one_version(home: Home, store: Store) -> None:
    _version(home, store)
    first = _task(store, "compression", {"model_version_id": "amv-1", "strategy": "Quantization"}, "t-1")
    second = _task(store, "compression", {"model_version_id": "amv-1", "strategy": "Quantization"}, "t-2")
    _built(home, first)
    _built(home, second)
    one = compression.finish(home, store, first, Prepared(None), {})
    two = compression.finish(home, store, second, Prepared(None), {})
    assert one["version_id"] == two["version_id"]
    assert not (home.task_dir("t-2") / "model").exists()


def test_a_compression_job_that_wrote_no_model_fails_the_task(home: Home, store: Store) -> None:
    _version(home, store)
    task = _task(store, "compression", {"model_version_id": "amv-1", "strategy": "Quantization"})
    with pytest.raises(JobSetupError, match="The compression job of task t-1 wrote no model"):
        compression.finish(home, store, task, Prepared(None), {})


# -- evaluation ------------------------------------------------------------------------------------------


def _judged(store: Store, evaluator: dict[str, Any]) -> TaskRow:
    return _task(store, "evaluation", {"evaluators": [evaluator]}, task_id="ame-1")


def test_a_judge_named_by_version_is_read_from_its_folder(home: Home, store: Store) -> None:
    _version(home, store, "amv-judge", "grader")
    task = _judged(store, {"kind": "llm_judge", "judge_version_id": "amv-judge"})
    resolved = evaluation._evaluator(store, task.params["evaluators"][0], task)
    assert resolved == {"kind": "llm_judge", "judge_model_dir": str(home.models_dir / "amv-judge")}


def test_a_judge_named_by_endpoint_must_be_serving(home: Home, store: Store) -> None:
    _version(home, store)
    task = _judged(store, {"kind": "llm_judge", "judge_endpoint": "grader"})
    with pytest.raises(JobSetupError) as caught:
        evaluation._evaluator(store, task.params["evaluators"][0], task)
    assert str(caught.value) == "Task ame-1 names judge endpoint 'grader', which is not deployed."
    store.create_service(
        service_id="svco-1", name="g", endpoint_suffix="grader", model_version_id="amv-1", params={}
    )
    with pytest.raises(JobSetupError, match="which is not deploying"):
        evaluation._evaluator(store, task.params["evaluators"][0], task)
    store.update_service("svco-1", status=SERVING, replicas=[{"pid": 1, "url": "http://127.0.0.1:5555"}])
    resolved = evaluation._evaluator(store, task.params["evaluators"][0], task)
    assert resolved == {"kind": "llm_judge", "judge_url": "http://127.0.0.1:5555/v1/chat/completions"}


def test_a_judge_naming_neither_version_nor_endpoint_is_refused(store: Store) -> None:
    task = _judged(store, {"kind": "llm_judge"})
    with pytest.raises(JobSetupError, match="names neither a judge version nor endpoint"):
        evaluation._evaluator(store, task.params["evaluators"][0], task)
    rule = {"kind": "rule", "accuracy": True}
    assert evaluation._evaluator(store, rule, task) == rule


def test_a_prompt_template_is_applied_to_every_row_and_the_plain_one_reads_the_dataset_itself(
    home: Home, store: Store, tmp_path: Path
) -> None:
    dataset = _dataset(home, store, tmp_path, '{"prompt": "1+1", "response": "2"}\n{"prompt": "2+2"}\n')
    plain = _task(store, "evaluation", {}, "ame-plain")
    workdir = home.task_dir("ame-x")
    workdir.mkdir(parents=True)
    source = evaluation._templated(store, dataset, plain, workdir)
    assert source == Path(store.dataset(dataset).path)  # type: ignore[union-attr]
    framed = _task(store, "evaluation", {"prompt_template": "Q: {input} A:"}, "ame-framed")
    target = evaluation._templated(store, dataset, framed, workdir)
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["prompt"] for row in rows] == ["Q: 1+1 A:", "Q: 2+2 A:"]
    assert rows[0]["response"] == "2"


def test_earlier_results_are_read_with_their_prediction_as_the_output(
    home: Home, store: Store, tmp_path: Path
) -> None:
    dataset = _dataset(
        home,
        store,
        tmp_path,
        '{"prompt": "1+1", "prediction": "2"}\n{"prompt": "3+3", "output": "6"}\n',
        "res",
    )
    task = _task(store, "evaluation", {}, "ame-r")
    workdir = home.task_dir("ame-r")
    workdir.mkdir(parents=True)
    path = evaluation._engine_rows(store, dataset, task, workdir, "amv-1")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(row["prompt"], row["output"]) for row in rows] == [("1+1", "2"), ("3+3", "6")]
    assert all("prediction" not in row for row in rows)
