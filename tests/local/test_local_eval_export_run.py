"""An evaluate stage's per-sample records end to end: ``qfrun run`` against the real local platform over HTTP
reads them through the result export (CreateEvalResultExportTask, DescribeEvalResultExportTask, the
``downloadUrl``), keeps the export's id in the stage's intent, and writes ``samples.jsonl`` exactly as the
paged local action it replaces did: the job's records, mapped field by field.

A run that stops after the export was made and recorded, before its file was read, resumes with the same
export: one export in all.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from runner.files import ALLOW_PATHS_VARIABLE
from runner.local.api_eval_results import exports_dir
from runner.local.engine.sample_records import DECIDING, scaled_pass
from runner.platform.actions import evaluations
from runner.platform.registry import PLATFORM_KINDS
from runner.testing.cli import invoke as qfrun
from runner.testing.pipelines import FAST

pytestmark = pytest.mark.slow  # the demo model answers ten questions

REPO = Path(__file__).resolve().parents[2]

# The demo model evaluated on the smoke rows by rule, in flow style (the shape of the manual and opencompass
# tests' pipelines, which spell it out in block style).
PIPELINE = """\
{{version: 1, name: exported, platform: {{kind: local, url: '{url}'}}, datasets: {{smoke: {{path: {data}}}}},
  stages: {{adder: {{type: model, import: {model}}},
           review: {{type: evaluate, models: [adder], dataset: smoke,
                    params: {{temperature: 0, max_output_tokens: 5}},
                    evaluators: [{{kind: rule, accuracy: true, similarity: true}}]}}}}}}
"""


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PLATFORM_KINDS, "local", dataclasses.replace(PLATFORM_KINDS["local"], poll=FAST))
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv(ALLOW_PATHS_VARIABLE, str(REPO))  # the demo model and data


def today(platform_api: Any, task_id: str) -> list[dict[str, Any]]:
    """samples.jsonl as the paged DescribeEvalResults path wrote it, from the job's own records."""
    task = platform_api.app.state.context.store.task(task_id)
    rows = []
    for version_id, entry in task.result["models"].items():
        for line in Path(entry["records_path"]).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            deciding = [float(v) for name, v in record["metrics"].items() if name in DECIDING]
            rows.append(
                {
                    "model": "adder",
                    "version_id": version_id,
                    "index": record["index"],
                    "passed": scaled_pass(deciding),
                    "metrics": record["metrics"],
                    "input": record["input"],
                    "expected": record["expected"],
                    "output": record["output"],
                    "reason": record.get("reason", ""),
                }
            )
    return rows


def test_the_stage_reads_its_records_through_one_export_even_across_a_crash(
    tmp_path: Path, platform_api: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QFRUN_LOCAL_TOKEN", platform_api.token)
    pipeline = tmp_path / "exported.yaml"
    pipeline.write_text(
        PIPELINE.format(
            url=platform_api.url,
            data=REPO / "data" / "addition" / "smoke.jsonl",
            model=REPO / "models" / "tiny-adder",
        )
    )
    real_download = evaluations.download

    def power_cut(*args: Any, **kwargs: Any) -> bytes:
        raise SystemExit(137)  # qfrun dies after the export was created and recorded, before reading it

    monkeypatch.setattr(evaluations, "download", power_cut)
    code, _, err = qfrun(capsys, "run", str(pipeline))
    assert code == 137, err
    made = sorted(exports_dir(platform_api.app.state.context).glob("*.json"))
    assert len(made) == 1
    state = json.loads((tmp_path / ".qfrun" / "exported.state.json").read_text(encoding="utf-8"))
    intent = state["stages"]["review"]["intent"]
    task_id = state["stages"]["review"]["task"]["task_id"]
    assert intent[f"kept:result_export:{task_id}"] == made[0].stem

    monkeypatch.setattr(evaluations, "download", real_download)
    code, _, err = qfrun(capsys, "run", str(pipeline))
    assert code == 0, err
    assert sorted(exports_dir(platform_api.app.state.context).glob("*.json")) == made  # the same export
    kept = tmp_path / ".qfrun" / "results" / "exported" / "review" / "samples.jsonl"
    rows = [json.loads(line) for line in kept.read_text(encoding="utf-8").splitlines()]
    assert rows == today(platform_api, task_id)
    assert [row["index"] for row in rows] == list(range(1, 11))
    assert "kept 10 per-sample records" in err
