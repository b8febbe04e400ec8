"""``qfrun completion SHELL`` prints a script that, sourced, makes the shell complete qfrun's verbs."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from runner.testing.cli import invoke

REPO = Path(__file__).resolve().parents[2]


def qfrun_on_path(folder: Path) -> dict[str, str]:
    """An environment whose PATH starts with a ``qfrun`` running this checkout, like the console script."""
    script = folder / "qfrun"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m runner "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if not key.startswith("_QFRUN")}
    env["PATH"] = f"{folder}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    return env


def bash(script: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_the_bash_script_registers_a_completion_for_qfrun_and_completes_verbs_options_and_values(
    tmp_path: Path,
) -> None:
    env = qfrun_on_path(tmp_path)
    # bash calls the function with the command's name, as on a Tab after the words in COMP_WORDS.
    out = bash(
        'eval "$(qfrun completion bash)"\n'
        "complete -p qfrun\n"
        'tab() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _qfrun_completion qfrun; }\n'
        'tab qfrun stat; echo "verbs: ${COMPREPLY[*]}"\n'
        'tab qfrun plan --for; echo "opts: ${COMPREPLY[*]}"\n'
        "tab qfrun plan --format ''; echo \"values: ${COMPREPLY[*]}\"\n",
        env,
        tmp_path,
    )
    assert "complete -o nosort -F _qfrun_completion qfrun" in out
    assert "verbs: state status" in out
    assert "opts: --force --format" in out
    assert "values: text markdown json" in out


@pytest.mark.parametrize(
    ("shell", "marker"), [("zsh", "#compdef qfrun"), ("fish", "complete --no-files --command qfrun")]
)
def test_zsh_and_fish_scripts_call_qfrun_back_with_its_completion_variable(
    shell: str, marker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = invoke(capsys, "completion", shell)
    assert code == 0
    assert marker in out
    assert "_QFRUN_COMPLETE" in out


def test_an_unknown_shell_is_refused_naming_the_shells(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = invoke(capsys, "completion", "tcsh")
    assert code == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in err
