"""Per-sample results on the local platform over HTTP: ``DescribeEvalResults`` pages through a finished
evaluation's records as the job wrote them, people's scores join them, and qfrun's client reads them all.

The task is put in the store as the evaluation job leaves it (its records written by the job's own
evaluators and writer), so no model runs; test_local_manual_eval.py takes the whole path through qfrun.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from runner.local.engine.evaluators import evaluate
from runner.local.kinds.evaluation import KIND, write_records
from runner.local.rows import AWAITING_SCORES, SUCCEEDED
from runner.platform import wire
from runner.platform.client import PlatformClient
from runner.platform.protocol import TaskKind, TaskRef
from runner.platform.settings import settings_from_pipeline

if TYPE_CHECKING:
    from conftest import Api

ROWS = {
    "amv-a": [
        {"prompt": "1+1=?", "response": "2", "output": "2"},
        {"prompt": "2+2=?", "response": "4", "output": "5"},
        {"prompt": "</script><b>3+3</b>", "response": "6", "output": "6"},
    ],
    "amv-b": [{"prompt": "1+1=?", "response": "2", "output": "11"}],
}


@dataclass
class Served:
    api: Api
    client: PlatformClient
    store: Any
    tmp: Path


@pytest.fixture
def served(tmp_path: Path, platform_api: Api) -> Iterator[Served]:
    """The platform served on 127.0.0.1, called raw (``api``) and through qfrun's client."""
    environ = {"QFRUN_LOCAL_TOKEN": str(platform_api.token)}
    settings = settings_from_pipeline("local", environ=environ, local_base_url=platform_api.url)
    with PlatformClient(settings) as client:
        yield Served(platform_api, client, platform_api.app.state.context.store, tmp_path)


def _finished(served: Served, *, status: str = SUCCEEDED, manual: bool = False, scores: Any = None) -> str:
    models: dict[str, Any] = {}
    for version_id, rows in ROWS.items():
        metrics, records = evaluate(rows, [{"kind": "rule", "accuracy": True}])
        path = write_records(served.tmp / f"records-{version_id}.jsonl", records)
        models[version_id] = {"metrics": metrics, "samples": len(rows), "records_path": str(path)}
    dimensions = [{"dimension": wire.SATISFACTION_WIRE, "description": ""}]
    params = {"manual": {"dimensions": dimensions, "range": [1, 5]} if manual else None}
    task = served.store.create_task(task_id="ame-done", kind=KIND.store_kind, name="done", params=params)
    result: dict[str, Any] = {"models": models}
    if scores is not None:
        result["manual_scores"] = scores
    served.store.update_task(task.id, status=status, result=result)
    return str(task.id)


def test_the_records_come_in_the_tasks_model_order_with_the_exports_field_names(served: Served) -> None:
    task_id = _finished(served)
    page = served.api.call("eval", "DescribeEvalResults", {"taskId": task_id})
    assert (page["pageNo"], page["pageSize"], page["totalCount"]) == (1, 100, 4)
    first = page["results"][0]
    assert first == {
        "modelId": "amv-a",
        "index": 1,
        "prompt": "1+1=?",
        "prediction": "2",
        "completion": "2",
        "metrics": {"accuracy": 1.0},
        "passed": True,
    }
    assert [(r["modelId"], r["index"], r["passed"]) for r in page["results"]] == [
        ("amv-a", 1, True),
        ("amv-a", 2, False),
        ("amv-a", 3, True),
        ("amv-b", 1, False),
    ]
    second = served.api.call("eval", "DescribeEvalResults", {"taskId": task_id, "pageNo": 2, "pageSize": 3})
    assert [(r["modelId"], r["index"]) for r in second["results"]] == [("amv-b", 1)]


def test_the_client_reads_every_page_and_stops_at_its_limit(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = _finished(served)
    # the wire package's function eval_results hides its module's name: the module itself, from sys.modules
    monkeypatch.setattr(sys.modules["runner.platform.wire.eval_results"], "EVAL_RESULTS_PAGE_SIZE", 1)
    ref = TaskRef(TaskKind.EVALUATION, task_id, "done")
    records = served.client.eval_samples(ref, 100)
    assert records is not None
    assert [(r.version_id, r.index, r.output, r.passed) for r in records] == [
        ("amv-a", 1, "2", True),
        ("amv-a", 2, "5", False),
        ("amv-a", 3, "6", True),
        ("amv-b", 1, "11", False),
    ]
    assert records[2].input == "</script><b>3+3</b>"  # text, as the dataset holds it
    assert len(served.client.eval_samples(ref, 2) or []) == 2


def test_peoples_scores_join_the_records_and_decide_with_the_rules(served: Served) -> None:
    scores = {
        "amv-a#1": {wire.SATISFACTION_WIRE: 2},  # right by the rule, poor by people: fails
        "amv-a#2": {wire.SATISFACTION_WIRE: 5},
        "amv-a#3": {wire.SATISFACTION_WIRE: 4},
        "amv-b#1": {wire.SATISFACTION_WIRE: 1},
    }
    task_id = _finished(served, manual=True, scores=scores)
    ref = TaskRef(TaskKind.EVALUATION, task_id, "done")
    records = served.client.eval_samples(ref, 100) or []
    assert [(r.metrics, r.passed) for r in records[:3]] == [
        ({"accuracy": 1.0, "satisfaction": 2.0}, False),
        ({"accuracy": 0.0, "satisfaction": 5.0}, False),
        ({"accuracy": 1.0, "satisfaction": 4.0}, True),
    ]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"taskId": "ame-none"}, 404, "ame-none"),
        ({"taskId": "ame-done", "pageSize": 1001}, 400, "'pageSize' must be between 1 and 1000"),
        ({"taskId": "ame-done", "pageNo": 0}, 400, "'pageNo' must be between 1"),
    ],
)
def test_a_page_that_cannot_be_given_is_one_sentence(
    served: Served, body: dict[str, Any], status: int, words: str
) -> None:
    _finished(served)
    response = served.api.post("/v2/eval?Action=DescribeEvalResults", body)
    assert response.status_code == status, response.text
    assert words in response.json()["message"]


def test_an_evaluation_still_open_or_whose_records_are_gone_has_no_results(served: Served) -> None:
    task_id = _finished(served, status=AWAITING_SCORES, manual=True)
    response = served.api.post("/v2/eval?Action=DescribeEvalResults", {"taskId": task_id})
    assert response.status_code == 400
    assert "its results come once it has succeeded" in response.json()["message"]
    served.store.update_task(task_id, status=SUCCEEDED)
    (served.tmp / "records-amv-b.jsonl").unlink()
    response = served.api.post("/v2/eval?Action=DescribeEvalResults", {"taskId": task_id})
    assert response.status_code == 400
    assert "The records of evaluation task 'ame-done' for amv-b are gone." in response.json()["message"]


def test_qianfan_hands_no_records_back_through_the_api(served: Served) -> None:
    qianfan = settings_from_pipeline(
        "qianfan", environ={"QIANFAN_ACCESS_KEY": "ak", "QIANFAN_SECRET_KEY": "sk"}
    )
    with PlatformClient(qianfan) as client:
        assert client.eval_samples(TaskRef(TaskKind.EVALUATION, "ame-x", "x"), 10) is None
