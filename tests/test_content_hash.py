"""runner.content_hash: one content hash for the runner and the local platform, and its format version.

A state written before the format was recorded (format 1) is still read; a stage whose digests cannot differ
between the formats stays up to date, one whose can re-runs and says the format is why; the local store's
model versions are hashed again when it is upgraded, so an import of the same folder finds its version.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

import runner
from runner import content_hash
from runner.files import PathRefused
from runner.local.store import SCHEMA_VERSION, Store
from runner.pipeline.spec import load_pipeline
from runner.run import fingerprint
from runner.run.decide import Action
from runner.run.inputs import Inputs, Upstream
from runner.run.plan import make_plan
from runner.state.file import StageRecord, StageStatus, StateFile

PIPELINE = """\
version: 1
name: hashes
datasets:
  qa: {path: ../data/qa.jsonl}
stages:
  m: {type: model, import: ../models/tiny}
  e:
    type: evaluate
    models: [m]
    dataset: qa
    evaluators: [{kind: rule, accuracy: true}]
"""


def _repository(root: Path) -> Path:
    (root / ".git").mkdir(parents=True)
    (root / "pipelines").mkdir()
    (root / "data").mkdir()
    (root / "data" / "qa.jsonl").write_text('{"prompt": "1+1=?", "response": "2"}\n')
    model = root / "models" / "tiny"
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "model.safetensors").write_bytes(b"\x00" * 64)
    (root / "pipelines" / "p.yaml").write_text(PIPELINE)
    return root / "pipelines" / "p.yaml"


def _format_1_folder(folder: Path) -> str:
    """How the state file hashed a folder before the format was recorded: every regular file counted."""
    sha = hashlib.sha256()
    for dirpath, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(dirpath, name)
            relative = path.relative_to(folder).as_posix()
            sha.update(f"{relative}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return sha.hexdigest()


def _format_1_store_tree(folder: Path) -> str:
    """How the local store hashed a model folder before (paths and bytes, three names skipped at the top)."""
    sha = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative.split("/")[0] in {".git", "__pycache__", ".cache"}:
            continue
        sha.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()


def _succeed_everything(pipeline_path: Path, state_path: Path) -> None:
    """Record every stage as succeeded, with the material and fingerprint a run would have written."""
    pipeline = load_pipeline(pipeline_path)
    inputs = Inputs(pipeline, environ={})
    state = StateFile.load(state_path, pipeline.name, sync=False)
    seen: dict[str, Upstream] = {}
    for stage_id in ("m", "e"):
        stage = pipeline.stages[stage_id]
        upstream = {u: seen[u] for u in stage.upstream}
        fields = inputs.resolve(stage, upstream)
        material = inputs.material(stage, fields, upstream)
        digest = fingerprint.digest(material)
        outputs = {"model_version_id": "amv-1"} if stage_id == "m" else {"metrics": {"accuracy": 1.0}}
        last = {
            "fingerprint": digest,
            "outputs": outputs,
            "run_id": "r1",
            "finished_at": "",
            "inputs": material,
        }
        state.record(
            stage_id, StageRecord(StageStatus.SUCCEEDED, digest, "r1", outputs=outputs, last_success=last)
        )
        seen[stage_id] = Upstream(digest, outputs)
    state.compact()
    state.close()


def _downgrade_to_format_1(state_path: Path, model: Path) -> None:
    """Rewrite the state as format 1 wrote it: no format key, the model folder hashed the old way, and the
    fingerprints made from that material (the old fingerprint was the hash of the material as it stood)."""
    snapshot = json.loads(state_path.read_text())
    for stage_id in ("m", "e"):
        record = snapshot["stages"][stage_id]
        material = dict(record["last_success"]["inputs"])
        assert material.pop(content_hash.FORMAT_KEY) == content_hash.FORMAT
        if stage_id == "m":
            material["files"] = {label: _format_1_folder(model) for label in material["files"]}
        old = content_hash.of_json(material)
        record["fingerprint"] = record["last_success"]["fingerprint"] = old
        record["last_success"]["inputs"] = material
    state_path.write_text(json.dumps(snapshot))


def _actions(pipeline_path: Path, state_path: Path) -> dict[str, tuple[Action, tuple[str, ...]]]:
    plan = make_plan(load_pipeline(pipeline_path), StateFile.load(state_path, "hashes"))
    return {stage.stage_id: (stage.action, stage.reasons) for stage in plan.stages}


def test_a_format_1_state_whose_digests_cannot_differ_is_compared_and_stays_up_to_date(
    tmp_path: Path,
) -> None:
    path = _repository(tmp_path / "repo")
    state = tmp_path / "state.json"
    _succeed_everything(path, state)
    _downgrade_to_format_1(state, tmp_path / "repo" / "models" / "tiny")
    record = json.loads(state.read_text())["stages"]["m"]["last_success"]["inputs"]
    assert content_hash.format_of(record) == content_hash.FIRST_FORMAT
    assert _actions(path, state) == {"m": (Action.UP_TO_DATE, ()), "e": (Action.UP_TO_DATE, ())}


def test_a_format_1_state_whose_folder_digest_differs_re_runs_and_names_the_format(tmp_path: Path) -> None:
    path = _repository(tmp_path / "repo")
    model = tmp_path / "repo" / "models" / "tiny"
    (model / "__pycache__").mkdir()
    (model / "__pycache__" / "x.pyc").write_bytes(b"bytecode")  # counted by format 1, not by format 2
    state = tmp_path / "state.json"
    _succeed_everything(path, state)
    _downgrade_to_format_1(state, model)
    actions = _actions(path, state)
    assert actions["m"] == (
        Action.RERUN,
        ("qfrun's fingerprint format changed (content hash 1 -> 2) for model folder ../models/tiny",),
    )
    assert actions["e"][0] is Action.RERUN


def test_a_state_of_the_current_format_names_a_content_change_as_such(tmp_path: Path) -> None:
    path = _repository(tmp_path / "repo")
    state = tmp_path / "state.json"
    _succeed_everything(path, state)
    assert _actions(path, state)["m"] == (Action.UP_TO_DATE, ())
    (tmp_path / "repo" / "models" / "tiny" / "config.json").write_text('{"model_type": "qwen2"}')
    assert _actions(path, state)["m"] == (
        Action.RERUN,
        ("the content of model folder ../models/tiny changed",),
    )


def test_the_fingerprint_leaves_the_format_stamp_out_and_nothing_else() -> None:
    material: dict[str, Any] = {"stage": "m", "files": {"x": "ab"}}
    stamped = {**material, content_hash.FORMAT_KEY: content_hash.FORMAT}
    assert fingerprint.digest(stamped) == fingerprint.digest(material) == content_hash.of_json(material)
    assert fingerprint.digest({**material, "files": {"x": "ac"}}) != fingerprint.digest(material)


@pytest.mark.parametrize(
    ("stamp", "read"), [(None, 1), (1, 1), (2, 2), (7, 7), (True, 1), ("2", 1)], ids=repr
)
def test_a_material_says_its_format_and_a_malformed_stamp_reads_as_the_first(stamp: Any, read: int) -> None:
    material = {} if stamp is None else {content_hash.FORMAT_KEY: stamp}
    assert content_hash.format_of(material) == read


def test_materials_that_read_alike_under_different_fingerprints_blame_the_format() -> None:
    material = {"fields": {"a": 1}, "files": {}, "platform": "local", "type": "model"}
    assert fingerprint.changes(material, dict(material)) == ["qfrun's fingerprint format changed"]


def test_a_store_of_a_schema_this_qfrun_never_wrote_is_still_upgraded(tmp_path: Path) -> None:
    kept = tmp_path / "amv-1"
    kept.mkdir()
    (kept / "config.json").write_text("{}")
    _store_of_schema_3(tmp_path / "p.sqlite3", [("amv-1", kept, "0" * 64)])
    db = sqlite3.connect(tmp_path / "p.sqlite3")
    db.execute("UPDATE schema_version SET version = 0")  # written by hand, or by no released qfrun
    db.commit()
    db.close()
    store = Store(tmp_path / "p.sqlite3")
    try:
        found = store.version("amv-1")
        assert found is not None
        assert found.content_hash == content_hash.of_folder(kept).digest
    finally:
        store.close()


def test_a_newer_format_in_the_state_is_reported_too_never_trusted() -> None:
    old = {"files": {"model folder m": "aa"}, content_hash.FORMAT_KEY: 3}
    new = {"files": {"model folder m": "bb"}, content_hash.FORMAT_KEY: 2}
    assert fingerprint.changes(old, new) == [
        "qfrun's fingerprint format changed (content hash 3 -> 2) for model folder m"
    ]
    # a file that appears or goes is a change of content whatever the formats
    assert fingerprint.changes(old, {**new, "files": {}}) == ["the content of model folder m changed"]


def test_a_folder_hash_leaves_out_what_an_import_does_not_copy_at_any_depth_without_reading_it(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "m"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "w.bin").write_bytes(b"123")
    before = content_hash.of_folder(folder)
    assert before.size == 5
    for ignored in (".git", "__pycache__", ".cache"):
        (folder / "sub" / ignored).mkdir()
        (folder / "sub" / ignored / "x").write_bytes(b"noise")
        (folder / ignored).mkdir()
    os.mkfifo(folder / ".git" / "fifo")  # unread: a FIFO anywhere else is refused (see test_files)
    assert content_hash.of_folder(folder) == before
    (folder / "sub" / "w.bin").write_bytes(b"124")
    assert content_hash.of_folder(folder).digest != before.digest


def test_format_2_hashes_a_plain_folder_as_the_state_file_did_in_format_1(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    (folder / "a" / "b").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "a" / "b" / "w.bin").write_bytes(os.urandom(300))
    (folder / "a" / "z.txt").write_text("z")
    assert content_hash.of_folder(folder).digest == _format_1_folder(folder)
    assert content_hash.of_folder(folder).digest != _format_1_store_tree(folder)


def test_a_file_hash_is_the_sha256_of_its_bytes_in_every_format(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\n')
    expected = hashlib.sha256(b'{"a": 1}\n').hexdigest()
    assert content_hash.of_file(path) == content_hash.of_bytes(path.read_bytes()) == expected
    assert content_hash.of_text('{"a": 1}\n') == expected


def test_a_file_is_hashed_again_once_its_size_or_mtime_changes(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("one")
    first = content_hash.of_file(path)
    path.write_text("three")
    assert content_hash.of_file(path) == content_hash.of_text("three") != first


def test_threads_hashing_the_same_file_agree(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(3 << 20))
    found: list[str] = []
    threads = [threading.Thread(target=lambda: found.append(content_hash.of_file(path))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [hashlib.sha256(path.read_bytes()).hexdigest()] * 4


def _store_of_schema_3(path: Path, versions: list[tuple[str, Path, str]]) -> None:
    """A store as qfrun wrote it at schema 3: the tables of today, model versions hashed by format 1."""
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = 3")
    db.execute("INSERT INTO models VALUES ('am-1', 'tiny', '2026-01-01T00:00:00Z')")
    for number, (version_id, folder, digest) in enumerate(versions, 1):
        db.execute(
            "INSERT INTO model_versions VALUES (?, 'am-1', ?, ?, ?, 1, 'import', '{}', ?)",
            (version_id, number, str(folder), digest, "2026-01-01T00:00:00Z"),
        )
    db.commit()
    db.close()


def test_an_upgraded_store_hashes_its_versions_again_so_the_same_import_finds_its_version(
    tmp_path: Path,
) -> None:
    kept = tmp_path / "amv-1"
    kept.mkdir()
    (kept / "config.json").write_text("{}")
    (kept / "sub" / "__pycache__").mkdir(parents=True)
    (kept / "sub" / "__pycache__" / "x.pyc").write_bytes(b"counted by format 1's store hash")
    gone = tmp_path / "amv-2"  # a version whose copy was deleted by hand keeps its digest
    _store_of_schema_3(
        tmp_path / "p.sqlite3", [("amv-1", kept, _format_1_store_tree(kept)), ("amv-2", gone, "f" * 64)]
    )
    store = Store(tmp_path / "p.sqlite3")
    try:
        found = store.version_by_hash("am-1", content_hash.of_folder(kept).digest)
        assert found is not None
        assert found.id == "amv-1"
        missing = store.version("amv-2")
        assert missing is not None
        assert missing.content_hash == "f" * 64
        assert store._one("SELECT version FROM schema_version", ()) == {"version": SCHEMA_VERSION}
    finally:
        store.close()


def test_an_upgrade_that_would_give_two_versions_one_digest_keeps_the_second_as_it_was(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "amv-1", tmp_path / "amv-2"
    for folder in (first, second):
        (folder / "x" / ".cache").mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    (second / "x" / ".cache" / "blob").write_text("only format 1's store hash told these apart")
    _store_of_schema_3(
        tmp_path / "p.sqlite3",
        [("amv-1", first, _format_1_store_tree(first)), ("amv-2", second, _format_1_store_tree(second))],
    )
    store = Store(tmp_path / "p.sqlite3")
    try:
        rows = {v.id: v.content_hash for v in store.versions("am-1")}
        assert rows == {"amv-1": content_hash.of_folder(first).digest, "amv-2": _format_1_store_tree(second)}
    finally:
        store.close()


def test_what_is_not_a_regular_file_is_refused_not_hashed(tmp_path: Path) -> None:
    with pytest.raises(PathRefused, match="is not a regular file"):
        content_hash.of_file(tmp_path)
    with pytest.raises(PathRefused, match="missing is not a folder"):
        content_hash.of_folder(tmp_path / "missing")


def test_only_the_content_hash_module_calls_sha256_outside_message_signatures() -> None:
    """One content hash: sha256 is called in runner.content_hash, in the bounded reader it drives
    (runner.files), and in the BOS emulation's check of a checksum a client declares with a put; request
    signatures name it only as an HMAC's digest, which is no call."""
    source = Path(runner.__file__).parent
    callers = set()
    for path in source.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "sha256"
            ):
                callers.add(path.relative_to(source).as_posix())
    # (runner.testing.sdk_oracle stands for a user of the SDK, who hashes a dataset as the SDK asks)
    assert callers == {"content_hash.py", "files.py", "local/bos_store.py", "testing/sdk_oracle.py"}


def test_a_folder_uploaded_to_qianfan_and_one_imported_locally_have_one_content_hash(tmp_path: Path) -> None:
    from runner.platform import model_import

    folder = tmp_path / "m"
    (folder / "sub" / "__pycache__").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\x01" * 32)
    (folder / "sub" / "tokenizer.json").write_text("{}")
    (folder / "sub" / "__pycache__" / "x.pyc").write_bytes(b"left out by both")
    (folder / "a" / "b").mkdir(parents=True)  # sub-folders that sort before the top's files by full path
    (folder / "a" / "b" / "w.bin").write_bytes(b"2")
    (folder / "a" / "z.txt").write_text("z")
    uploaded = model_import.read_folder(folder)
    assert uploaded.digest == content_hash.of_folder(folder).digest
    assert {item.relative for item in uploaded.files} == {
        "config.json",
        "model.safetensors",
        "sub/tokenizer.json",
        "a/b/w.bin",
        "a/z.txt",
    }
    shuffled = [(item.relative, item.path) for item in reversed(uploaded.files)]
    assert content_hash.of_files(shuffled) == uploaded.digest  # the order is the format's, not the caller's
    (folder / "sub" / "__pycache__" / "x.pyc").unlink()  # without what format 2 leaves out: format 1's digest
    assert content_hash.of_folder(folder).digest == _format_1_folder(folder)
