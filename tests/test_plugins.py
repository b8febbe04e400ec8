"""A stage type and a task kind are complete plugins: ``runner.testing.echo_plugin`` (one file, registered by
``installed()``) is validated, planned, run on the real local platform over HTTP, recorded, refreshed as up to
date and reported, with no other module knowing its name.

The platform here is the real app served in this process (``serve_app``: uvicorn on a free loopback port), so
the plugin's console actions are in its route table; its engine job runs in a real job process, which imports
the plugin's ``run_job`` by the entry its kind names.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.local.app import create_app
from runner.local.credentials import load_or_create
from runner.local.home import Home
from runner.platform.protocol import TaskKind
from runner.testing import echo_plugin
from runner.testing.cli import invoke
from runner.testing.serving import serve_app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def plugin() -> Iterator[None]:
    with echo_plugin.installed():
        yield


def write_pipeline(folder: Path, stages: str, platform: str = "local") -> Path:
    (folder / ".git").mkdir(exist_ok=True)  # the repository the pipeline's paths are confined to
    path = folder / "echo.yaml"
    path.write_text(f"version: 1\nname: echo-demo\nplatform: {platform}\nstages:\n{stages}", encoding="utf-8")
    return path


SAY = "  say:\n    type: echo\n    text: hello plugin\n    from_file: note.txt\n"


def test_without_the_plugin_an_echo_stage_is_an_unknown_type(tmp_path: Path, capsys) -> None:
    (tmp_path / "note.txt").write_text("v1\n", encoding="utf-8")
    code, out, err = invoke(capsys, "validate", str(write_pipeline(tmp_path, SAY)))
    assert code == 3  # an invalid pipeline
    assert (
        "echo.yaml:6:11: stages.say.type: 'echo' is not one of model, infer, evaluate, compress, deploy."
        in out + err
    )


def test_an_installed_stage_type_is_validated_by_its_own_schema_and_checks(
    tmp_path: Path, capsys, plugin: None
) -> None:
    (tmp_path / "note.txt").write_text("v1\n", encoding="utf-8")
    assert invoke(capsys, "validate", str(write_pipeline(tmp_path, SAY)))[0] == 0

    missing = write_pipeline(tmp_path, "  say:\n    type: echo\n    needs: []\n    txet: hi\n")
    code, out, err = invoke(capsys, "validate", str(missing))
    assert code == 3  # an invalid pipeline
    assert "echo.yaml:5:3: stages.say: 'text' is required for an echo stage" in out + err
    assert "echo.yaml:8:5: stages.say: unknown key 'txet'; did you mean 'text'?" in out + err

    on_qianfan = write_pipeline(tmp_path, SAY, platform="qianfan")
    code, out, err = invoke(capsys, "validate", str(on_qianfan))
    assert "echo.yaml:5:3: stages.say: an echo stage runs on the local platform only." in out + err

    outside = write_pipeline(tmp_path, SAY.replace("note.txt", "../outside.txt"))
    code, out, err = invoke(capsys, "validate", str(outside))
    assert code == 3  # an invalid pipeline
    assert "stages.say.from_file:" in out + err


def test_an_installed_task_kind_is_served_by_the_local_platform_from_its_registry(
    tmp_path: Path, plugin: None
) -> None:
    import httpx

    home = Home(tmp_path / "home")
    with serve_app(create_app(home)) as url:
        headers = {"Authorization": f"Bearer {load_or_create(home).token}"}
        created = httpx.post(
            f"{url}/v2/echo?Action=CreateEchoTask", json={"name": "e1", "text": "abc"}, headers=headers
        ).json()["result"]
        assert created["taskId"].startswith("echo-")
        for _ in range(600):
            described = httpx.post(
                f"{url}/v2/echo?Action=DescribeEchoTask", json={"taskId": created["taskId"]}, headers=headers
            ).json()["result"]
            if described["status"] in ("Done", "Failed"):
                break
            time.sleep(0.1)
        assert described["status"] == "Done", described
        assert described["output"] == "ABC"
        listed = httpx.post(f"{url}/v2/echo?Action=DescribeEchoTasks", json={}, headers=headers).json()
        assert [task["taskId"] for task in listed["result"]["echoTaskList"]] == [created["taskId"]]


@pytest.mark.slow  # runs a job process
def test_a_pipeline_with_the_plugin_plans_runs_records_and_reports_it(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, plugin: None
) -> None:
    home = Home(tmp_path / "home")
    work = tmp_path / "repo"
    work.mkdir()
    (work / "note.txt").write_text("v1\n", encoding="utf-8")
    with serve_app(create_app(home)) as url:
        monkeypatch.setenv("QFRUN_LOCAL_TOKEN", load_or_create(home).token)
        pipeline = write_pipeline(work, SAY, platform=f"{{kind: local, url: '{url}'}}")

        code, out, _ = invoke(capsys, "plan", str(pipeline))
        assert code == 0
        assert "echo 'hello plugin'" in out

        code, out, err = invoke(capsys, "run", str(pipeline))
        assert code == 0, out + err
        state = json.loads((work / ".qfrun" / "echo-demo.state.json").read_text(encoding="utf-8"))
        record = state["stages"]["say"]
        assert record["outputs"]["echo"] == "HELLO PLUGIN"
        assert record["task"]["kind"] == "echo"
        assert TaskKind(record["task"]["kind"]) is echo_plugin.ECHO

        code, out, _ = invoke(capsys, "plan", str(pipeline))
        assert "up to date" in out
        (work / "note.txt").write_text("v2\n", encoding="utf-8")  # a local input: part of the fingerprint
        code, out, _ = invoke(capsys, "plan", str(pipeline))
        assert "~ say (echo): re-run" in out
        assert "because the content of echo file note.txt changed" in out

        code, out, _ = invoke(capsys, "report", str(pipeline), "--out", str(tmp_path / "report"))
        assert code == 0
        report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
        assert report["evaluations"] == [{"stage": "say", "metrics": {}, "samples": {"echo": 1}}]


def test_no_module_outside_the_plugin_names_it() -> None:
    """The registries are the only seam: no runner module but the plugin's own file names the type, the
    kind or the plugin (``click.echo`` is not a mention)."""
    mention = re.compile(r"[\"']echo[\"']|echo_plugin|EchoStage|/v2/echo")
    mentions = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "runner").rglob("*.py")
        if path.name != "echo_plugin.py" and mention.search(path.read_text(encoding="utf-8"))
    ]
    assert mentions == []
