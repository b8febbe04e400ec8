"""``--target``: one pipeline file promoted unchanged from the local platform (dev) to Qianfan (prod).

dev runs on the real local platform over HTTP (127.0.0.1, a free port); prod is only planned (no cloud
account here): its plan says how it would get each dataset and model. Each target keeps its own state file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.local.app import create_app
from runner.local.credentials import LocalKeys, load_or_create
from runner.local.home import Home
from runner.platform.settings import ENV_LOCAL_TOKEN
from runner.testing.cli import invoke as qfrun
from runner.testing.serving import serve_app

REPO = Path(__file__).resolve().parents[2]

PROMOTED = """\
version: 1
name: promo
platforms:
  dev: {{kind: local, url: '{url}'}}
  prod: {{kind: qianfan}}
default_target: dev
datasets:
  prompts: {{path: prompts.jsonl}}
stages:
  base:
    type: model
    import: tiny-adder
    targets:
      prod: {{version_id: amv-prod-base}}
"""


@pytest.fixture
def local_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The local platform served on a free loopback port, its token in the environment."""
    home = Home(tmp_path / "home")
    with serve_app(create_app(home, None, None)) as url:
        monkeypatch.setenv(ENV_LOCAL_TOKEN, load_or_create(home).token)
        for name in ("QFRUN_STATE", "QFRUN_TARGET", "QIANFAN_ACCESS_KEY", "QIANFAN_SECRET_KEY", "CI"):
            monkeypatch.delenv(name, raising=False)
        yield url


def repository(folder: Path, url: str, text: str = PROMOTED) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "models" / "tiny-adder", folder / "tiny-adder")
    (folder / "prompts.jsonl").write_text('{"prompt": "2+3=?", "response": "5"}\n', encoding="utf-8")
    path = folder / "promo.yaml"
    path.write_text(text.format(url=url), encoding="utf-8")
    return path


def plan(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> dict[str, object]:
    code, out, err = qfrun(capsys, "plan", str(path), "--format", "json", *extra)
    assert code == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def actions(result: dict[str, object]) -> dict[str, str]:
    stages = result["stages"]
    assert isinstance(stages, list)
    return {stage["id"]: stage["action"] for stage in stages}


def test_dev_runs_on_the_local_platform_and_prod_plans_from_a_state_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], local_url: str
) -> None:
    path = repository(tmp_path / "repo", local_url)
    code, _, err = qfrun(capsys, str(path))  # the default target: dev
    assert code == 0, err
    assert "imported tiny-adder as model version amv-" in err

    states = tmp_path / "repo" / ".qfrun"
    assert (states / "promo.dev.state.json").is_file()
    assert not (states / "promo.prod.state.json").exists()
    assert not (states / "promo.state.json").exists()

    dev = plan(capsys, path, "--target", "dev")
    assert (dev["platform"], dev["target"], actions(dev)) == ("local", "dev", {"base": "up to date"})
    prod = plan(capsys, path, "--target", "prod")
    assert (prod["platform"], prod["target"], actions(prod)) == ("qianfan", "prod", {"base": "run"})
    assert prod["state"] == str(states / "promo.prod.state.json")
    assert prod["sources"] == [
        "dataset prompts: prompts.jsonl, read by no stage, so nothing is uploaded",
        "model base: the existing model version amv-prod-base",
    ]
    assert dev["sources"] == [
        "dataset prompts: prompts.jsonl, imported into the local platform once by content hash",
        "model base: the folder tiny-adder, imported into the local platform (ImportLocalModel)",
    ]


def test_qfrun_target_in_the_environment_picks_the_target_as_the_option_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], local_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = repository(tmp_path, local_url)
    monkeypatch.setenv("QFRUN_TARGET", "prod")
    code, out, err = qfrun(capsys, "plan", str(path))
    assert code == 0, err
    assert out.startswith("Plan for promo on qianfan (target prod): 1 run.")
    assert "Sources on target prod:\n  dataset prompts: prompts.jsonl, read by no stage" in out
    code, out, err = qfrun(capsys, "plan", str(path), "--target", "dev", "--format", "markdown")
    assert code == 0, err
    assert "Plan for promo on local (target dev): 1 run." in out
    assert "**Sources on target `dev`**" in out


def test_every_verb_that_reads_the_state_takes_the_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], local_url: str
) -> None:
    path = repository(tmp_path, local_url)
    assert qfrun(capsys, str(path), "--target", "dev")[0] == 0
    code, out, _ = qfrun(capsys, "status", str(path), "--target", "dev", "--format", "json")
    assert code == 0
    assert json.loads(out)["stages"][0]["status"] == "succeeded"
    code, out, _ = qfrun(capsys, "status", str(path), "--target", "prod", "--format", "json")
    assert code == 0
    assert json.loads(out)["stages"][0]["status"] == "never run"
    code, out, _ = qfrun(capsys, "state", "list", str(path), "--target", "dev")
    assert code == 0
    assert "promo.dev.state.json" in out
    assert "succeeded" in out
    code, out, _ = qfrun(capsys, "report", str(path), "--target", "dev")
    assert code == 0
    assert str(tmp_path / ".qfrun" / "reports" / "promo.dev" / "report.html") in out
    code, _, err = qfrun(capsys, "diff", str(path), "--target", "dev")  # one run: nothing to compare with
    assert code == 2
    assert "the state file " + str(tmp_path / ".qfrun" / "promo.dev.state.json") in err
    code, _, err = qfrun(capsys, "destroy", str(path), "--target", "prod", "--yes")
    assert code == 0
    assert "Nothing to destroy" in err
    code, out, _ = qfrun(capsys, "graph", str(path), "--target", "dev", "--status")
    assert code == 0
    assert "base" in out


def test_validate_checks_every_target_and_names_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], local_url: str
) -> None:
    path = repository(tmp_path, local_url)
    code, _, err = qfrun(capsys, "validate", str(path))
    assert code == 0
    assert err == f"{path}: valid (1 stage; targets dev, prod).\n"
    code, _, err = qfrun(capsys, "validate", str(path), "--target", "prod")
    assert (code, err) == (0, f"{path}: valid (1 stage; target prod).\n")


def test_an_unknown_target_is_a_located_sentence_on_every_verb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], local_url: str
) -> None:
    path = repository(tmp_path, local_url)
    for verb in (
        ["validate"],
        ["plan"],
        ["run"],
        ["status"],
        ["destroy", "--yes"],
        ["report"],
        ["state", "list"],
    ):
        code, out, err = qfrun(capsys, *verb, str(path), "--target", "staging")
        assert code == 3, verb
        assert (
            f"{path}:3:1: --target staging: there is no target 'staging' (the targets are dev, prod)."
            in out + err
        )
    assert not (tmp_path / ".qfrun").exists() or not list((tmp_path / ".qfrun").glob("*.state.json"))


PROD_IMPORTS = PROMOTED.replace("    targets:\n      prod: {{version_id: amv-prod-base}}\n", "")


def test_without_an_id_for_prod_the_folder_is_planned_for_upload_to_bos_and_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], local_url: str
) -> None:
    path = repository(tmp_path, local_url, PROD_IMPORTS)
    prod = plan(capsys, path, "--target", "prod")
    assert prod["sources"] == [
        "dataset prompts: prompts.jsonl, read by no stage, so nothing is uploaded",
        "model base: the folder tiny-adder, uploaded to BOS once by content hash and imported "
        "(CreateCustomModel, sourceType Import)",
    ]


def test_the_same_file_runs_on_a_qianfan_target_through_bos_import(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The prod target speaks Qianfan's API (kind qianfan, signed with QIANFAN_ACCESS_KEY/SECRET_KEY) to a
    local platform standing in for the cloud (its address from the environment, as a pipeline may not name
    Qianfan's), so the import goes the cloud's way: BOS, then CreateCustomModelSet and CreateCustomModel."""
    keys = LocalKeys("ak-stand-in-cloud-1", "sk-stand-in-cloud-2")
    with serve_app(create_app(Home(tmp_path_factory.mktemp("cloud")), None, keys)) as cloud:
        for name, value in (
            ("QIANFAN_ACCESS_KEY", keys.access_key),
            ("QIANFAN_SECRET_KEY", keys.secret_key),
            ("QIANFAN_CONSOLE_API_BASE_URL", cloud),
            ("QIANFAN_BOS_ENDPOINT", cloud),
            ("QIANFAN_BOS_BUCKET", "qfrun-local"),
        ):
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("QFRUN_TARGET", raising=False)
        path = repository(tmp_path, "http://127.0.0.1:9", PROD_IMPORTS)  # dev is not used here
        code, _, err = qfrun(capsys, str(path), "--target", "prod", "--yes")
        assert code == 0, err
        assert "imported tiny-adder as model version amv-" in err
        code, out, _ = qfrun(capsys, "status", str(path), "--target", "prod", "--format", "json")
        assert json.loads(out)["stages"][0]["outputs"]["name"] == "base"
        code, _, err = qfrun(capsys, str(path), "--target", "prod", "--yes")
        assert code == 0, err
        assert "1 up to date" in err
    assert (tmp_path / ".qfrun" / "promo.prod.state.json").is_file()
    assert not (tmp_path / ".qfrun" / "promo.dev.state.json").exists()


def test_a_prod_plan_names_the_console_dataset_and_preset_endpoint_its_overlays_choose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], local_url: str
) -> None:
    text = PROMOTED.replace("{{version_id: amv-prod-base}}", "{{endpoint: ernie-x1-turbo-32k}}").replace(
        "  prompts: {{path: prompts.jsonl}}\n",
        "  prompts:\n    path: prompts.jsonl\n    targets: {{prod: {{qianfan_dataset_id: ds-prompts}}}}\n",
    )
    path = repository(tmp_path, local_url, text)
    assert plan(capsys, path, "--target", "prod")["sources"] == [
        "dataset prompts: the Qianfan dataset version ds-prompts",
        "model base: the preset endpoint ernie-x1-turbo-32k",
    ]
    code, out, _ = qfrun(capsys, "validate", str(path), "--format", "json")
    assert (code, json.loads(out)) == (0, {"valid": True, "problems": []})
