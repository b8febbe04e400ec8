"""``qfrun init`` writes a starter that validates, plans and runs as it is, and never overwrites a file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runner.commands.schema import schema_text
from runner.testing.cli import invoke

STARTER = {
    "pipeline.yaml",
    "schemas/qfrun-pipeline.schema.json",
    "data/eval.jsonl",
    *(
        f"models/tiny-adder/{name}"
        for name in (
            "README.md",
            "config.json",
            "generation_config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer.model",
            "tokenizer_config.json",
        )
    ),
}


def files_under(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


def test_init_writes_a_starter_that_validates_and_plans_two_stages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(capsys, "init")
    assert code == 0, err
    assert "wrote pipeline.yaml" in out
    assert "qfrun validate pipeline.yaml" in out
    assert files_under(tmp_path) == STARTER
    assert invoke(capsys, "validate", "pipeline.yaml")[0] == 0
    code, out, err = invoke(capsys, "plan", "pipeline.yaml", "--format", "json")
    assert code == 0, err
    assert [(stage["id"], stage["action"]) for stage in json.loads(out)["stages"]] == [
        ("base", "run"),
        ("base_eval", "run"),
    ]


def test_the_modeline_names_the_schema_file_init_wrote_which_is_qfrun_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert invoke(capsys, "init", str(tmp_path / "project"))[0] == 0
    pipeline = tmp_path / "project" / "pipeline.yaml"
    first = pipeline.read_text(encoding="utf-8").splitlines()[0]
    found = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert found, first
    # yaml-language-server resolves a relative modeline against the pipeline's own folder
    schema = pipeline.parent / found.group(1)
    assert schema.read_text(encoding="utf-8") == schema_text("pipeline")


def test_init_refuses_when_any_file_exists_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pipeline.yaml").write_text("mine\n", encoding="utf-8")
    (tmp_path / "models" / "tiny-adder").mkdir(parents=True)
    (tmp_path / "models" / "tiny-adder" / "config.json").write_text("{}", encoding="utf-8")
    code, _, err = invoke(capsys, "init")
    assert code == 2
    assert err == (
        "error: qfrun init wrote nothing, because pipeline.yaml and models/tiny-adder already exist; "
        "init another folder or move them away.\n"
    )
    assert files_under(tmp_path) == {"pipeline.yaml", "models/tiny-adder/config.json"}
    assert (tmp_path / "pipeline.yaml").read_text(encoding="utf-8") == "mine\n"


def test_init_into_a_path_that_is_a_file_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "taken").write_text("", encoding="utf-8")
    code, _, err = invoke(capsys, "init", str(tmp_path / "taken" / "inner"))
    assert code == 2
    assert err.startswith(f"error: qfrun init cannot write {tmp_path / 'taken' / 'inner'}")
    assert err.count("\n") == 1


@pytest.mark.slow
def test_the_starter_runs_as_it_is_on_the_local_platform(tmp_path: Path) -> None:
    env = {**os.environ, "QFRUN_HOME": str(tmp_path / "home"), "CI": "1"}
    env.pop("QFRUN_ALLOW_PATHS", None)  # everything it reads is in its own folder

    def qfrun(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runner", *args],
            env=env,
            cwd=tmp_path / "project",
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    (tmp_path / "project").mkdir()
    try:
        assert qfrun("init").returncode == 0
        run = qfrun("pipeline.yaml")
        assert run.returncode == 0, run.stderr
        assert "2 succeeded." in run.stderr
        status = json.loads(qfrun("status", "pipeline.yaml", "--format", "json").stdout)
        scores = {stage["id"]: stage for stage in status["stages"]}["base_eval"]["outputs"]
        assert scores["samples"] == 200
        assert scores["metrics"]["accuracy"] >= 0.9  # the demo model adds (1.000 measured)
    finally:
        qfrun("platform", "stop")
