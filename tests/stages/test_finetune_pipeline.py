"""The finetune stage and the model stage's ``train_task_id`` through ``qfrun run`` on the real local platform
over HTTP: the job, the task in it and the published version (CreateCustomModel, sourceType Train) are made
once each, the stage's output is the published version, a second run makes nothing, and a second pipeline
publishes the finished task by its id."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from runner.local.app import create_app
from runner.local.credentials import load_or_create
from runner.local.home import Home
from runner.stages.model import ModelStage
from runner.testing.cli import invoke
from runner.testing.serving import serve_app

ROOT = Path(__file__).resolve().parents[2]
ROWS = (ROOT / "data" / "subtraction" / "train.jsonl").read_text(encoding="utf-8").splitlines(True)


def _state(work: Path, name: str) -> dict:
    return json.loads((work / ".qfrun" / f"{name}.state.json").read_text(encoding="utf-8"))


def _console(url: str, token: str, route: str, action: str, body: dict) -> dict:
    reply = httpx.post(
        f"{url}/v2/{route}?Action={action}", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    return reply.json()["result"]


def test_a_finetune_stage_trains_in_a_job_publishes_once_and_a_model_stage_publishes_a_task_by_id(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Home(tmp_path / "home")
    work = tmp_path / "repo"
    work.mkdir()
    (work / ".git").mkdir()
    (work / "train.jsonl").write_text("".join(ROWS[:12]), encoding="utf-8")
    (work / "check.jsonl").write_text("".join(ROWS[12:16]), encoding="utf-8")
    adder = ROOT / "models" / "tiny-adder"
    with serve_app(create_app(home)) as url:
        token = load_or_create(home).token
        monkeypatch.setenv("QFRUN_LOCAL_TOKEN", token)
        platform = f"{{kind: local, url: '{url}'}}"
        first = work / "tune.yaml"
        first.write_text(
            f"version: 1\nname: tune\nplatform: {platform}\n"
            "datasets:\n  train: {path: train.jsonl}\n  check: {path: check.jsonl}\n"
            f"stages:\n  base: {{type: model, import: {adder}, name: tiny-adder}}\n"
            "  tuned:\n    type: finetune\n    model: base\n    dataset: train\n"
            "    validation_dataset: check\n"
            "    hyperparameters: {max_steps: 2, batch_size: 4, logging_steps: 1, seed: 7}\n",
            encoding="utf-8",
        )
        code, out, err = invoke(capsys, "run", str(first), "--allow-path", str(adder))
        assert code == 0, out + err
        record = _state(work, "tune")["stages"]["tuned"]
        outputs = record["outputs"]
        assert record["intent"]["job_id"] == outputs["job_id"]  # recorded before the task was created
        version = _console(url, token, "model", "DescribeModel", {"modelId": outputs["version_id"]})
        assert version["sourceInfo"] == {"sourceType": "Train", "taskId": outputs["task_id"]}
        assert version["modelSetId"] == outputs["model_id"]  # the base model's own model set
        assert [point["step"] for point in outputs["eval_curve"]] == [1, 2]
        assert outputs["tokens_per_second"] > 0

        code, out, err = invoke(capsys, "run", str(first), "--allow-path", str(adder))
        assert code == 0, out + err
        jobs = _console(url, token, "finetuning", "DescribeFineTuningJobs", {})["jobList"]
        tasks = _console(url, token, "finetuning", "DescribeFineTuningTasks", {"jobId": outputs["job_id"]})
        sets = _console(url, token, "model", "DescribeCustomModelSets", {})["customModelSetList"]
        assert len(jobs) == 1
        assert len(tasks["taskList"]) == 1
        assert [len(item["modelIds"]) for item in sets] == [2]  # the base and the one published version

        second = work / "publish.yaml"
        second.write_text(
            f"version: 1\nname: publish\nplatform: {platform}\nstages:\n"
            f"  trained: {{type: model, train_task_id: {outputs['task_id']}, name: subtractor}}\n",
            encoding="utf-8",
        )
        code, out, err = invoke(capsys, "run", str(second))
        assert code == 0, out + err
        published = _state(work, "publish")["stages"]["trained"]["outputs"]
        detail = _console(url, token, "model", "DescribeModel", {"modelId": published["version_id"]})
        assert detail["modelName"] == "subtractor"
        assert detail["sourceInfo"] == {"sourceType": "Train", "taskId": outputs["task_id"]}
        # another pipeline (its own state) publishing the same task into the same model finds that version
        again = work / "again.yaml"
        again.write_text(second.read_text(encoding="utf-8").replace("name: publish", "name: again"), "utf-8")
        code, out, err = invoke(capsys, "run", str(again))
        assert code == 0, out + err
        assert _state(work, "again")["stages"]["trained"]["outputs"]["version_id"] == published["version_id"]


def test_the_plan_names_the_task_and_step_a_model_stage_publishes() -> None:
    stage = ModelStage()
    assert stage.plan(
        stage.planned_fields("m", {"train_task_id": "task-1", "checkpoint_step": 50})
    ).summary == ("publish fine-tuning task task-1 (step 50) as a model version")
    assert stage.plan(stage.planned_fields("m", {"train_task_id": "task-1"})).summary.endswith(
        "(its final step) as a model version"
    )
    assert stage.makes_model_version({"train_task_id": "task-1"})


def test_a_model_stage_names_its_checkpoint_step_and_name_only_with_what_they_qualify(
    tmp_path: Path, capsys
) -> None:
    (tmp_path / ".git").mkdir()
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: p\nplatform: local\nstages:\n"
        "  a: {type: model, version_id: amv-1, checkpoint_step: 3}\n"
        "  b: {type: model, version_id: amv-1, name: x}\n"
        "  c: {type: model, train_task_id: task-1, checkpoint_step: 0}\n",
        encoding="utf-8",
    )
    code, out, err = invoke(capsys, "validate", str(path))
    assert code == 3  # an invalid pipeline
    assert (
        "p.yaml:5:56: stages.a.checkpoint_step: checkpoint_step picks a step of a training task" in out + err
    )
    assert "p.yaml:6:45: stages.b.name: name is the model an import or a published training task" in out + err
    assert "p.yaml:7:60: stages.c.checkpoint_step: 0 is less than the minimum of 1." in out + err
