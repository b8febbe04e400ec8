"""What every task kind's job shares (runner.local.jobspec), on a real store in a real home: the ids a task
names resolve to files or fail with the task's reason, a built model is registered once per content (the
content hash runner.content_hash makes, the same as an import's), and a file becomes a dataset once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runner import content_hash
from runner.local.home import Home
from runner.local.jobspec import (
    JobSetupError,
    built_model,
    dataset_path,
    job_spec,
    read_rows,
    register_built_model,
    store_file_as_dataset,
    version_of,
)
from runner.local.rows import TaskRow
from runner.local.store import Store


def _task(store: Store, task_id: str = "cmp-1") -> TaskRow:
    return store.create_task(task_id=task_id, kind="compression", name=f"qf-{task_id}", params={})


def _model(folder: Path, weights: bytes = b"w" * 16) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_a_job_spec_names_its_entry_workdir_and_progress_file(tmp_path: Path) -> None:
    spec = job_spec("compression", "runner.local.engine.compress:run", tmp_path, {"scheme": "W8A16"})
    assert spec == {
        "kind": "compression",
        "entry": "runner.local.engine.compress:run",
        "params": {"scheme": "W8A16"},
        "workdir": str(tmp_path),
        "progress_file": str(tmp_path / "progress.json"),
    }
    json.dumps(spec)  # the job reads it back as JSON


def test_a_model_version_that_does_not_exist_is_the_tasks_failure_reason(store: Store) -> None:
    task = _task(store)
    with pytest.raises(JobSetupError) as caught:
        version_of(store, "amv-nope", task)
    assert str(caught.value) == "Task cmp-1 names model version 'amv-nope', which does not exist."


def test_a_model_version_whose_files_are_gone_is_refused_naming_where_they_were(
    home: Home, store: Store
) -> None:
    task = _task(store)
    folder = _model(home.models_dir / "amv-1")
    model = store.ensure_model("tiny")
    store.add_version(
        version_id="amv-1",
        model_id=model.id,
        path=str(folder),
        content_hash="x" * 64,
        size_bytes=1,
        source="import",
        details={},
    )
    assert version_of(store, "amv-1", task).path == str(folder)
    shutil.rmtree(folder)
    with pytest.raises(JobSetupError) as caught:
        version_of(store, "amv-1", task)
    assert str(caught.value) == f"The files of model version amv-1 are missing from {folder}."


def test_a_dataset_that_does_not_exist_is_the_tasks_failure_reason(
    home: Home, store: Store, tmp_path: Path
) -> None:
    task = _task(store)
    with pytest.raises(
        JobSetupError, match=r"Task cmp-1 names dataset version 'ds-404', which does not exist\."
    ):
        dataset_path(store, "ds-404", task)
    source = tmp_path / "rows.jsonl"
    source.write_text('{"prompt": "a"}\n')
    stored = store_file_as_dataset(home, store, source, name="rows", source="upload")
    assert dataset_path(store, stored.id, task) == Path(stored.path)


def test_a_job_that_wrote_no_model_says_which_job_and_where(home: Home, store: Store) -> None:
    task = _task(store)
    with pytest.raises(JobSetupError) as caught:
        built_model(home, task, "compression")
    assert str(caught.value) == (
        f"The compression job of task cmp-1 wrote no model to {home.task_dir('cmp-1') / 'model'}."
    )
    _model(home.task_dir("cmp-1") / "model")
    assert built_model(home, task, "compression") == home.task_dir("cmp-1") / "model"


def test_a_built_model_is_registered_under_its_content_hash_and_moved_into_the_models_folder(
    home: Home, store: Store
) -> None:
    model = store.ensure_model("tiny")
    built = _model(home.task_dir("cmp-1") / "model")
    expected = content_hash.of_folder(built)
    version = register_built_model(
        home, store, built, model_id=model.id, source="compression:cmp-1", details={"scheme": "W8A16"}
    )
    assert version.content_hash == expected.digest
    assert version.size_bytes == expected.size
    assert Path(version.path) == home.models_dir / version.id
    assert (Path(version.path) / "config.json").is_file()
    assert not built.exists()
    assert (version.source, version.details, version.version) == ("compression:cmp-1", {"scheme": "W8A16"}, 1)


def test_the_same_built_content_twice_is_the_version_already_there_and_the_copy_is_dropped(
    home: Home, store: Store
) -> None:
    model = store.ensure_model("tiny")
    first = register_built_model(
        home, store, _model(home.task_dir("cmp-1") / "model"), model_id=model.id, source="s", details={}
    )
    again = _model(home.task_dir("cmp-2") / "model")
    (again / "__pycache__").mkdir()  # what an import leaves out does not make it another version
    (again / "__pycache__" / "x.pyc").write_bytes(b"bytecode")
    second = register_built_model(home, store, again, model_id=model.id, source="s", details={})
    assert second.id == first.id
    assert not again.exists()
    other = register_built_model(
        home,
        store,
        _model(home.task_dir("cmp-3") / "model", b"other"),
        model_id=model.id,
        source="s",
        details={},
    )
    assert (other.id != first.id, other.version) == (True, 2)


def test_a_built_model_and_an_imported_folder_of_the_same_files_hash_the_same(
    home: Home, tmp_path: Path
) -> None:
    imported = _model(tmp_path / "to-import")
    built = _model(home.task_dir("cmp-9") / "model")
    assert content_hash.of_folder(imported) == content_hash.of_folder(built)


def test_a_file_is_stored_as_a_dataset_once_per_content(home: Home, store: Store, tmp_path: Path) -> None:
    source = tmp_path / "results.jsonl"
    source.write_text('{"prompt": "1+1=?", "output": "2"}\n\n{"prompt": "2+2=?", "output": "4"}\n')
    first = store_file_as_dataset(home, store, source, name="results", source="batch:infer-1")
    digest = content_hash.of_file(source)
    assert Path(first.path) == home.datasets_dir / f"{digest}.jsonl"
    assert (first.sha256, first.rows, first.size_bytes) == (digest, 2, source.stat().st_size)
    again = store_file_as_dataset(home, store, source, name="results", source="batch:infer-2")
    assert again.id == first.id
    assert sorted(p.name for p in home.datasets_dir.iterdir()) == [f"{digest}.jsonl"]  # no temporary left
    renamed = store_file_as_dataset(home, store, source, name="other", source="batch:infer-3")
    assert renamed.id != first.id
    assert renamed.path == first.path  # one file for one content


def test_rows_are_the_non_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"b": 2}')
    assert read_rows(path) == ['{"a": 1}', '{"b": 2}']
