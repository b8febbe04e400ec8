"""The batch inference kind around its job, on a real store and the platform's own object store: BOS input
becomes engine rows (with a dataset's references), what an interrupted job wrote is kept and counted, a
finished task's rows go back to BOS in Qianfan's output shape, and a task is described as Qianfan does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.local.bos_store import DEFAULT_BUCKET, ObjectStore, parse_bos_uri
from runner.local.home import Home
from runner.local.jobspec import JobSetupError, store_file_as_dataset
from runner.local.kinds import batch_inference as batch
from runner.local.rows import TaskRow
from runner.local.store import Store

INPUT = f"bos:/{DEFAULT_BUCKET}/in/"
OUTPUT = f"bos:/{DEFAULT_BUCKET}/out/"


@pytest.fixture
def objects(home: Home) -> ObjectStore:
    return ObjectStore.for_home(home).ensure()


def _version(home: Home, store: Store) -> None:
    folder = home.models_dir / "amv-1"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    store.add_version(
        version_id="amv-1",
        model_id=store.ensure_model("tiny").id,
        path=str(folder),
        content_hash="a" * 64,
        size_bytes=2,
        source="import",
        details={},
    )


def _task(store: Store, params: dict[str, Any], task_id: str = "infer-1") -> TaskRow:
    return store.create_task(
        task_id=task_id,
        kind="batch_inference",
        name=f"qf-{task_id}",
        params={"model_version_id": "amv-1", **params},
    )


def _lines(*rows: dict[str, Any]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


def test_bos_input_files_become_engine_rows_with_the_references_of_their_dataset(
    home: Home, store: Store, objects: ObjectStore, tmp_path: Path
) -> None:
    _version(home, store)
    objects.put(
        DEFAULT_BUCKET, "in/a.jsonl", _lines({"id": "1", "query": "1+1=?"}, {"id": "2", "query": "2+2=?"})
    )
    objects.put(DEFAULT_BUCKET, "in/b.jsonl", _lines({"id": "1", "query": "3+3=?"}))
    references = tmp_path / "refs.jsonl"
    references.write_text(
        _lines({"prompt": "1+1=?", "response": "2"}, {"prompt": "2+2=?", "response": "4"}).decode()
    )
    dataset = store_file_as_dataset(home, store, references, name="refs", source="upload")
    task = _task(store, {"input_bos_uri": INPUT, "output_bos_uri": OUTPUT, "dataset_id": dataset.id})
    home.task_dir(task.id).mkdir(parents=True)  # as the task runner makes it
    prepared = batch.prepare(home, store, task, home.task_dir(task.id))
    assert prepared.spec is not None
    assert prepared.offset == 0
    assert prepared.extra["total"] == 3
    rows = [
        json.loads(line) for line in Path(prepared.spec["params"]["dataset_path"]).read_text().splitlines()
    ]
    assert [row["prompt"] for row in rows] == ["1+1=?", "2+2=?", "3+3=?"]
    assert [row.get("response") for row in rows] == ["2", "4", None]


def test_bos_input_that_cannot_be_read_is_the_tasks_reason(
    home: Home, store: Store, objects: ObjectStore
) -> None:
    _version(home, store)
    objects.put(DEFAULT_BUCKET, "in/a.jsonl", b"not json\n")
    task = _task(store, {"input_bos_uri": INPUT, "output_bos_uri": OUTPUT})
    with pytest.raises(JobSetupError) as caught:
        batch.prepare(home, store, task, home.task_dir(task.id))
    assert str(caught.value).startswith("Task infer-1 cannot read its input: ")


def test_an_interrupted_jobs_complete_rows_are_kept_and_the_torn_one_dropped(tmp_path: Path) -> None:
    (tmp_path / "output.jsonl").write_text('{"prompt": "a", "output": "1"}\n')
    (tmp_path / "part.jsonl").write_text(
        '{"prompt": "b", "output": "2"}\n{"prompt": "c", "output": "3"}\n{"prompt": "d", "outp'
    )
    assert batch.merge_partial_output(tmp_path) == 3
    assert not (tmp_path / "part.jsonl").exists()
    assert [json.loads(line)["prompt"] for line in (tmp_path / "output.jsonl").read_text().splitlines()] == [
        "a",
        "b",
        "c",
    ]
    (tmp_path / "part.jsonl").write_text('{"prompt": "e"}\nnot json\n{"prompt": "f"}\n')
    assert batch.merge_partial_output(tmp_path) == 4  # up to the first line that is not a row
    assert batch.merge_partial_output(tmp_path / "nothing-here") == 0


def test_a_task_whose_rows_were_all_written_needs_no_job(home: Home, store: Store, tmp_path: Path) -> None:
    _version(home, store)
    source = tmp_path / "qa.jsonl"
    source.write_text('{"prompt": "1+1=?"}\n{"prompt": "2+2=?"}\n')
    dataset = store_file_as_dataset(home, store, source, name="qa", source="upload")
    task = _task(store, {"dataset_id": dataset.id})
    workdir = home.task_dir(task.id)
    workdir.mkdir(parents=True)
    (workdir / "part.jsonl").write_text(
        '{"prompt": "1+1=?", "output": "2"}\n{"prompt": "2+2=?", "output": "4"}\n'
    )
    prepared = batch.prepare(home, store, task, workdir)
    assert (prepared.spec, prepared.offset, prepared.extra["total"]) == (None, 2, 2)


def test_a_finished_task_writes_qianfans_output_files_and_a_result_dataset(
    home: Home, store: Store, objects: ObjectStore
) -> None:
    _version(home, store)
    objects.put(
        DEFAULT_BUCKET, "in/a.jsonl", _lines({"id": "q1", "query": "1+1=?"}, {"id": "q2", "query": "2+2=?"})
    )
    task = _task(store, {"input_bos_uri": INPUT, "output_bos_uri": OUTPUT})
    workdir = home.task_dir(task.id)
    workdir.mkdir(parents=True)
    prepared = batch.prepare(home, store, task, workdir)
    (workdir / "part.jsonl").write_text(
        _lines({"prompt": "1+1=?", "output": "2"}, {"prompt": "2+2=?", "output": "4"}).decode()
    )
    result = batch.finish(home, store, task, prepared, {})
    assert result["rows"] == 2
    written = objects.files_in(parse_bos_uri(f"{OUTPUT}{result['output_dir']}/"))
    assert [info.key.rsplit("/", 1)[-1] for info in written] == ["a.jsonl"]
    lines = [json.loads(line) for line in objects.read(DEFAULT_BUCKET, written[0].key).decode().splitlines()]
    assert [(line["id"], line["query"]) for line in lines] == [("q1", "1+1=?"), ("q2", "2+2=?")]
    assert [line["output"]["result"] for line in lines] == ["2", "4"]
    dataset = store.dataset(result["result_dataset_id"])
    assert dataset is not None
    rows = [json.loads(line) for line in Path(dataset.path).read_text().splitlines()]
    assert [(row["prediction"], row["model_version_id"]) for row in rows] == [("2", "amv-1"), ("4", "amv-1")]


def test_a_job_that_wrote_fewer_rows_than_its_input_fails_the_task(
    home: Home, store: Store, tmp_path: Path
) -> None:
    _version(home, store)
    source = tmp_path / "qa.jsonl"
    source.write_text('{"prompt": "1+1=?"}\n{"prompt": "2+2=?"}\n')
    dataset = store_file_as_dataset(home, store, source, name="qa", source="upload")
    task = _task(store, {"dataset_id": dataset.id})
    workdir = home.task_dir(task.id)
    workdir.mkdir(parents=True)
    prepared = batch.prepare(home, store, task, workdir)
    (workdir / "part.jsonl").write_text('{"prompt": "1+1=?", "output": "2"}\n')
    with pytest.raises(JobSetupError) as caught:
        batch.finish(home, store, task, prepared, {})
    assert str(caught.value) == "The batch inference job of task infer-1 wrote 1 rows for 2 input rows."


@pytest.mark.parametrize(
    ("status", "message", "fields"),
    [
        (
            "failed",
            "the job ran out of memory",
            {"errorCode": 500, "errorReason": "the job ran out of memory"},
        ),
        ("stopped", "The task was stopped on request.", {"errorReason": "The task was stopped on request."}),
        ("succeeded", "", {}),
    ],
)
def test_a_finished_task_is_described_with_its_reason_and_finish_time(
    store: Store, status: str, message: str, fields: dict[str, Any]
) -> None:
    task = _task(store, {"dataset_id": "ds-1"})
    store.update_task(task.id, status=status, message=message, result={"output_dir": "abc"})
    described = batch._describe_batch(store.task(task.id))  # type: ignore[arg-type]
    for key, value in fields.items():
        assert described[key] == value
    assert ("errorCode" in described) is (status == "failed")
    assert "finishTime" in described
    assert described["outputDir"] == "abc"
    assert described["runStatus"] in batch.KIND.api.status_words


def test_a_running_task_has_no_finish_time_yet(store: Store) -> None:
    task = _task(store, {"dataset_id": "ds-1"})
    described = batch._describe_batch(task)
    assert "finishTime" not in described
    assert "errorReason" not in described
    assert (described["progress"], described["totalCount"]) == (0, 0)
