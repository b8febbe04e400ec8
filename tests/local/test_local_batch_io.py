"""Batch inference's BOS files: the input Qianfan reads [B2] and the output it writes [B8]."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.local import batch_io
from runner.local.bos_store import ObjectStore

BUCKET = "qfrun-local"


@pytest.fixture
def objects(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "bos").ensure()  # with the default bucket, as a platform starts


def put(objects: ObjectStore, key: str, text: str) -> None:
    objects.put(BUCKET, key, text.encode())


def test_input_is_every_file_directly_in_the_folder_in_key_order(objects: ObjectStore) -> None:
    put(objects, "in/b.jsonl", '{"id": "1", "query": "2+2=?"}\n')
    put(objects, "in/a.jsonl", '{"id": 7, "query": "1+1=?"}\n\n{"id": "x", "query": "3+3=?"}\n')
    put(objects, "in/notes.md", "not input")
    put(objects, "in/deeper/c.jsonl", '{"id": "1", "query": "never read"}\n')
    files = batch_io.read_input(objects, f"bos:/{BUCKET}/in/")
    assert [(f.name, f.lines) for f in files] == [
        ("a.jsonl", (("7", "1+1=?"), ("x", "3+3=?"))),
        ("b.jsonl", (("1", "2+2=?"),)),
    ]
    references = [
        {"prompt": "1+1=?", "response": "2"},
        {"prompt": "3+3=?"},
        {"prompt": "2+2=?", "response": "4"},
    ]
    assert batch_io.engine_rows(files, references) == [
        {"prompt": "1+1=?", "response": "2"},
        {"prompt": "3+3=?"},
        {"prompt": "2+2=?", "response": "4"},
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"query": "q"}\n', r"line 1 needs an 'id'"),
        ('{"id": "1"}\n', r"line 1 needs a 'query'"),
        ('{"id": "1", "query": "q"}\n{"id": "1", "query": "r"}\n', r"line 2 repeats the id '1'"),
        ("[1, 2]\n", r"line 1 is not a JSON object"),
        ('{"id": true, "query": "q"}\n', r"line 1 needs an 'id'"),
    ],
)
def test_a_bad_input_line_is_named_by_file_and_line(objects: ObjectStore, text: str, message: str) -> None:
    put(objects, "in/x.jsonl", text)
    with pytest.raises(batch_io.BatchInputError, match=rf"bos:/{BUCKET}/in/x\.jsonl {message}"):
        batch_io.read_input(objects, f"bos:/{BUCKET}/in/")


def test_an_empty_folder_and_a_bad_location_are_refused(objects: ObjectStore) -> None:
    with pytest.raises(batch_io.BatchInputError, match=r"holds no \.jsonl or \.txt file"):
        batch_io.read_input(objects, f"bos:/{BUCKET}/nothing/")
    with pytest.raises(batch_io.BatchInputError, match=r"inputBosUri: .*not a BOS location"):
        batch_io.read_input(objects, "s3://bucket/in/")


def test_output_is_one_file_per_input_file_in_a_fresh_task_folder(objects: ObjectStore) -> None:
    put(objects, "in/a.jsonl", '{"id": "1", "query": "1+1=?"}\n{"id": "2", "query": "2+2=?"}\n')
    files = batch_io.read_input(objects, f"bos:/{BUCKET}/in/")
    results = [{"prompt": "1+1=?", "output": " 2"}, {"prompt": "2+2=?", "output": " 4"}]
    folder = batch_io.write_output(objects, f"bos:/{BUCKET}/out/", files, results)
    task_dir = folder.folder[len("out/") : -1]
    assert len(task_dir) == 24  # the system's random sub-directory [B2]
    lines = [
        json.loads(line) for line in objects.read(BUCKET, folder.folder + "a.jsonl").decode().splitlines()
    ]
    assert [(line["id"], line["query"], line["output"]["result"]) for line in lines] == [
        ("1", "1+1=?", " 2"),
        ("2", "2+2=?", " 4"),
    ]
    shape = {
        "id",
        "object",
        "created",
        "result",
        "is_truncated",
        "need_clear_history",
        "finish_reason",
        "usage",
    }
    assert set(lines[0]["output"]) == shape  # [B8]'s output line
    assert lines[0]["output"]["object"] == "chat.completion"


def test_input_over_the_file_or_byte_limit_or_not_utf8_is_refused(
    objects: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(objects, "many/a.jsonl", '{"id": "1", "query": "1+1=?"}\n')
    put(objects, "many/b.jsonl", '{"id": "1", "query": "2+2=?"}\n')
    monkeypatch.setattr(batch_io, "MAX_FILES", 1)
    with pytest.raises(batch_io.BatchInputError, match=r"holds 2 files; the limit is 1\."):
        batch_io.read_input(objects, f"bos:/{BUCKET}/many/")
    monkeypatch.setattr(batch_io, "MAX_FILES", 10)
    monkeypatch.setattr(batch_io, "MAX_INPUT_BYTES", 40)
    with pytest.raises(batch_io.BatchInputError, match=r"holds 60 bytes; the limit is 40\."):
        batch_io.read_input(objects, f"bos:/{BUCKET}/many/")
    objects.put(BUCKET, "latin/x.txt", '{"id": "1", "query": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(batch_io.BatchInputError, match=rf"bos:/{BUCKET}/latin/x\.txt is not UTF-8 text\."):
        batch_io.read_input(objects, f"bos:/{BUCKET}/latin/")
    with pytest.raises(batch_io.BatchInputError, match=r"inputBosUri bos:/no-such-bucket/in/: "):
        batch_io.read_input(objects, "bos:/no-such-bucket/in/")
