"""The SQLite store: versioned schema, idempotent registrations, unique task names, guarded updates."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from runner import content_hash
from runner.local.home import Home
from runner.local.rows import FAILED, PENDING, RUNNING, DuplicateName, StoreError
from runner.local.store import Store


def test_a_store_written_by_a_newer_qfrun_is_refused_with_a_sentence(tmp_path):
    Store(tmp_path / "p.sqlite3").close()
    with sqlite3.connect(tmp_path / "p.sqlite3") as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="written by a newer qfrun"):
        Store(tmp_path / "p.sqlite3")


def test_the_same_content_in_a_model_set_is_one_version_and_numbers_grow(tmp_path):
    store = Store(tmp_path / "p.sqlite3")
    model = store.ensure_model("m")
    assert store.ensure_model("m") == model
    first = store.add_version(
        version_id="amv-1",
        model_id=model.id,
        path="/a",
        content_hash="h1",
        size_bytes=1,
        source="import",
        details={},
    )
    same = store.add_version(
        version_id="amv-2",
        model_id=model.id,
        path="/b",
        content_hash="h1",
        size_bytes=1,
        source="import",
        details={},
    )
    other = store.add_version(
        version_id="amv-3",
        model_id=model.id,
        path="/c",
        content_hash="h2",
        size_bytes=2,
        source="x",
        details={"k": 1},
    )
    assert same.id == first.id == "amv-1"
    assert (first.version, other.version) == (1, 2)
    assert store.version("amv-3").details == {"k": 1}


def test_task_names_are_unique_per_kind_and_updates_can_be_guarded(tmp_path):
    store = Store(tmp_path / "p.sqlite3")
    store.create_task(task_id="infer-1", kind="batch_inference", name="n", params={"a": 1})
    store.create_task(task_id="ame-1", kind="evaluation", name="n", params={})
    with pytest.raises(DuplicateName, match="already exists"):
        store.create_task(task_id="infer-2", kind="batch_inference", name="n", params={})
    assert store.update_task("infer-1", only_if=(PENDING,), status=RUNNING)
    assert not store.update_task("infer-1", only_if=(PENDING,), status=FAILED)
    assert store.task("infer-1").status == RUNNING
    assert [task.id for task in store.tasks(statuses=(PENDING, RUNNING))] == ["infer-1", "ame-1"]
    with pytest.raises(ValueError, match="no updatable column"):
        store.update_task("infer-1", kind="x")


def test_each_thread_writes_through_its_own_connection(tmp_path):
    store = Store(tmp_path / "p.sqlite3")
    errors: list[BaseException] = []

    def create(index: int) -> None:
        try:
            store.create_task(task_id=f"infer-{index}", kind="batch_inference", name=f"t{index}", params={})
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(index,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    assert errors == []
    assert len(Store(tmp_path / "p.sqlite3").tasks()) == 16


def test_a_folder_content_hash_depends_on_names_and_bytes_not_location(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    assert content_hash.of_folder(tmp_path / "a") == content_hash.of_folder(tmp_path / "b")
    (tmp_path / "b" / "config.json").rename(tmp_path / "b" / "other.json")
    assert content_hash.of_folder(tmp_path / "a").digest != content_hash.of_folder(tmp_path / "b").digest
    assert Home(tmp_path).ensure().models_dir.is_dir()
