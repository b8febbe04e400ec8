"""runner.atomic: a reader sees the old file or the new one, never a part, and no temporary file stays."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runner.atomic import replace_file, write_json


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    replace_file(path, b"old")

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        replace_file(path, b"new", sync=True)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_an_exclusive_write_never_replaces_a_file_already_there(tmp_path: Path) -> None:
    sheet = tmp_path / "review.csv"
    assert replace_file(sheet, b"first", exclusive=True) is True
    assert replace_file(sheet, b"second", exclusive=True) is False
    assert sheet.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["review.csv"]


def test_json_is_written_as_utf8_with_its_folder_made(tmp_path: Path) -> None:
    path = tmp_path / "tasks" / "t1" / "result.json"
    write_json(path, {"answer": "五"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"answer": "五"}
