"""``qfrun diff``: against the previous run the history keeps, the state committed on main, a state file."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.pipeline.spec import load_pipeline
from runner.render.report import build_report
from runner.state import history
from runner.state.file import StateFile
from runner.testing.cli import invoke as qfrun
from runner.testing.fake_platform import ClosingFake
from runner.testing.pipelines import DEMO, write

W8 = DEMO.replace("weight: W4A16C16", "weight: W8A16C16")


def _git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )


def test_each_run_keeps_its_snapshot_and_diff_shows_what_the_last_change_did(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    assert qfrun(capsys, "run", str(path))[0] == 0
    write(tmp_path, W8)
    assert qfrun(capsys, "run", str(path))[0] == 0
    assert len(history.load(tmp_path / ".qfrun" / "demo.state.json")) == 2
    code, out, _ = qfrun(capsys, "diff", str(path))
    assert code == 0
    assert "2 changed, 3 unchanged" in out.splitlines()[0]
    assert 'w4 (compress): succeeded\n      because weight: "W4A16C16" -> "W8A16C16"' in out
    assert "serve (deploy): succeeded\n      because upstream w4 changed" in out
    code, out, _ = qfrun(capsys, "diff", str(path), "--format", "json")
    assert [s["id"] for s in json.loads(out)["stages"] if s["change"] == "changed"] == ["w4", "serve"]
    # The comment CI posts beside the plan: within the share of the 65,536 characters it is given.
    code, out, _ = qfrun(capsys, "diff", str(path), "--format", "markdown", "--markdown-limit", "2000")
    assert code == 0
    assert out.startswith("### qfrun diff: `demo`")
    assert len(out) <= 2000


def test_the_report_plots_the_kept_runs_and_shows_the_changes_since_the_previous_one(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    qfrun(capsys, "run", str(path))
    write(tmp_path, W8)
    qfrun(capsys, "run", str(path))
    state = StateFile.load(tmp_path / ".qfrun" / "demo.state.json", "demo")
    report = build_report(load_pipeline(path), state)
    assert report["history"]["metrics"] == {"base_eval": {"accuracy of base_infer": [0.9, 0.9]}}
    assert [s["id"] for s in report["changes"]["stages"] if s["change"] == "changed"] == ["w4", "serve"]
    html = (tmp_path / ".qfrun" / "reports" / "demo" / "report.html").read_text()
    assert "<h2>Changes since run " in html
    assert 'aria-label="metrics of base_eval across runs"' in html


def test_by_default_diff_compares_with_the_state_committed_on_main(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    path = write(tmp_path)
    state = tmp_path / "state" / "demo.state.json"
    state.parent.mkdir()  # a folder the team made: qfrun puts no .gitignore in it
    qfrun(capsys, "run", str(path), "--state", str(state))
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", "pipeline.yaml", "qa.jsonl", "state/demo.state.json")
    _git(tmp_path, "commit", "-q", "-m", "the run on main")
    _git(tmp_path, "checkout", "-q", "-b", "change")
    for weight in ("W8A16C16", "INT8-PTQ"):  # two runs: the previous one is not what main has
        write(tmp_path, DEMO.replace("weight: W4A16C16", f"weight: {weight}"))
        qfrun(capsys, "run", str(path), "--state", str(state))
    code, out, _ = qfrun(capsys, "diff", str(path), "--state", str(state), "--format", "markdown")
    assert code == 0
    assert "from main to run " in out
    assert 'weight: "W4A16C16" -\\> "INT8-PTQ"' in out
    code, out, _ = qfrun(capsys, "diff", str(path), "--state", str(state), "HEAD")
    assert 'weight: "W4A16C16" -> "INT8-PTQ"' in out


def test_a_ref_that_is_no_run_state_file_or_revision_is_one_sentence_exit_2(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    qfrun(capsys, "run", str(path))
    code, out, err = qfrun(capsys, "diff", str(path), "no-such-ref")
    assert code == 2
    assert out == ""
    assert err.startswith("error: 'no-such-ref' is neither a run the history keeps (the latest: ")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_with_one_run_and_nothing_committed_diff_says_there_is_nothing_to_compare_with(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    qfrun(capsys, "run", str(path))
    code, _, err = qfrun(capsys, "diff", str(path))
    assert code == 2
    assert "There is nothing to compare with" in err
    assert "name a REF" in err


def test_a_state_file_given_as_ref_is_compared_as_it_is(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    qfrun(capsys, "run", str(path))
    saved = tmp_path / "main-artifact.state.json"  # e.g. main's state, downloaded by a CI job
    shutil.copy(tmp_path / ".qfrun" / "demo.state.json", saved)
    write(tmp_path, W8)
    qfrun(capsys, "run", str(path))
    code, out, _ = qfrun(capsys, "diff", str(path), str(saved))
    assert code == 0
    assert f"from {saved} to run " in out
    assert "upstream w4 changed" in out


def test_a_checkout_without_the_state_folder_still_reads_mains_committed_state(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    path = write(tmp_path)
    state = tmp_path / "state" / "demo.state.json"
    state.parent.mkdir()
    qfrun(capsys, "run", str(path), "--state", str(state))
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", "pipeline.yaml", "qa.jsonl", "state/demo.state.json")
    _git(tmp_path, "commit", "-q", "-m", "the run on main")
    shutil.rmtree(state.parent)  # a pull request's checkout where the pipeline never ran
    code, out, _ = qfrun(capsys, "diff", str(path), "--state", str(state))
    assert code == 0
    assert "from main to now: 5 removed." in out
