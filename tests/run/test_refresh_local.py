"""Refresh as a user takes it: ``qfrun`` against the real local platform over HTTP, the console's part played
by the official ``qianfan`` SDK, every request counted by the platform's recorder.

A run deploys the demo model; the SDK releases the service (ReleaseComputeUnit); ``qfrun plan`` shows it as
changed outside qfrun and that the run deploys it again, asking one list per kind; ``--refresh=false`` sends
nothing at all; ``qfrun run`` then creates exactly one service and nothing else. Then the SDK deletes the
imported model version (DeleteModel, once no live service serves it): the plan re-runs the import and the
deploy after it. And a 50-stage pipeline's refresh costs two requests.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.files import ALLOW_PATHS_VARIABLE
from runner.platform.registry import PLATFORM_KINDS
from runner.platform.settings import ENV_LOCAL_TOKEN
from runner.state.file import StateFile
from runner.testing.cli import invoke as qfrun
from runner.testing.pipelines import FAST
from runner.testing.sdk_oracle import SdkPlatform, serve_recorded

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SERVICE = (
    "    type: deploy\n    model: {model}\n"
    "    service: {{name: {name}, url_suffix: {name}, billing: {{payment: postpaid, charge: tokens}}}}\n"
)


def pipeline_text(url: str) -> str:
    """The demo model imported and deployed, on the platform at ``url``."""
    return (
        f"version: 1\nname: refreshed\nplatform: {{kind: local, url: '{url}'}}\nstages:\n"
        f"  adder:\n    type: model\n    import: {REPO / 'models' / 'tiny-adder'}\n"
        "  serve:\n" + SERVICE.format(model="adder", name="adder_svc")
    )


@pytest.fixture
def local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[SdkPlatform]:
    kind = PLATFORM_KINDS["local"]
    monkeypatch.setitem(PLATFORM_KINDS, "local", dataclasses.replace(kind, poll=FAST))
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv(ALLOW_PATHS_VARIABLE, str(REPO))  # the demo model, outside the temporary folder
    with serve_recorded(tmp_path / "platform") as platform:
        monkeypatch.setenv(ENV_LOCAL_TOKEN, platform.credentials.token)
        yield platform  # its shutdown stops the services the test left serving


def release(service_id: str, instance_id: str) -> str:
    """SDK code that releases a service as the console's API does [S5]."""
    return (
        "from qianfan import resources\n"
        "resp = resources.console.utils.call_action('/v2/serviceresources', 'ReleaseComputeUnit', "
        f"{{'serviceId': {service_id!r}, 'instanceId': {instance_id!r}}})\n"
        "report(resp.body['result'])\n"
    )


def actions_since(platform: SdkPlatform, start: int) -> list[str]:
    return [call.query.get("Action", call.path) for call in platform.recorder.since(start)]


def plan_json(capsys: pytest.CaptureFixture[str], path: Path, *args: str) -> dict[str, Any]:
    code, out, err = qfrun(capsys, "plan", str(path), "--format", "json", *args)
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def test_a_service_released_through_the_sdk_is_deployed_again_and_nothing_else_is_created(
    tmp_path: Path, local: SdkPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "refreshed.yaml"
    path.write_text(pipeline_text(local.url))
    code, _, err = qfrun(capsys, "run", str(path))
    assert code == 0, err
    state = StateFile.load(tmp_path / ".qfrun" / "refreshed.state.json", "refreshed")
    task = state.stages["serve"].task
    assert task is not None
    released, _ = local.run(release(task["task_id"], task["instance_id"]))
    assert released is True

    start = len(local.recorder.calls)
    code, out, _ = qfrun(capsys, "plan", str(path))
    assert code == 0
    assert "Changed outside qfrun (found by refresh):" in out
    assert f"~ serve: service {task['task_id']} is stopped" in out
    assert "qfrun run deploys it again" in out
    assert sorted(actions_since(local, start)) == ["DescribeCustomModelSets", "DescribeServices"]
    plan = plan_json(capsys, path)
    assert {s["id"]: s["action"] for s in plan["stages"]} == {"adder": "up to date", "serve": "re-run"}

    start = len(local.recorder.calls)
    plan = plan_json(capsys, path, "--refresh=false")
    assert {s["id"]: s["action"] for s in plan["stages"]} == {"adder": "up to date", "serve": "up to date"}
    assert actions_since(local, start) == []  # not one request

    start = len(local.recorder.calls)
    code, _, err = qfrun(capsys, "run", str(path))
    assert code == 0, err
    sent = actions_since(local, start)
    assert [a for a in sent if a.startswith(("Create", "Import"))] == ["CreateService"]
    after = StateFile.load(state.path, "refreshed").stages["serve"].task
    assert after is not None
    assert after["task_id"] != task["task_id"]
    assert (
        local.run(
            "from qianfan import resources\n"
            f"report(resources.Service.V2.service_detail(service_id={after['task_id']!r}).body['result']"
            "['runStatus'])\n"
        )[0]
        == "Serving"
    )

    plan = plan_json(capsys, path)
    assert {s["action"] for s in plan["stages"]} == {"up to date"}
    assert plan["changed_outside"] == []


def test_a_model_version_deleted_through_the_sdk_re_runs_the_stage_that_made_it_and_its_deploy(
    tmp_path: Path, local: SdkPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "refreshed.yaml"
    path.write_text(pipeline_text(local.url))
    assert qfrun(capsys, "run", str(path))[0] == 0
    state = StateFile.load(tmp_path / ".qfrun" / "refreshed.state.json", "refreshed")
    version = state.stages["adder"].outputs["version_id"]
    task = state.stages["serve"].task
    assert task is not None
    delete = (
        "from qianfan.resources import Model\n"
        f"report(Model.V2.delete_model(model_id={version!r}).body['result'])\n"
    )
    with pytest.raises(AssertionError, match="is in use by service"):
        local.run(delete)  # a live service serves it
    local.run(release(task["task_id"], task["instance_id"]))
    assert local.run(delete)[0] is True

    plan = plan_json(capsys, path)
    changes = {c["stage"]: (c["change"], c["then"]) for c in plan["changed_outside"]}
    assert changes["adder"] == (f"model version {version} was deleted", "qfrun run re-runs adder, then serve")
    assert changes["serve"][1] == "qfrun run deploys it again"
    assert {s["id"]: s["action"] for s in plan["stages"]} == {"adder": "re-run", "serve": "re-run"}

    start = len(local.recorder.calls)
    assert qfrun(capsys, "run", str(path))[0] == 0
    sent = actions_since(local, start)
    assert [a for a in sent if a.startswith(("Create", "Import"))] == ["ImportLocalModel", "CreateService"]
    assert StateFile.load(state.path, "refreshed").stages["adder"].outputs["version_id"] != version


def test_the_refresh_of_a_50_stage_pipeline_sends_two_requests(
    tmp_path: Path, local: SdkPlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    imports = ""
    for index in range(49):  # 49 imported model versions, each its own model, and one service
        folder = models / f"m{index}"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text('{"model_type": "llama"}')
        (folder / "model.safetensors").write_bytes(str(index).encode() * 64)
        imports += f"  m{index}:\n    type: model\n    import: {folder}\n"
    path = tmp_path / "wide.yaml"
    path.write_text(
        f"version: 1\nname: wide\nplatform: {{kind: local, url: '{local.url}'}}\nstages:\n{imports}"
        f"  adder:\n    type: model\n    import: {REPO / 'models' / 'tiny-adder'}\n"
        "  serve:\n" + SERVICE.format(model="adder", name="wide_svc")
    )
    code, _, err = qfrun(capsys, "run", str(path))
    assert code == 0, err
    start = len(local.recorder.calls)
    plan = plan_json(capsys, path)
    assert len(plan["stages"]) == 51
    assert {s["action"] for s in plan["stages"]} == {"up to date"}
    sent = actions_since(local, start)
    assert sorted(sent) == ["DescribeCustomModelSets", "DescribeServices"]
    print(f"refresh of {len(plan['stages'])} stages (50 recorded resources): {len(sent)} requests")
