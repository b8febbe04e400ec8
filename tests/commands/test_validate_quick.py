"""``qfrun validate`` without click (runner.commands.validating) says and exits exactly as the click command
does, and leaves to click every command line it does not read as click would (issue 17, P1)."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest

from runner.commands import validating
from runner.commands.echo import echo
from runner.testing.cli import invoke as qfrun
from runner.testing.pipelines import write

TARGETS = """\
version: 1
name: promo
platforms:
  dev: {kind: local}
  prod: {kind: qianfan}
default_target: dev
env: [TOKEN]
stages:
  base: {type: model, version_id: amv-1}
"""
BROKEN = """\
version: 1
name: broken
stages:
  a: {type: infer, model: nowhere, dataset: none}
  b: {type: model, version_id: amv-1, needs: [a, missing]}
"""


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QFRUN_TARGET", raising=False)
    monkeypatch.delenv("QFRUN_ALLOW_ENV", raising=False)
    write(tmp_path)
    write(tmp_path, TARGETS, "targets.yaml")
    write(tmp_path, BROKEN, "broken.yaml")
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "allowed").mkdir()
    return tmp_path


# Command lines the quick path runs, and what each proves it reads as click does.
QUICK = [
    ["validate", "pipeline.yaml"],  # a valid file: its summary on stderr
    ["validate", "broken.yaml"],  # problems on stdout, the count on stderr, exit 3
    ["validate", "pipeline.yaml", "broken.yaml", "missing.yaml"],  # several files, one that is not there
    ["validate", "--format", "json", "broken.yaml"],
    ["validate", "--format=json", "pipeline.yaml"],
    ["validate", "targets.yaml"],  # every target, named; TOKEN not allowed
    ["validate", "targets.yaml", "--target", "prod", "--allow-env", "TOKEN"],
    ["validate", "--target=nowhere", "targets.yaml"],
    ["validate", "--allow-env=TOKEN", "--allow-env", "OTHER", "--allow-path", "allowed", "targets.yaml"],
]
# Command lines click reads: help, a mistake, or a value click's types refuse or read otherwise.
CLICK = [
    ["validate", "--help"],
    ["validate", "-h", "pipeline.yaml"],
    ["validate"],
    ["validate", "folder.yaml"],  # a folder where a file goes
    ["validate", "pipeline.yaml", "--allow-path", "pipeline.yaml"],  # a file where a folder goes
    ["validate", "--format", "yaml", "pipeline.yaml"],
    ["validate", "--format"],
    ["validate", "--target", "dev", "--target", "prod", "targets.yaml"],
    ["validate", "--", "pipeline.yaml"],
    ["validate", "--formt", "json", "pipeline.yaml"],
    ["validate", "-v", "pipeline.yaml"],
    ["-v", "validate", "pipeline.yaml"],
]


def through_click(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> tuple[int, str, str]:
    with monkeypatch.context() as patch:
        patch.setattr(validating, "quick_command", lambda args: None)
        return qfrun(capsys, *args)


@pytest.mark.parametrize("args", QUICK, ids=" ".join)
def test_the_quick_path_prints_and_exits_as_the_click_command(
    files: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert validating.quick_command(args) is not None  # the quick path is the one compared
    quick = qfrun(capsys, *args)
    assert quick == through_click(monkeypatch, capsys, args)


def test_qfrun_target_in_the_environment_reads_as_click_reads_it(
    files: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for value in ("prod", "nowhere", ""):  # an empty variable is unset to click
        monkeypatch.setenv("QFRUN_TARGET", value)
        assert qfrun(capsys, "validate", "targets.yaml") == through_click(
            monkeypatch, capsys, ["validate", "targets.yaml"]
        )


@pytest.mark.parametrize("args", CLICK, ids=" ".join)
def test_help_mistakes_and_values_click_refuses_go_to_click(files: Path, args: list[str]) -> None:
    assert validating.quick_command(args) is None


def test_shell_completion_goes_to_click(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_QFRUN_COMPLETE", "bash_complete")
    assert validating.quick_command(["validate", "pipeline.yaml"]) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_pipeline_goes_to_click(files: Path) -> None:
    (files / "pipeline.yaml").chmod(0)
    assert validating.quick_command(["validate", "pipeline.yaml"]) is None


@pytest.mark.parametrize("message", ["plain", "\x1b[31mred\x1b[0m and \x1b]8;;x\x1b\\", "", "ünï\ncode"])
@pytest.mark.parametrize("err", [False, True])
@pytest.mark.parametrize("nl", [True, False])
def test_echo_writes_what_click_echo_writes(
    capsys: pytest.CaptureFixture[str], message: str, err: bool, nl: bool
) -> None:
    echo(message, err=err, nl=nl)
    ours = capsys.readouterr()
    click.echo(message, err=err, nl=nl)
    assert ours == capsys.readouterr()
