"""Promotion of a pipeline whose evaluation reads a local dataset file: the same file, unchanged, runs on a
``qianfan`` target. A local platform stands in for the cloud (kind qianfan, signed with QIANFAN_ACCESS_KEY,
its address from QIANFAN_CONSOLE_API_BASE_URL), so the dataset goes Qianfan's way: its rows to BOS, then
CreateDataset and CreateImportTask [D1][D5], and the evaluation reads the imported version."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.local.app import create_app
from runner.local.credentials import LocalKeys
from runner.local.home import Home
from runner.testing.cli import invoke as qfrun
from runner.testing.sdk_oracle import Recorder
from runner.testing.serving import serve_app

REPO = Path(__file__).resolve().parents[2]
KEYS = LocalKeys("ak-stand-in-cloud-3", "sk-stand-in-cloud-4")

PROMOTED = """\
version: 1
name: promo-eval
platforms:
  dev: {kind: local, url: 'http://127.0.0.1:9'}
  prod: {kind: qianfan}
default_target: dev
datasets:
  eval: {path: eval.jsonl}
stages:
  base:
    type: model
    import: tiny-adder
  base_eval:
    type: evaluate
    models: [base]
    dataset: eval
    params: {temperature: 0, max_output_tokens: 5}
    evaluators:
      - {kind: rule, accuracy: true}
"""


@pytest.fixture
def cloud(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    recorder = Recorder(create_app(Home(tmp_path_factory.mktemp("cloud")), None, KEYS))
    with serve_app(recorder) as url:
        for name, value in (
            ("QIANFAN_ACCESS_KEY", KEYS.access_key),
            ("QIANFAN_SECRET_KEY", KEYS.secret_key),
            ("QIANFAN_CONSOLE_API_BASE_URL", url),
            ("QIANFAN_BASE_URL", url),
            ("QIANFAN_BOS_ENDPOINT", url),
            ("QIANFAN_BOS_BUCKET", "qfrun-local"),
        ):
            monkeypatch.setenv(name, value)
        for name in ("QFRUN_STATE", "QFRUN_TARGET", "CI"):
            monkeypatch.delenv(name, raising=False)
        yield recorder


def test_an_evaluation_on_a_local_file_is_promoted_unchanged_and_imports_the_file_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cloud: Recorder
) -> None:
    shutil.copytree(REPO / "models" / "tiny-adder", tmp_path / "tiny-adder")
    rows = (REPO / "data" / "addition" / "eval.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "eval.jsonl").write_text("".join(rows[:6]), encoding="utf-8")
    path = tmp_path / "promo.yaml"
    path.write_text(PROMOTED, encoding="utf-8")

    code, out, err = qfrun(capsys, "validate", str(path), "--target", "prod")
    assert (code, err) == (0, f"{path}: valid (2 stages; target prod).\n"), out
    code, out, err = qfrun(capsys, str(path), "--target", "prod", "--yes")
    assert code == 0, err
    actions = [call.query.get("Action") for call in cloud.calls]
    assert actions.count("CreateDataset") == 1
    assert actions.count("CreateImportTask") == 1
    evaluation = next(call for call in cloud.calls if call.query.get("Action") == "CreateEvalTask")
    imported = next(call for call in cloud.calls if call.query.get("Action") == "CreateDataset")
    version_id = imported.answer["result"]["versionId"]
    assert evaluation.body["evalObjectConfig"]["evalModelConfig"]["versionId"] == version_id
    code, out, _ = qfrun(capsys, "status", str(path), "--target", "prod", "--format", "json")
    stages = {stage["id"]: stage for stage in json.loads(out)["stages"]}
    assert stages["base_eval"]["status"] == "succeeded"

    # The same file once more: nothing is created again, the stages are up to date.
    (tmp_path / "eval.jsonl").touch()
    start = len(cloud.calls)
    code, _, err = qfrun(capsys, str(path), "--target", "prod", "--yes")
    assert code == 0, err
    assert "2 up to date" in err
    again = [call.query.get("Action") for call in cloud.since(start)]
    assert "CreateDataset" not in again
    assert "CreateImportTask" not in again
