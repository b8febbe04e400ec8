"""Lineage, before/after and the loss curve of a real run: the local platform served over HTTP on 127.0.0.1,
real training (a few steps of tiny-adder on subtractions), a side-by-side evaluation, a compression and a
service, then ``qfrun report`` and ``qfrun status`` as a user runs them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from runner.local.app import create_app
from runner.local.credentials import load_or_create
from runner.local.home import Home
from runner.testing.cli import invoke
from runner.testing.serving import serve_app

ROOT = Path(__file__).resolve().parents[2]
SUBTRACTION = ROOT / "data" / "subtraction"

PIPELINE = """\
version: 1
name: lineage
platform: {{kind: local, url: '{url}'}}
datasets:
  train: {{path: train.jsonl}}
  heldout: {{path: heldout.jsonl}}
stages:
  base: {{type: model, import: {model}, name: tiny-adder}}
  tuned:
    type: finetune
    model: base
    dataset: train
    method: full
    hyperparameters: {{max_steps: 4, batch_size: 8, logging_steps: 1, checkpoint_interval: 2, seed: 7}}
  scores:
    type: evaluate
    models: [base, tuned]
    dataset: heldout
    params: {{temperature: 0, max_output_tokens: 5}}
    evaluators: [{{kind: rule, accuracy: true}}]
  w8: {{type: compress, model: tuned, strategy: quantization, weight: W8A16C16}}
  serve:
    type: deploy
    model: w8
    service:
      name: lineage
      url_suffix: lineage_w8
      replicas: 1
      resource_type: CPU-1-1
      billing: {{payment: postpaid, charge: computing_unit}}
"""


def _lines(path: Path, count: int) -> str:
    return "".join(path.read_text(encoding="utf-8").splitlines(True)[:count])


@pytest.mark.slow  # real training, inference, compression and a service: job processes on the CPU
def test_a_real_run_reports_the_loss_curve_the_gain_and_where_each_version_came_from(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    (work / ".git").mkdir()  # the repository the pipeline's paths are confined to
    train = _lines(SUBTRACTION / "train.jsonl", 32)
    (work / "train.jsonl").write_text(train, encoding="utf-8")
    (work / "heldout.jsonl").write_text(_lines(SUBTRACTION / "eval.jsonl", 8), encoding="utf-8")
    home = Home(tmp_path / "home")
    monkeypatch.setenv("QFRUN_ALLOW_PATHS", str(ROOT / "models"))
    with serve_app(create_app(home)) as url:
        monkeypatch.setenv("QFRUN_LOCAL_TOKEN", load_or_create(home).token)
        pipeline = work / "lineage.yaml"
        pipeline.write_text(PIPELINE.format(url=url, model=ROOT / "models" / "tiny-adder"), encoding="utf-8")
        code, out, err = invoke(capsys, "run", str(pipeline))
        assert code == 0, out + err

        code, out, _ = invoke(capsys, "status", str(pipeline), "--format", "json")
        assert code == 0
        status = json.loads(out)
        state = json.loads((work / ".qfrun" / "lineage.state.json").read_text(encoding="utf-8"))
        code, text, _ = invoke(capsys, "status", str(pipeline))
        code, _, _ = invoke(capsys, "report", str(pipeline), "--out", str(tmp_path / "report"))
        assert code == 0

    nodes = {node["stage"]: node for node in status["lineage"]}
    assert [(stage, node["source"]) for stage, node in nodes.items()] == [
        ("base", None),
        ("tuned", "base"),
        ("w8", "tuned"),
    ]
    tuned = nodes["tuned"]
    task_id = state["stages"]["tuned"]["task"]["task_id"]
    assert task_id.startswith("task-")  # the local platform's fine-tuning task, named as Qianfan's are
    assert tuned["task"] == f"finetuning task {task_id}"
    assert tuned["version_id"] == state["stages"]["tuned"]["outputs"]["version_id"]
    assert tuned["inputs"] == {"dataset train": hashlib.sha256(train.encode()).hexdigest()}
    assert [scored["stage"] for scored in tuned["evaluations"]] == ["scores"]
    assert nodes["w8"]["services"] == [{"stage": "serve", "url_suffix": "lineage_w8"}]
    assert "    └─ tuned: version " in text
    assert f"finetuning task {task_id}" in text

    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    (training,) = report["training"]
    assert [step for step, _ in training["curves"]["loss"]] == [1, 2, 3, 4]  # every logged step
    (gain,) = report["gains"]
    assert (gain["model"], gain["source"], gain["evaluation"], gain["metric"]) == (
        "tuned",
        "base",
        "scores",
        "accuracy",
    )
    assert gain["delta"] == pytest.approx(gain["after"] - gain["before"])
    markdown = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "- `tuned`: logged at steps 1 to 4; training loss " in markdown
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert 'aria-label="loss of tuned"' in html
    assert "<h2>Before and after</h2>" in html
