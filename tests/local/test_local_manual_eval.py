"""Manual evaluation end to end, as a user takes it: ``qfrun`` against the real local platform over HTTP.

The first run infers, exports the scoring sheet (CSV and HTML form) into the pipeline's folder and exits 75
with the stage waiting; the task sits in ``RunningWithManualBegin`` and refuses to stop. A sheet with
mistakes fails the stage with row numbers; the filled sheet, on the next run, goes to the same task, whose
metrics a gate then reads. One evaluation task is created in all.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest

from runner.errors import WAITING_EXIT_CODE
from runner.files import ALLOW_PATHS_VARIABLE
from runner.platform.registry import PLATFORM_KINDS
from runner.testing.cli import invoke as qfrun
from runner.testing.pipelines import FAST

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

PIPELINE = """\
version: 1
name: manual
platform: {{kind: local, url: '{url}'}}
datasets:
  smoke: {{path: {data}}}
stages:
  adder:
    type: model
    import: {model}
  review:
    type: evaluate
    models: [adder]
    dataset: smoke
    params: {{temperature: 0, max_output_tokens: 5}}
    evaluators:
      - {{kind: rule, accuracy: true}}
      - kind: manual
        dimensions: [{{name: format, description: "The number alone."}}]
        scale: {{min: 1, max: 5}}
  approved:
    type: model
    import: {model}
    if: ${{{{ stages.review.outputs.metrics.satisfaction >= 4 }}}}
"""


def manual_tasks(api: Any) -> list[dict[str, Any]]:
    listed = api.call("eval", "DescribeEvalTasks", {"evalType": "manual"})
    return list(listed["evalTaskList"])


def read_sheet(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def write_sheet(path: Path, rows: list[dict[str, str]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    local = PLATFORM_KINDS["local"]
    monkeypatch.setitem(PLATFORM_KINDS, "local", dataclasses.replace(local, poll=FAST))
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv(
        ALLOW_PATHS_VARIABLE, str(REPO)
    )  # the demo model and data, outside the temporary folder


def test_a_manual_evaluation_waits_for_the_committed_sheet_then_its_metrics_open_the_gate(
    tmp_path: Path, platform_api: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a platform served here, not by `qfrun platform start`: its token comes as a user passes one
    monkeypatch.setenv("QFRUN_LOCAL_TOKEN", platform_api.token)
    pipeline = tmp_path / "manual.yaml"
    pipeline.write_text(
        PIPELINE.format(
            url=platform_api.url,
            data=REPO / "data" / "addition" / "smoke.jsonl",
            model=REPO / "models" / "tiny-adder",
        )
    )
    sheet, form = tmp_path / "scores" / "review.csv", tmp_path / "scores" / "review.html"

    code, _, err = qfrun(capsys, "run", str(pipeline))
    assert code == WAITING_EXIT_CODE, err
    assert f"review is waiting for scores in {sheet}" in err
    assert "approved" in err
    assert "is waiting for manual scores" in err
    rows = read_sheet(sheet)
    assert list(rows[0]) == ["model", "sample", "input", "expected", "output", "satisfaction", "format"]
    assert [(row["model"], row["sample"]) for row in rows] == [("adder", str(n)) for n in range(1, 11)]
    assert rows[0]["input"] == "57+57=?"
    assert rows[0]["expected"] == "114"
    assert rows[0]["output"]
    assert {row["satisfaction"] + row["format"] for row in rows} == {""}
    page = form.read_text(encoding="utf-8")
    assert "<script src" not in page
    assert "http" not in page.split("<script", 1)[1]
    assert "57+57=?" in page

    (task,) = manual_tasks(platform_api)
    assert task["state"] == "RunningWithManualBegin"
    assert task["evalType"] == "manual"
    refused = platform_api.post("/v2/eval?Action=StopEvalTask", {"taskId": task["taskId"]})
    assert refused.status_code == 409
    assert "includes manual evaluation, which cannot be stopped" in refused.json()["message"]

    code, out, _ = qfrun(capsys, "plan", str(pipeline), "--format", "json")
    plan = {stage["id"]: stage for stage in json.loads(out)["stages"]}
    assert plan["review"]["action"] == "resume"
    assert any(f"waiting for scores in {sheet}" in reason for reason in plan["review"]["reasons"])

    code, _, err = qfrun(capsys, "run", str(pipeline))  # nothing scored yet: still waiting, same task
    assert code == WAITING_EXIT_CODE, err
    assert [t["taskId"] for t in manual_tasks(platform_api)] == [task["taskId"]]

    scored = [{**row, "satisfaction": "5" if n < 8 else "3", "format": "4"} for n, row in enumerate(rows)]
    broken = [dict(row) for row in scored[:9]]  # sample 10 is missing
    broken[1]["format"] = "9"
    write_sheet(sheet, broken)
    code, _, err = qfrun(capsys, "run", str(pipeline))
    assert code == 1
    assert f"{sheet}:3: row 2: the format score '9' is not a whole number from 1 to 5." in err
    assert f"{sheet}: there is no row for model adder sample 10." in err

    write_sheet(sheet, scored)
    code, _, err = qfrun(capsys, "run", str(pipeline))
    assert code == 0, err
    code, out, _ = qfrun(capsys, "status", str(pipeline), "--format", "json")
    stages = {stage["id"]: stage for stage in json.loads(out)["stages"]}
    metrics = stages["review"]["outputs"]["metrics"]
    assert metrics["satisfaction"] == pytest.approx((8 * 5 + 2 * 3) / 10)
    assert metrics["manual_avg_score"] == pytest.approx(4.6)
    assert metrics["format"] == pytest.approx(4.0)
    assert metrics["good_case_proportion"] == pytest.approx(0.8)
    assert 0.0 <= metrics["accuracy"] <= 1.0  # the rule metric, computed with the answers
    assert stages["approved"]["status"] == "succeeded"  # the gate read the people's scores
    (done,) = manual_tasks(platform_api)
    assert (done["taskId"], done["state"]) == (task["taskId"], "Successed")

    # every answer kept with its rule metric and people's scores, and shown in the report
    kept = tmp_path / stages["review"]["outputs"]["samples_file"]
    assert kept == tmp_path / ".qfrun" / "results" / "manual" / "review" / "samples.jsonl"
    records = [json.loads(line) for line in kept.read_text(encoding="utf-8").splitlines()]
    assert [(r["model"], r["index"], r["input"]) for r in records][:1] == [("adder", 1, "57+57=?")]
    assert [r["metrics"]["satisfaction"] for r in records] == [5.0] * 8 + [3.0] * 2
    assert {"accuracy", "format"} <= set(records[0]["metrics"])
    assert all(r["passed"] is (r["metrics"]["accuracy"] == 1.0) for r in records)  # 5 and 3 pass on 1..5
    code, out, err = qfrun(capsys, "report", str(pipeline), "--out", str(tmp_path / "report"))
    assert code == 0, err
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert '<script type="application/json" id="qf-samples">' in page
    assert "57+57=?" in page
    assert "Failures in review" in (tmp_path / "report" / "report.md").read_text(encoding="utf-8")


def test_the_platform_checks_scores_computes_the_manual_metrics_and_takes_the_same_scores_twice(
    platform_api: Any, adder_dir: Path, addition_rows: Any
) -> None:
    model = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    dataset = platform_api.upload("eval3", "".join(json.dumps(row) + "\n" for row in addition_rows(3)))
    version = model["modelId"]
    task_id = platform_api.call(
        "eval",
        "CreateEvalTask",
        {
            "taskName": "qfrun-manual-1",
            "evalObjectType": "model",
            "evalObjectConfig": {
                "evalModelConfig": {
                    "versionId": dataset["versionId"],
                    "evalModelConfigList": [{"modelId": version, "promptTemplate": "{input}"}],
                }
            },
            "evalConfig": {
                "evalMode": "manual",
                "manualEvalConfig": {"evaluationDimension": [{"dimension": "tone", "description": "polite"}]},
            },
        },
    )
    platform_api.wait(
        lambda: (
            platform_api.call("eval", "DescribeEvalTask", {"taskId": task_id})["state"]
            == "RunningWithManualBegin"
        )
    )
    samples = platform_api.call("eval", "DescribeEvalManualSamples", {"taskId": task_id})["samples"]
    assert [(s["modelId"], s["index"]) for s in samples] == [(version, 1), (version, 2), (version, 3)]

    def submit(scores: list[dict[str, Any]]) -> Any:
        return platform_api.post(
            "/v2/eval?Action=SubmitEvalManualScores", {"taskId": task_id, "scores": scores}
        )

    good = [
        {"modelId": version, "index": n, "scores": {"满意度": 5 if n < 3 else 2, "tone": 4}}
        for n in (1, 2, 3)
    ]
    out_of_range = [*good[:2], {**good[2], "scores": {"满意度": 6, "tone": 4}}]
    unknown = [*good[:2], {**good[2], "scores": {"满意度": 5, "tone": 4, "humour": 1}}]
    refused = [submit(good[:2]), submit(out_of_range), submit(unknown)]
    assert [reply.status_code for reply in refused] == [400, 400, 400]
    assert f"no scores for {version}#3" in refused[0].json()["message"]
    assert "'满意度' must be between 1 and 5, not 6" in refused[1].json()["message"]
    assert "'humour' is not a dimension of this task (满意度, tone)" in refused[2].json()["message"]

    assert submit(good).status_code == 200
    assert submit(good).status_code == 200  # a retried request changes nothing
    assert platform_api.call("eval", "DescribeEvalTask", {"taskId": task_id})["state"] == "Successed"
    (entry,) = platform_api.call("eval", "DescribeEvalTaskReport", {"taskId": task_id})
    assert entry["evalMode"] == "manual"
    assert entry["effectMetric"]["满意度"] == pytest.approx(4.0)
    assert entry["effectMetric"]["manualAvgScore"] == pytest.approx(4.0)
    assert entry["effectMetric"]["goodCaseProportion"] == pytest.approx(2 / 3)
    assert entry["effectMetric"]["tone"] == pytest.approx(4.0)
