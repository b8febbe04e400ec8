"""A state that cannot be written (disk full, file too large, read-only folder) ends ``qfrun run`` with one
sentence naming the file and the cause, no traceback; the files keep the state as last saved, and the next
run resumes from there without creating any task twice."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.state.file import StateFile
from runner.testing.cli import invoke
from runner.testing.fake_platform import ClosingFake
from runner.testing.pipelines import DEMO, write

TASK_STAGES = ("base_infer", "base_eval", "w4", "serve")


def qfrun(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, *args: str
) -> tuple[int, str]:
    """Exit code and stderr of one ``qfrun`` command, with no traceback printed or logged."""
    caplog.clear()
    code, _, err = invoke(capsys, *args)
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"
    return code, err


def last_word(err: str) -> str:
    """The one error line, which ends what the run printed (before it: only the progress of stages)."""
    lines = err.strip().splitlines()
    assert [line for line in lines if "error" in line] == lines[-1:], err
    return lines[-1]


def saved(state_file: Path) -> dict[str, Any]:
    """The state as a reader finds it on disk."""
    state = StateFile.load(state_file, "demo")
    return {stage_id: record.to_json() for stage_id, record in state.stages.items()}


class Fault:
    """Makes the ``nth`` call of ``os.<call>`` that touches ``target`` fail with ``code``, once, after
    noting the state on disk as it was just before."""

    def __init__(self, call: str, code: int, target: Path, nth: int, *, torn: bool = False) -> None:
        self.call, self.code, self.target, self.nth, self.torn = call, code, target, nth, torn
        self.seen = 0
        self.before: dict[str, Any] | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch, state_file: Path) -> None:
        real: Callable[..., Any] = getattr(os, self.call)

        def faulty(*args: Any) -> Any:
            if self.before is None and self._touches(args):
                self.seen += 1
                if self.seen == self.nth:
                    self.before = saved(state_file)
                    if self.torn:  # half the line reaches the disk before it fills up
                        real(args[0], bytes(args[1])[: len(args[1]) // 2])
                    raise OSError(self.code, os.strerror(self.code))
            return real(*args)

        monkeypatch.setattr(os, self.call, faulty)

    def _touches(self, args: tuple[Any, ...]) -> bool:
        if self.call == "replace":
            return Path(args[1]) == self.target
        try:
            return os.path.samestat(os.fstat(args[0]), os.stat(self.target))
        except OSError:
            return False


@pytest.mark.parametrize(
    ("call", "code", "file", "nth", "torn"),
    [
        ("write", errno.ENOSPC, ".journal", 3, True),  # a transition mid-run, half written
        ("write", errno.EFBIG, ".journal", 1, False),
        ("fsync", errno.ENOSPC, ".journal", 2, False),
        ("replace", errno.EROFS, ".json", 1, False),  # the run's first write: nothing starts
        ("replace", errno.ENOSPC, ".json", 2, False),  # folding the journal in at the end
    ],
)
def test_a_state_write_that_fails_stops_the_run_in_one_sentence_and_the_next_run_resumes(
    tmp_path: Path,
    platform: ClosingFake,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    call: str,
    code: int,
    file: str,
    nth: int,
    torn: bool,
) -> None:
    path = write(tmp_path)
    state_file = tmp_path / ".qfrun" / "demo.state.json"
    target = state_file if file == ".json" else tmp_path / ".qfrun" / "demo.state.journal"
    fault = Fault(call, code, target, nth, torn=torn)
    with monkeypatch.context() as patch:
        fault.install(patch, state_file)
        exit_code, err = qfrun(capsys, caplog, "run", str(path))
    assert fault.before is not None, "the fault was never reached"
    assert exit_code == 4
    line = last_word(err)
    assert line.startswith(f"error: The state {'journal' if file == '.journal' else 'file'} {target} ")
    assert f"cannot be written: {os.strerror(code)}" in line
    if call == "fsync":
        # Group commit: other stages' lines may be written while the failing fsync runs (never after it
        # failed). The state is still a readable prefix of the run: the same stages and attempts, each at or
        # past where it was.
        after = saved(state_file)
        assert set(fault.before) <= set(after)
        assert all(
            (after[s]["fingerprint"], after[s]["attempt"]) == (was["fingerprint"], was["attempt"])
            for s, was in fault.before.items()
        )
    else:
        assert saved(state_file) == fault.before  # what was saved stays as it was, torn tail or not

    exit_code, err = qfrun(capsys, caplog, "run", str(path))
    assert exit_code == 0, err
    assert set(saved(state_file)) == {"base", *TASK_STAGES}
    assert all(record["status"] == "succeeded" for record in saved(state_file).values())
    assert all(len(platform.created_for(stage)) == 1 for stage in TASK_STAGES), platform.created


def test_a_read_only_state_folder_stops_the_run_in_one_sentence_and_a_writable_one_resumes(
    tmp_path: Path,
    platform: ClosingFake,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = write(tmp_path)
    folder = tmp_path / ".qfrun"
    assert qfrun(capsys, caplog, "run", str(path))[0] == 0
    write(tmp_path, DEMO.replace("weight: W4A16C16", "weight: W8A16C16"))
    before = saved(folder / "demo.state.json")
    folder.chmod(0o500)
    try:
        probe = folder / "probe"
        try:
            probe.touch()
        except PermissionError:
            pass
        else:  # root (os.geteuid() == 0) writes through the mode bits: there is no read-only folder to test
            probe.unlink()
            pytest.skip(f"chmod 0500 does not stop this user (euid {os.geteuid()}) writing")
        exit_code, err = qfrun(capsys, caplog, "run", str(path))
    finally:
        folder.chmod(0o700)
    assert exit_code == 4
    line = last_word(err)
    assert str(folder) in line
    assert "cannot be written: Permission denied." in line
    assert saved(folder / "demo.state.json") == before
    exit_code, err = qfrun(capsys, caplog, "run", str(path))
    assert exit_code == 0, err
    assert len(platform.created_for("w4")) == 2  # the changed weight, once
    assert json.loads(json.dumps(saved(folder / "demo.state.json")))["w4"]["status"] == "succeeded"
