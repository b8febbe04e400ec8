"""The CLI: ``qfrun FILE`` is ``qfrun run FILE``, exit codes by cause, schema, status, --state, the lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from runner.cli import main
from runner.errors import PlatformServerError
from runner.platform.protocol import TaskStatus
from runner.state.file import StageStatus, StateFile
from runner.state.lock import RunLock
from runner.testing.cli import invoke as qfrun
from runner.testing.fake_platform import ClosingFake, Script
from runner.testing.pipelines import DEMO, write


def state_of(path: Path, name: str = "demo") -> StateFile:
    return StateFile.load(path.parent / ".qfrun" / f"{name}.state.json", name)


def statuses(state: StateFile) -> dict[str, StageStatus]:
    return {stage_id: record.status for stage_id, record in state.stages.items()}


def test_bare_file_runs_like_the_run_command(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    code_bare, _, err_bare = qfrun(capsys, str(write(first)))
    created_bare = platform.created_for("w4")
    code_run, _, err_run = qfrun(capsys, "run", str(write(second)))
    assert code_bare == code_run == 0
    assert set(statuses(state_of(first / "pipeline.yaml")).values()) == {StageStatus.SUCCEEDED}
    assert statuses(state_of(first / "pipeline.yaml")) == statuses(state_of(second / "pipeline.yaml"))
    assert "5 succeeded" in err_bare
    assert "5 succeeded" in err_run
    assert len(created_bare) == 1
    assert len(platform.created_for("w4")) == 2
    assert platform.closed


def test_bare_file_takes_run_options(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    code, _, _ = qfrun(capsys, str(path), "--select", "+w4", "--max-parallel", "1")
    assert code == 0
    assert set(state_of(path).stages) == {"base", "w4"}


def test_a_second_run_is_up_to_date(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    qfrun(capsys, "run", str(path))
    code, _, err = qfrun(capsys, "run", str(path))
    assert code == 0
    assert "5 up to date" in err


def test_a_failed_stage_exits_1(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    platform.scripts["w4"] = Script(outcome=TaskStatus.FAILED, message="out of memory")
    code, _, err = qfrun(capsys, "run", str(write(tmp_path)))
    assert code == 1
    assert "w4 failed" in err
    assert "out of memory" in err
    assert "re-run the same command to retry" in err


def test_platform_failures_exit_5(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    platform.scripts["w4"] = Script(
        create_error=PlatformServerError("server busy", platform="fake", status=503)
    )
    code, _, err = qfrun(capsys, "run", str(write(tmp_path)), "--select", "+w4")
    assert code == 5
    assert "server busy" in err


def test_invalid_pipeline_exits_3_and_runs_nothing(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "version: 1\nname: demo\nstages:\n  a: {type: infer, model: ghost}\n")
    code, _, err = qfrun(capsys, str(path))
    assert code == 3
    assert "there is no stage 'ghost'" in err
    assert "The pipeline is not valid: " in err
    assert platform.created == []


def test_corrupt_state_file_exits_4(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    state = tmp_path / ".qfrun" / "demo.state.json"
    state.parent.mkdir()
    state.write_text("{not json")
    for command in (["run", str(path)], ["plan", str(path)], ["status", str(path)]):
        code, _, err = qfrun(capsys, *command)
        assert code == 4, command
        assert str(state) in err
    assert platform.created == []


@pytest.mark.parametrize(
    "args",
    [
        ["run", "PIPELINE", "--no-such-option"],
        ["plan", "PIPELINE", "--format", "yaml"],
        ["run", "PIPELINE", "--select", "ghost_stage"],
        ["run", "PIPELINE", "--from", "ghost_stage"],
        ["run", "PIPELINE", "--max-parallel", "0"],
        ["no-such-command-or-file.yaml", "--bogus"],
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    path = write(tmp_path)
    code, _, err = qfrun(capsys, *[str(path) if a == "PIPELINE" else a for a in args])
    assert code == 2
    assert err.strip()
    assert platform.created == []


def test_unknown_select_stage_suggests_the_closest(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, err = qfrun(capsys, "run", str(write(tmp_path)), "--select", "serv")
    assert "did you mean 'serve'?" in err


def test_schema_prints_a_valid_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = qfrun(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"].startswith("https://json-schema.org/draft/2020-12")
    code, out, _ = qfrun(capsys, "schema", "--state")
    assert code == 0
    jsonschema.Draft202012Validator.check_schema(json.loads(out))


def test_status_shows_each_stage_status_and_errors(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    code, out, _ = qfrun(capsys, "status", str(path))
    assert code == 0
    assert "base_infer  infer     never run" in out
    platform.scripts["w4"] = Script(outcome=TaskStatus.FAILED, message="out of memory")
    qfrun(capsys, "run", str(path), "--keep-going")
    code, out, _ = qfrun(capsys, "status", str(path))
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "succeeded" in lines["base_eval"]
    assert "failed" in lines["w4"]
    assert "out of memory" in lines["w4"]
    assert "skipped" in lines["serve"]
    assert "upstream stage w4 failed" in lines["serve"]
    code, out, _ = qfrun(capsys, "status", str(path), "--format", "json")
    rows = {row["id"]: row for row in json.loads(out)["stages"]}
    assert rows["w4"]["status"] == "failed"
    assert rows["base_eval"]["outputs"]["metrics"] == {"accuracy": 0.9}


def test_state_option_puts_the_state_where_it_says(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    elsewhere = tmp_path / "states" / "mine.json"
    code, _, _ = qfrun(capsys, "run", str(path), "--state", str(elsewhere))
    assert code == 0
    assert elsewhere.is_file()
    assert not (tmp_path / ".qfrun" / "demo.state.json").exists()
    assert set(statuses(StateFile.load(elsewhere, "demo")).values()) == {StageStatus.SUCCEEDED}
    _, out, _ = qfrun(capsys, "status", str(path), "--state", str(elsewhere))
    assert "never run" not in out
    _, out, _ = qfrun(capsys, "status", str(path))
    assert "succeeded" not in out


def test_a_second_concurrent_run_fails_at_once_with_exit_4_naming_the_holder(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    state = tmp_path / ".qfrun" / "demo.state.json"
    with RunLock(state, command="qfrun run pipeline.yaml --holder-marker", pipeline="demo"):
        code, _, err = qfrun(capsys, "run", str(path))
    assert code == 4
    assert f"pid {os.getpid()}" in err
    assert "--holder-marker" in err
    assert platform.created == []
    code, _, _ = qfrun(capsys, "run", str(path))  # released: the next run goes ahead
    assert code == 0


def test_version_and_help_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = qfrun(capsys, "--version")
    assert code == 0
    assert out.startswith("qfrun, version ")
    code, out, _ = qfrun(capsys, "--help")
    assert code == 0
    for command in ("run", "validate", "plan", "status", "graph", "schema"):
        assert command in out


@pytest.mark.slow
def test_importing_the_cli_loads_no_model_runtime() -> None:
    code = (
        "import sys, runner.cli, runner.run.executor, runner.run.connect; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_run_records_the_command_it_was_given(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    qfrun(capsys, str(path), "--max-parallel", "2")
    assert state_of(path).runs[-1].command == f"qfrun {path} --max-parallel 2"


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_flag_works_before_or_after_a_bare_file(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    path = str(write(tmp_path))
    args = ["-v", path] if where == "before" else [path, "-v"]
    code, _, err = qfrun(capsys, *args, "--select", "base")
    assert code == 0, err
    assert "1 succeeded" in err


def test_cost_bearing_run_on_qianfan_without_a_terminal_needs_yes_and_exits_2(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    on_qianfan = (
        DEMO.replace("name: demo\n", "name: demo\nplatform: qianfan\n")
        .replace("qa: {path: qa.jsonl}", "qa: {qianfan_dataset_id: ds-qa}")
        .replace(
            "    params: {temperature: 0.1}",
            "    params: {temperature: 0.1}\n    input_bos_uri: bos:/b/in/\n    output_bos_uri: bos:/b/out/",
        )
    )
    path = write(tmp_path, on_qianfan)
    code, _, err = qfrun(capsys, "run", str(path))
    assert code == 2
    assert "serve: 2 replicas of GPU-1-1, prepaid 3 months (6 replica-months)" in err
    assert "free on the local platform" not in err
    assert "pass --yes" in err
    assert platform.created == []
    code, _, _ = qfrun(capsys, "run", str(path), "--yes")
    assert code == 0
    assert len(platform.created_for("serve")) == 1


def test_validate_refuses_a_service_of_the_old_format_naming_each_new_spelling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = "      name: demo_svc\n      url_suffix: demo_w4\n      replicas: 2\n"
    old += "      billing: {payment: prepaid, months: 3}\n      resource_type: GPU-1-1\n"
    assert old in DEMO
    path = write(
        tmp_path, DEMO.replace(old, "      name: demo\n      endpoint_suffix: demo_w4\n      hours: 3\n")
    )
    code, out, err = qfrun(capsys, "validate", str(path))
    assert code == 3
    assert err == "Found 5 problems.\n"
    assert out.splitlines() == [
        f"{path}:29:5: stages.serve.service: 'billing' is required for a deploy stage.",
        f"{path}:29:5: stages.serve.service: 'resource_type' is required unless billing.charge is tokens.",
        f"{path}:29:5: stages.serve.service: 'url_suffix' is required for a deploy stage.",
        f"{path}:31:7: stages.serve.service: `endpoint_suffix` is gone: Qianfan calls it urlSuffix; use "
        "`url_suffix:` (2 to 20 of a-z, 0-9, '_', '-').",
        f"{path}:32:7: stages.serve.service: `hours` is gone: Qianfan sells services by the month; use "
        "`billing: {payment: prepaid, months: 1}` (or `billing: {payment: postpaid, charge: "
        "computing_unit}`).",
    ]


def test_a_bug_is_reported_in_one_line_without_traceback_unless_verbose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("runner.pipeline.spec.load_pipeline", broken)
    path = str(write(tmp_path))
    code, _, err = qfrun(capsys, "validate", path)
    assert code == 70
    assert "internal error: RuntimeError: boom. Re-run with -v for the traceback and report it." in err
    with pytest.raises(RuntimeError, match="boom"):
        main(["-v", "validate", path])


def test_plan_detailed_exitcode_says_whether_anything_would_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: ClosingFake
) -> None:
    path = write(tmp_path)
    assert qfrun(capsys, "plan", str(path), "--detailed-exitcode")[0] == 2  # never ran: changes
    assert qfrun(capsys, str(path))[0] == 0
    assert qfrun(capsys, "plan", str(path), "--detailed-exitcode")[0] == 0  # all up to date
    assert qfrun(capsys, "plan", str(path))[0] == 0  # without the flag, always 0


def test_an_unset_allow_listed_env_variable_fails_the_stage_that_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: ClosingFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QFRUN_TEST_TAG", raising=False)
    text = DEMO.replace("vars:\n", "env: [QFRUN_TEST_TAG]\nvars:\n").replace(
        'content: "2+3=?"', 'content: "${{ env.QFRUN_TEST_TAG }}"'
    )
    path = write(tmp_path, text)
    code, _, err = qfrun(capsys, str(path))
    assert code == 3  # nobody allowed the pipeline to read it
    assert "env.0: QFRUN_TEST_TAG may not be read: allow it outside the file with --allow-env" in err
    code, _, err = qfrun(capsys, "run", str(path), "--allow-env", "QFRUN_TEST_TAG")
    assert code == 1
    assert "the environment variable QFRUN_TEST_TAG is not set" in err


def test_a_pipeline_reads_no_credential_even_when_it_is_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QFRUN_ALLOW_ENV", "QIANFAN_SECRET_KEY,GITHUB_TOKEN")
    text = DEMO.replace("vars:\n", "env: [QIANFAN_SECRET_KEY, GITHUB_TOKEN, QFRUN_VAR_TAG]\nvars:\n")
    path = write(tmp_path, text)
    code, out, _ = qfrun(capsys, "validate", str(path))
    assert code == 3
    assert "'QIANFAN_SECRET_KEY' is a credential; expressions may never read" in out
    assert "GITHUB_TOKEN" not in out  # allowed through QFRUN_ALLOW_ENV; QFRUN_VAR_* needs no allowing


def test_a_mistyped_command_is_named_with_the_closest_verb_not_read_as_a_pipeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = qfrun(capsys, "stauts", "pipeline.yaml")
    assert code == 2
    assert "No such command 'stauts'" in err
    assert "Did you mean 'status'?" in err
    assert "not valid" not in err


def test_a_pipeline_file_named_like_a_word_still_runs(
    tmp_path: Path, platform: ClosingFake, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stauts").write_text(write(tmp_path).read_text(encoding="utf-8"), encoding="utf-8")
    code, _, _ = qfrun(capsys, "stauts")
    assert code == 0


@pytest.mark.slow
def test_validate_imports_neither_the_executor_nor_the_platform_client(tmp_path: Path) -> None:
    path = write(tmp_path)
    code = (
        "import sys\nfrom runner.cli import main\n"
        f"try:\n    main(['validate', {str(path)!r}])\nexcept SystemExit as stop:\n    assert not stop.code\n"
        "print(sorted(m for m in ('runner.run.executor', 'runner.platform.client', 'httpx', 'rich') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
