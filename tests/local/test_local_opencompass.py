"""The opencompass evaluator end to end, as a user takes it: ``qfrun`` against the real local platform over
HTTP, an evaluation task whose job runs the benchmarks over the demo model; and the platform's refusals of a
benchmark it could not run, before any job starts."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from runner.benchmarks import built_in_text
from runner.files import ALLOW_PATHS_VARIABLE
from runner.platform.registry import PLATFORM_KINDS
from runner.testing.cli import invoke as qfrun
from runner.testing.pipelines import FAST

if TYPE_CHECKING:
    from conftest import Api

REPO = Path(__file__).resolve().parents[2]

PIPELINE = """\
version: 1
name: bench
platform: {{kind: local, url: '{url}'}}
datasets:
  smoke: {{path: {data}}}
stages:
  adder:
    type: model
    import: {model}
  bench:
    type: evaluate
    models: [adder]
    dataset: smoke
    params: {{temperature: 0, max_output_tokens: 5}}
    evaluators:
      - {{kind: rule, accuracy: true}}
      - {{kind: opencompass, benchmarks: [arith_mc, arith_gen, mine.json]}}
  answers:
    type: infer
    model: adder
    dataset: smoke
    params: {{temperature: 0, max_output_tokens: 5}}
  rescored:
    type: evaluate
    infer: [answers]
    evaluators:
      - {{kind: opencompass, benchmarks: [arith_gen]}}
  approved:
    type: model
    import: {model}
    if: ${{{{ stages.bench.outputs.metrics.arith_mc_accuracy >= 0.9 }}}}
"""


def _mine(abbr: str, answer_offset: int = 0) -> str:
    """A benchmark of the repository: generation, right when the answer contains the reference."""
    raw = json.loads(built_in_text("arith_gen"))
    raw["abbr"] = abbr
    raw["eval_cfg"] = {"evaluator": {"type": "ContainsEvaluator"}}
    for row in raw["splits"]["test"]:
        row["answer"] = str(int(row["answer"]) + answer_offset)
    return json.dumps(raw)


@pytest.mark.slow
def test_an_evaluation_runs_the_benchmarks_over_the_model_and_a_gate_reads_their_metrics(
    tmp_path: Path, platform_api: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    local = PLATFORM_KINDS["local"]
    monkeypatch.setitem(PLATFORM_KINDS, "local", dataclasses.replace(local, poll=FAST))
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv(ALLOW_PATHS_VARIABLE, str(REPO))  # the demo model and data, outside tmp_path
    monkeypatch.setenv("QFRUN_LOCAL_TOKEN", platform_api.token or "")
    (tmp_path / "mine.json").write_text(_mine("mine"), encoding="utf-8")
    pipeline = tmp_path / "bench.yaml"
    pipeline.write_text(
        PIPELINE.format(
            url=platform_api.url,
            data=REPO / "data" / "addition" / "smoke.jsonl",
            model=REPO / "models" / "tiny-adder",
        )
    )

    code, _, err = qfrun(capsys, "run", str(pipeline))
    assert code == 0, err
    code, out, _ = qfrun(capsys, "status", str(pipeline), "--format", "json")
    stages = {stage["id"]: stage for stage in json.loads(out)["stages"]}
    assert stages["bench"]["outputs"]["metrics"] == {
        "accuracy": 1.0,
        "arith_mc_accuracy": 1.0,
        "arith_gen_exact_match": 1.0,
        "mine_contains": 1.0,
    }
    assert stages["approved"]["status"] == "succeeded"
    # one record per benchmark item beside the dataset's samples, named by its benchmark, for the report
    kept = tmp_path / stages["bench"]["outputs"]["samples_file"]
    records = [json.loads(line) for line in kept.read_text(encoding="utf-8").splitlines()]
    items = Counter(record.get("benchmark", "") for record in records)
    assert items == {"": 10, "arith_mc": 40, "arith_gen": 40, "mine": 40}
    first = next(record for record in records if record.get("benchmark") == "arith_gen")
    assert (first["model"], first["index"], first["passed"]) == ("adder", 1, True)
    assert first["input"].startswith("Q: ")
    assert first["input"].endswith(" A:")
    assert first["metrics"] == {"arith_gen_exact_match": 1.0}
    # over earlier inference results too: the benchmarks still run over the model that made them
    assert stages["rescored"]["outputs"]["metrics"] == {"arith_gen_exact_match": 1.0}
    tasks = platform_api.call("eval", "DescribeEvalTasks", {"evalType": "auto"})["evalTaskList"]
    (task,) = [t for t in tasks if "bench" in t["taskName"]]
    report = platform_api.call("eval", "DescribeEvalTaskReport", {"taskId": task["taskId"]})
    assert report[0]["effectMetric"]["arith_mc_accuracy"] == 1.0

    # the repository's benchmark is an input: a change to it re-runs the evaluation, with its new score
    (tmp_path / "mine.json").write_text(_mine("mine", answer_offset=1), encoding="utf-8")
    code, out, _ = qfrun(capsys, "plan", str(pipeline), "--format", "json")
    plan = {stage["id"]: stage for stage in json.loads(out)["stages"]}
    assert plan["bench"]["action"] == "re-run"
    assert any("benchmark mine.json" in reason for reason in plan["bench"]["reasons"]), plan["bench"]
    code, _, err = qfrun(capsys, "run", str(pipeline))
    assert code == 0, err
    code, out, _ = qfrun(capsys, "status", str(pipeline), "--format", "json")
    stages = {stage["id"]: stage for stage in json.loads(out)["stages"]}
    assert stages["bench"]["outputs"]["metrics"]["mine_contains"] == 0.0


def _eval_body(ids: dict[str, str], benchmarks: Any) -> dict[str, Any]:
    return {
        "taskName": "eval-bench",
        "evalObjectType": "model",
        "evalObjectConfig": {
            "evalModelConfig": {
                "versionId": ids["dataset"],
                "evalModelConfigList": [{"modelId": ids["model"], "promptTemplate": "{input}"}],
            }
        },
        "evalConfig": {"evalMode": "rule", "openCompassEvalConfig": {"benchmarks": benchmarks}},
    }


@pytest.mark.parametrize(
    ("benchmarks", "words"),
    [
        ("arith_mc", "openCompassEvalConfig.benchmarks must be an array."),
        (["arith_mc"], "benchmarks[0] must be an object with the strings source and text."),
        ([{"source": "b.json", "text": "{"}], "benchmarks[0]: b.json: not JSON"),
        (
            [{"source": "a", "text": _mine("x")}, {"source": "b", "text": _mine("x")}],
            "benchmarks[1]: a second benchmark reports x_contains; give it another abbr.",
        ),
    ],
)
def test_a_benchmark_the_job_could_not_run_is_refused_at_create_and_stores_nothing(
    asgi_api: Api, tmp_path: Path, fake_model: Callable[[Path], Path], benchmarks: Any, words: str
) -> None:
    model = asgi_api.call("model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))})
    dataset = asgi_api.upload("d", '{"prompt": "1+1=?", "response": "2"}\n')
    ids = {"model": model["modelId"], "dataset": dataset["versionId"]}
    response = asgi_api.post("/v2/eval?Action=CreateEvalTask", _eval_body(ids, benchmarks))
    assert response.status_code == 400, response.text
    assert words in response.json()["message"]
    assert asgi_api.app.state.context.store.tasks() == []


def test_benchmarks_need_the_rule_mode_they_run_under(
    asgi_api: Api, tmp_path: Path, fake_model: Callable[[Path], Path]
) -> None:
    model = asgi_api.call("model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))})
    dataset = asgi_api.upload("d", '{"prompt": "1+1=?", "response": "2"}\n')
    body = _eval_body({"model": model["modelId"], "dataset": dataset["versionId"]}, [])
    body["evalConfig"] = {
        "evalMode": "model",
        "autoModelEvalConfig": {"apiName": "judge"},
        "openCompassEvalConfig": {"benchmarks": [{"source": "a", "text": _mine("a")}]},
    }
    response = asgi_api.post("/v2/eval?Action=CreateEvalTask", body)
    assert response.status_code == 400, response.text
    assert "runs no rule, so it takes no scoreModes, functions or benchmarks." in response.json()["message"]


def test_benchmark_items_come_back_to_the_client_by_benchmark_and_people_score_only_the_datasets_samples(
    tmp_path: Path, platform_api: Api
) -> None:
    """A finished task as the job leaves it (no model runs): a dataset sample and two benchmark items, both
    numbered 1 in their own series; a person's score for sample 1 is not the benchmark item's."""
    from runner.benchmarks import parse_benchmark
    from runner.local.engine.evaluators import evaluate
    from runner.local.engine.sample_records import benchmark_records
    from runner.local.kinds.evaluation import KIND, write_records
    from runner.platform import wire
    from runner.platform.client import PlatformClient
    from runner.platform.protocol import TaskKind, TaskRef
    from runner.platform.settings import settings_from_pipeline

    _, records = evaluate(
        [{"prompt": "1+1=?", "response": "2", "output": "2"}], [{"kind": "rule", "accuracy": True}]
    )
    gen = parse_benchmark(built_in_text("arith_gen"), "arith_gen")
    gen = dataclasses.replace(gen, test=gen.test[:2])
    records += benchmark_records(gen, [gen.test[0]["answer"], "no idea"])
    path = write_records(tmp_path / "records-amv-a.jsonl", records)
    store = platform_api.app.state.context.store
    manual = {"dimensions": [{"dimension": wire.SATISFACTION_WIRE, "description": ""}], "range": [1, 5]}
    task = store.create_task(task_id="ame-b", kind=KIND.store_kind, name="b", params={"manual": manual})
    models = {"amv-a": {"metrics": {}, "samples": 1, "records_path": str(path)}}
    store.update_task(
        task.id,
        status="succeeded",
        result={"models": models, "manual_scores": {"amv-a#1": {wire.SATISFACTION_WIRE: 1}}},
    )
    settings = settings_from_pipeline(
        "local", environ={"QFRUN_LOCAL_TOKEN": str(platform_api.token)}, local_base_url=platform_api.url
    )
    with PlatformClient(settings) as client:
        found = client.eval_samples(TaskRef(TaskKind.EVALUATION, "ame-b", "b"), 100) or []
    assert [(r.benchmark, r.index, r.passed) for r in found] == [
        ("", 1, False),  # right by the rule, poor by people
        ("arith_gen", 1, True),
        ("arith_gen", 2, False),
    ]
    assert found[0].metrics == {"accuracy": 1.0, "satisfaction": 1.0}
    assert found[1].metrics == {"arith_gen_exact_match": 1.0}  # no person scored a benchmark item
    assert (found[2].input, found[2].expected, found[2].output) == (
        f"Q: {gen.test[1]['question']} A:",
        gen.test[1]["answer"],
        "no idea",
    )
