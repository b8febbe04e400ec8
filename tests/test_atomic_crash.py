"""runner.atomic under a crash: a process killed at any point of a write leaves the old file or the new one,
whole; what it leaves behind is a temporary file of the same folder, which the state file's next compaction
removes. The kills are real (SIGKILL in a child process), placed by wrapping the calls the writer makes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runner.atomic import fsync_folder, replace_file, write_json
from runner.errors import StateError
from runner.state.file import StageRecord, StageStatus, StateFile
from runner.state.io import atomic_write

REPO = Path(__file__).resolve().parents[1]

# The child writes NEW over OLD at argv[1] and is killed where argv[2] says (a call the writer makes).
_CHILD = """
import os, signal, sys
from pathlib import Path
import runner.atomic as atomic

path, where, sync, exclusive = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "sync", sys.argv[4] == "x"

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if where == "mid-write":
    real_fdopen = os.fdopen
    class Half:
        def __init__(self, handle): self.handle = handle
        def __enter__(self): return self
        def __exit__(self, *exc): return self.handle.__exit__(*exc)
        def write(self, data):
            self.handle.write(data[: len(data) // 2]); self.handle.flush(); die()
        def __getattr__(self, name): return getattr(self.handle, name)
    os.fdopen = lambda fd, mode: Half(real_fdopen(fd, mode))
elif where == "before-rename":
    os.replace = die
elif where == "after-fsync":
    real_fsync = os.fsync
    def fsync_then_die(fd):
        real_fsync(fd); die()
    os.fsync = fsync_then_die
elif where == "before-unlink":
    os.unlink = die
atomic.replace_file(path, b"NEW" * 100_000, sync=sync, exclusive=exclusive)
print("written", flush=True)
"""


def _write_killed(path: Path, where: str, *, sync: bool = False, exclusive: bool = False) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), where, "sync" if sync else "-", "x" if exclusive else "-"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    return result.returncode


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("sync", [False, True], ids=["no-sync", "sync"])
@pytest.mark.parametrize("where", ["mid-write", "before-rename"])
def test_a_writer_killed_before_its_rename_leaves_the_old_file_whole(
    tmp_path: Path, where: str, sync: bool
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"OLD")
    assert _write_killed(path, where, sync=sync) == -signal.SIGKILL
    assert path.read_bytes() == b"OLD"
    left = _temporaries(tmp_path)
    assert len(left) == 1
    assert left[0].startswith(".state.json.")


def test_a_writer_killed_after_its_data_is_synced_still_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"OLD")
    assert _write_killed(path, "after-fsync", sync=True) == -signal.SIGKILL
    assert path.read_bytes() == b"OLD"
    (temporary,) = _temporaries(tmp_path)
    assert (tmp_path / temporary).read_bytes() == b"NEW" * 100_000  # synced whole, never renamed


def test_an_exclusive_writer_killed_after_its_link_leaves_the_new_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    assert _write_killed(path, "before-unlink", exclusive=True) == -signal.SIGKILL
    assert path.read_bytes() == b"NEW" * 100_000
    assert len(_temporaries(tmp_path)) == 1  # a second name of the same file, harmless


def test_a_writer_that_is_not_killed_leaves_only_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"OLD")
    assert _write_killed(path, "nowhere", sync=True) == 0
    assert path.read_bytes() == b"NEW" * 100_000
    assert _temporaries(tmp_path) == []


def test_the_next_compaction_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    path = tmp_path / "p.state.json"
    state = StateFile.load(path, "p", sync=False)
    state.record("a", StageRecord(StageStatus.SUCCEEDED, "f1"))
    state.compact()
    state.close()
    assert _write_killed(path, "before-rename") == -signal.SIGKILL
    assert _temporaries(tmp_path) != []
    again = StateFile.load(path, "p", sync=False)  # the killed write changed nothing
    assert again.stages["a"].fingerprint == "f1"
    again.record("b", StageRecord(StageStatus.SUCCEEDED, "f2"))
    again.compact()
    again.close()
    assert _temporaries(tmp_path) == []
    assert set(StateFile.load(path, "p").stages) == {"a", "b"}


def test_readers_never_see_a_part_while_writers_replace_the_file(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    write_json(path, {"n": -1, "pad": "x" * 50_000})
    stop = threading.Event()
    seen: list[int] = []
    broken: list[str] = []

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(json.loads(path.read_bytes())["n"])
            except ValueError as error:
                broken.append(str(error))

    def write(start: int) -> None:
        for n in range(start, start + 40):
            write_json(path, {"n": n, "pad": "x" * 50_000})

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(k * 100,)) for k in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    stop.set()
    reader.join()
    assert broken == []
    assert seen
    assert set(seen) <= {-1} | {k * 100 + i for k in range(3) for i in range(40)}
    assert _temporaries(tmp_path) == []


def test_a_synced_write_syncs_the_file_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"OLD")
    order: list[tuple[str, bytes]] = []
    real_fsync = os.fsync

    def watched(fd: int) -> None:
        kind = "folder" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"
        order.append((kind, path.read_bytes()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", watched)
    replace_file(path, b"NEW", sync=True)
    assert order == [("file", b"OLD"), ("folder", b"NEW")]
    order.clear()
    replace_file(path, b"NEWER")
    assert order == []  # without sync, nothing is flushed


def test_a_folder_that_cannot_be_opened_or_synced_is_skipped_and_its_descriptor_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsync_folder(tmp_path / "missing")  # nothing to open: nothing to do
    closed: list[int] = []
    real_close = os.close

    def refuse(fd: int) -> None:
        raise OSError(22, "Invalid argument")

    def close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(os, "fsync", refuse)
    monkeypatch.setattr(os, "close", close)
    fsync_folder(tmp_path)
    assert len(closed) == 1


def test_an_exclusive_write_leaves_no_temporary_whether_or_not_it_wrote(tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    assert replace_file(path, b"first", exclusive=True) is True
    assert replace_file(path, b"second", exclusive=True) is False
    assert path.read_bytes() == b"first"
    assert _temporaries(tmp_path) == []


def test_a_write_into_a_missing_folder_is_an_os_error_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        replace_file(tmp_path / "no" / "state.json", b"x")
    assert list(tmp_path.iterdir()) == []


def test_the_state_writer_names_the_file_and_the_reason_when_it_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object, **kwargs: object) -> bool:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("runner.state.io.replace_file", full)
    with pytest.raises(StateError) as caught:
        atomic_write(tmp_path / "p.state.json", b"{}", what="lock holder note")
    assert str(caught.value) == (
        f"The lock holder note {tmp_path / 'p.state.json'} cannot be written: No space left on device."
    )

    def odd(*args: object, **kwargs: object) -> bool:
        raise OSError("no errno, only a message")

    monkeypatch.setattr("runner.state.io.replace_file", odd)
    with pytest.raises(StateError, match="cannot be written: no errno, only a message"):
        atomic_write(tmp_path / "p.state.json", b"{}")
