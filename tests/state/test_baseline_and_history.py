"""What ``qfrun diff`` compares against (runner.state.baseline) in a real git repository, and the run
history's refusals: a committed state is read from git without touching the working copy, a ref that is
none of the accepted things names what was tried, and a history that is not qfrun's is never half read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.errors import StateError, UsageError
from runner.state import baseline, history
from runner.state.file import RunRecord, StageRecord, StageStatus, StateFile

GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")
TYPES = {"a": "model", "b": "evaluate"}


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def _run(state: StateFile, run_id: str, fingerprint: str, *, compact: bool = True) -> None:
    state.record_run(RunRecord(run_id, "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "succeeded"))
    state.record("a", StageRecord(StageStatus.SUCCEEDED, fingerprint, run_id, outputs={"v": fingerprint}))
    if compact:
        state.compact()
    history.append(state, TYPES)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    return root


def _state(repo: Path) -> StateFile:
    return StateFile.load(repo / "pipelines" / ".qfrun" / "p.state.json", "p", sync=False)


def _commit_state(repo: Path, message: str) -> None:
    _git(repo, "add", "-f", "pipelines")
    _git(repo, "commit", "-q", "-m", message)


def test_mains_committed_state_is_the_default_baseline_and_the_working_copy_is_untouched(repo: Path) -> None:
    state = _state(repo)
    _run(state, "r1", "f1")
    _commit_state(repo, "state of r1")
    _run(state, "r2", "f2")
    before = state.path.read_bytes()
    label, snapshot = baseline.resolve(state, TYPES, None)
    assert label == "main"
    assert snapshot["run_id"] == "r1"
    assert snapshot["stages"]["a"]["fingerprint"] == "f1"
    assert state.path.read_bytes() == before


def test_a_committed_journal_is_replayed_with_its_snapshot(repo: Path) -> None:
    state = _state(repo)
    _run(state, "r1", "f1")
    state.record("a", StageRecord(StageStatus.SUCCEEDED, "f1-journalled", "r1"))  # only in the journal
    _commit_state(repo, "snapshot and journal")
    found = baseline.at_revision(state, "main")
    assert found is not None
    assert found.stages["a"].fingerprint == "f1-journalled"


def test_without_a_committed_state_the_previous_kept_run_is_the_baseline(repo: Path) -> None:
    state = _state(repo)
    _run(state, "r1", "f1")
    _run(state, "r2", "f2")
    label, snapshot = baseline.resolve(state, TYPES, None)
    assert (label, snapshot["run_id"]) == ("run r1", "r1")


def test_with_nothing_to_compare_the_user_is_told_what_to_do(repo: Path) -> None:
    state = _state(repo)
    _run(state, "r1", "f1")
    with pytest.raises(UsageError) as caught:
        baseline.resolve(state, TYPES, None)
    assert "There is nothing to compare with" in str(caught.value)
    assert "name a REF (a git revision, a state file or a run id)" in str(caught.value)


def test_a_ref_is_read_as_a_kept_run_then_a_state_file_then_a_revision(repo: Path, tmp_path: Path) -> None:
    state = _state(repo)
    _run(state, "r1", "f1")
    _commit_state(repo, "r1")
    tag = _git(repo, "rev-parse", "HEAD")
    _run(state, "r2", "f2")
    assert baseline.resolve(state, TYPES, "r1")[0] == "run r1"
    other = StateFile.load(tmp_path / "elsewhere.state.json", "p", sync=False)
    _run(other, "x9", "fx")
    label, snapshot = baseline.resolve(state, TYPES, str(other.path))
    assert (label, snapshot["stages"]["a"]["fingerprint"]) == (str(other.path), "fx")
    label, snapshot = baseline.resolve(state, TYPES, tag[:12])
    assert (label, snapshot["run_id"]) == (tag[:12], "r1")


def test_a_ref_that_is_nothing_known_names_the_latest_runs(repo: Path) -> None:
    state = _state(repo)
    for number in range(1, 5):
        _run(state, f"r{number}", f"f{number}")
    with pytest.raises(UsageError) as caught:
        baseline.resolve(state, TYPES, "no-such-thing")
    assert str(caught.value) == (
        "'no-such-thing' is neither a run the history keeps (the latest: r2, r3, r4), a state file, nor a "
        "git revision that holds p.state.json."
    )


def test_a_revision_that_looks_like_an_option_is_never_given_to_git(repo: Path) -> None:
    state = _state(repo)
    _run(state, "r1", "f1")
    _commit_state(repo, "r1")
    assert baseline.at_revision(state, "--output=/tmp/x") is None
    assert baseline.at_revision(state, "-p") is None


def test_a_damaged_state_at_a_revision_says_which_revision(repo: Path) -> None:
    state = _state(repo)
    _run(state, "r1", "f1")
    state.path.write_text("{ not a state")
    _commit_state(repo, "damaged")
    with pytest.raises(StateError) as caught:
        baseline.at_revision(state, "main")
    assert str(caught.value).startswith("The state file at main: ")


def test_a_checkout_without_the_state_folder_still_reads_mains_state(repo: Path) -> None:
    state = _state(repo)
    _run(state, "r1", "f1")
    _commit_state(repo, "r1")
    shutil.rmtree(repo / "pipelines")  # a pull request's checkout that never ran the pipeline
    found = baseline.at_revision(StateFile(repo / "pipelines" / ".qfrun" / "p.state.json", "p"), "main")
    assert found is not None
    assert found.stages["a"].fingerprint == "f1"


def test_without_git_a_revision_is_simply_not_there(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _state(repo)
    _run(state, "r1", "f1")
    _commit_state(repo, "r1")
    monkeypatch.setenv("PATH", str(repo / "no-bin-here"))
    assert baseline.at_revision(state, "main") is None


def test_outside_a_repository_a_revision_is_not_there(tmp_path: Path) -> None:
    state = StateFile.load(tmp_path / "p.state.json", "p", sync=False)
    _run(state, "r1", "f1")
    assert baseline.at_revision(state, "main") is None


# -- the history's refusals ------------------------------------------------------------------------------


def test_a_history_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    path = history.history_path(tmp_path / "p.state.json")
    path.mkdir(parents=True)
    with pytest.raises(StateError, match="is not a regular file; move it away and re-run"):
        history.load(tmp_path / "p.state.json")


def test_a_history_larger_than_qfrun_writes_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "MAX_BYTES", 10)
    path = history.history_path(tmp_path / "p.state.json")
    path.write_text(json.dumps({"run_id": "r", "stages": {}}) + "\n")
    with pytest.raises(StateError, match="is larger than qfrun writes"):
        history.load(tmp_path / "p.state.json")


@pytest.mark.parametrize("line", ['{"run_id": "r"}', "[1]", "not json", '{"stages": []}'])
def test_a_history_line_that_is_not_a_run_names_its_line(tmp_path: Path, line: str) -> None:
    path = history.history_path(tmp_path / "p.state.json")
    path.write_text(json.dumps({"run_id": "r0", "stages": {}}) + "\n\n" + line + "\n")
    with pytest.raises(StateError, match="is damaged at line 3"):
        history.load(tmp_path / "p.state.json")


def test_an_entry_that_cannot_be_json_is_a_state_error_not_a_traceback() -> None:
    entry: dict[str, object] = {"stages": {}}
    entry["outputs"] = entry  # an output that holds itself: JSON has no way to say it
    with pytest.raises(StateError, match="cannot be saved as JSON: Circular reference"):
        history._encode(entry)


def test_a_snapshot_shows_the_last_success_over_the_attempt_and_a_removed_stage_keeps_an_empty_type(
    tmp_path: Path,
) -> None:
    state = StateFile.load(tmp_path / "p.state.json", "p", sync=False)
    last = {"fingerprint": "ok", "outputs": {"v": 1}, "inputs": {"files": {}}}
    state.record("a", StageRecord(StageStatus.FAILED, "new", "r2", error="boom", last_success=last))
    state.record("gone", StageRecord(StageStatus.SKIPPED, "g", "r2", reason="its if: is false"))
    snap = history.snapshot(state, {"a": "model"})
    assert snap["run_id"] == ""
    assert snap["stages"]["a"] == {
        "type": "model",
        "status": "failed",
        "fingerprint": "ok",
        "inputs": {"files": {}},
        "outputs": {"v": 1},
        "reason": "boom",
    }
    assert snap["stages"]["gone"]["type"] == ""
    assert snap["stages"]["gone"]["reason"] == "its if: is false"


def test_the_previous_run_skips_the_current_one_wherever_it_is_kept() -> None:
    entries = [{"run_id": "r1", "stages": {}}, {"run_id": "r2", "stages": {}}, {"run_id": "r3", "stages": {}}]
    assert history.previous(entries, "r3") == entries[1]
    assert history.previous(entries, "r9") == entries[2]
    assert history.previous(entries[:1], "r1") is None
