"""Per-sample results on the local platform over HTTP, as Qianfan hands them out: CreateEvalResultExportTask
writes the evaluation's records to a file, DescribeEvalResultExportTask says where it is (a ``downloadUrl``
behind the console's gate, or a BOS object), and qfrun's client reads it back.

The task is put in the store as the evaluation job leaves it (its records written by the job's own
evaluators and writer), so no model runs; test_local_eval_export_run.py takes the whole path through qfrun.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from runner.errors import PlatformStatusError
from runner.local.api_eval_results import exports_dir
from runner.local.engine.evaluators import evaluate
from runner.local.kinds.evaluation import KIND, write_records
from runner.local.rows import AWAITING_SCORES, SUCCEEDED
from runner.platform import wire
from runner.platform.actions import evaluations
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
CONTENT = ["prompt", "prediction", "completion", "metrics"]
REF = TaskRef(TaskKind.EVALUATION, "ame-done", "done")


@dataclass
class Served:
    api: Api
    client: PlatformClient
    store: Any
    tmp: Path

    def exports(self) -> list[Path]:
        return sorted(exports_dir(self.api.app.state.context).glob("*.json"))


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


def _rows(zipped: bytes) -> list[dict[str, Any]]:
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        assert archive.namelist() == ["data.jsonl"]
        text = archive.read("data.jsonl").decode("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_the_export_is_a_zip_of_every_record_in_model_order_with_the_exports_names(served: Served) -> None:
    task_id = _finished(served)
    created = served.api.call(
        "eval",
        "CreateEvalResultExportTask",
        {"evalId": task_id, "storageType": "sysStorage", "exportContent": CONTENT},
    )
    export_id = created["taskId"]
    assert export_id.startswith("amemt-")
    described = served.api.call("eval", "DescribeEvalResultExportTask", {"taskId": export_id})
    link = described.pop("downloadUrl")
    assert described == {
        "taskId": export_id,
        "evalId": task_id,
        "exportContent": CONTENT,
        "state": "Succeeded",
        "storageType": "sysStorage",
        "storagePath": "",
    }
    assert link.startswith(served.api.url + "/")
    response = httpx.get(link, headers={"Authorization": f"Bearer {served.api.token}"}, timeout=30)
    assert response.status_code == 200
    rows = _rows(response.content)
    assert rows[0] == {
        "modelId": "amv-a",
        "index": 1,
        "prompt": "1+1=?",
        "prediction": "2",
        "completion": "2",
        "metrics": {"accuracy": 1.0},
        "passed": True,
    }
    assert [(r["modelId"], r["index"], r["passed"]) for r in rows] == [
        ("amv-a", 1, True),
        ("amv-a", 2, False),
        ("amv-a", 3, True),
        ("amv-b", 1, False),
    ]


def test_the_export_holds_only_the_content_asked_for(served: Served) -> None:
    task_id = _finished(served)
    body = {"evalId": task_id, "exportContent": ["prompt", "system"]}  # storageType defaults to sysStorage
    export_id = served.api.call("eval", "CreateEvalResultExportTask", body)["taskId"]
    link = served.api.call("eval", "DescribeEvalResultExportTask", {"taskId": export_id})["downloadUrl"]
    rows = _rows(httpx.get(link, headers={"Authorization": f"Bearer {served.api.token}"}, timeout=30).content)
    assert rows[0] == {"modelId": "amv-a", "index": 1, "prompt": "1+1=?", "passed": True, "system": ""}


def test_the_download_is_behind_the_consoles_gate(served: Served) -> None:
    task_id = _finished(served)
    export_id = served.api.call(
        "eval", "CreateEvalResultExportTask", {"evalId": task_id, "exportContent": CONTENT}
    )["taskId"]
    link = served.api.call("eval", "DescribeEvalResultExportTask", {"taskId": export_id})["downloadUrl"]
    assert httpx.get(link, timeout=30).status_code == 401
    assert httpx.get(link, headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
    rebinding = {"Authorization": f"Bearer {served.api.token}", "Host": "attacker.example"}
    assert httpx.get(link, headers=rebinding, timeout=30).status_code == 403
    missing = link.replace(export_id, "amemt-000000000000")
    assert (
        httpx.get(missing, headers={"Authorization": f"Bearer {served.api.token}"}, timeout=30).status_code
        == 404
    )


def test_the_client_reads_the_export_back_and_stops_at_its_limit(served: Served) -> None:
    _finished(served)
    kept: list[str] = []
    records = served.client.eval_samples(REF, 100, on_export=kept.append)
    assert records is not None
    assert [(r.version_id, r.index, r.output, r.passed) for r in records] == [
        ("amv-a", 1, "2", True),
        ("amv-a", 2, "5", False),
        ("amv-a", 3, "6", True),
        ("amv-b", 1, "11", False),
    ]
    assert records[2].input == "</script><b>3+3</b>"  # text, as the dataset holds it
    assert records[0].metrics == {"accuracy": 1.0}
    assert len(kept) == 1
    assert kept[0].startswith("amemt-")
    assert len(served.client.eval_samples(REF, 2, export_id=kept[0]) or []) == 2


def test_a_crash_between_create_and_describe_reuses_the_recorded_export(served: Served) -> None:
    _finished(served)
    recorded: list[str] = []

    def crash_after_recording(export_id: str) -> None:
        recorded.append(export_id)  # the stage's intent is on disk here...
        raise KeyboardInterrupt  # ...and qfrun dies before it describes the export

    with pytest.raises(KeyboardInterrupt):
        served.client.eval_samples(REF, 100, on_export=crash_after_recording)
    assert len(served.exports()) == 1

    again: list[str] = []
    records = served.client.eval_samples(REF, 100, export_id=recorded[0], on_export=again.append)
    assert again == []  # no second export was started
    assert len(served.exports()) == 1
    assert [(r.version_id, r.index) for r in records or []] == [
        ("amv-a", 1),
        ("amv-a", 2),
        ("amv-a", 3),
        ("amv-b", 1),
    ]


def test_an_export_the_platform_no_longer_has_is_made_again(served: Served) -> None:
    _finished(served)
    made: list[str] = []
    records = served.client.eval_samples(REF, 100, export_id="amemt-000000000000", on_export=made.append)
    assert len(records or []) == 4
    assert len(made) == 1
    assert made[0] != "amemt-000000000000"


def test_a_bos_export_is_read_from_the_platforms_bos(served: Served) -> None:
    task_id = _finished(served)
    served.api.app.state.objects.create_bucket("results")
    body = {"evalId": task_id, "storageType": "BOS", "bucket": "results", "exportContent": CONTENT}
    export_id = served.api.call("eval", "CreateEvalResultExportTask", body)["taskId"]
    described = served.api.call("eval", "DescribeEvalResultExportTask", {"taskId": export_id})
    assert described["storagePath"] == f"bos:/results/qianfan-eval-exports/{task_id}/{export_id}.zip"
    assert "downloadUrl" not in described
    records = served.client.eval_samples(REF, 100, export_id=export_id)
    assert [(r.version_id, r.index, r.passed) for r in records or []][-1] == ("amv-b", 1, False)


def test_peoples_scores_join_the_records_and_decide_with_the_rules(served: Served) -> None:
    scores = {
        "amv-a#1": {wire.SATISFACTION_WIRE: 2},  # right by the rule, poor by people: fails
        "amv-a#2": {wire.SATISFACTION_WIRE: 5},
        "amv-a#3": {wire.SATISFACTION_WIRE: 4},
        "amv-b#1": {wire.SATISFACTION_WIRE: 1},
    }
    _finished(served, manual=True, scores=scores)
    records = served.client.eval_samples(REF, 100) or []
    assert [(r.metrics, r.passed) for r in records[:3]] == [
        ({"accuracy": 1.0, "satisfaction": 2.0}, False),
        ({"accuracy": 0.0, "satisfaction": 5.0}, False),
        ({"accuracy": 1.0, "satisfaction": 4.0}, True),
    ]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"evalId": "ame-none", "exportContent": CONTENT}, 404, "ame-none"),
        ({"evalId": "ame-done", "exportContent": ["answers"]}, 400, "exportContent takes"),
        ({"evalId": "ame-done", "exportContent": []}, 400, "exportContent takes"),
        ({"evalId": "ame-done", "storageType": "disk", "exportContent": CONTENT}, 400, "storageType"),
        (
            {"evalId": "ame-done", "storageType": "BOS", "exportContent": CONTENT},
            400,
            "needs the field 'bucket'",
        ),
        (
            {"evalId": "ame-done", "storageType": "BOS", "bucket": "nope", "exportContent": CONTENT},
            404,
            "'nope' does not exist",
        ),
    ],
)
def test_an_export_that_cannot_be_made_is_one_sentence(
    served: Served, body: dict[str, Any], status: int, words: str
) -> None:
    _finished(served)
    response = served.api.post("/v2/eval?Action=CreateEvalResultExportTask", body)
    assert response.status_code == status, response.text
    assert words in response.json()["message"]
    assert served.exports() == []


def test_an_evaluation_still_open_or_whose_records_are_gone_has_no_export(served: Served) -> None:
    task_id = _finished(served, status=AWAITING_SCORES, manual=True)
    body = {"evalId": task_id, "exportContent": CONTENT}
    response = served.api.post("/v2/eval?Action=CreateEvalResultExportTask", body)
    assert response.status_code == 400
    assert "can be exported once it has succeeded" in response.json()["message"]
    served.store.update_task(task_id, status=SUCCEEDED)
    (served.tmp / "records-amv-b.jsonl").unlink()
    response = served.api.post("/v2/eval?Action=CreateEvalResultExportTask", body)
    assert response.status_code == 400
    assert "The records of evaluation task 'ame-done' for amv-b are gone." in response.json()["message"]
    with pytest.raises(PlatformStatusError, match="for amv-b are gone"):
        served.client.eval_samples(REF, 10)


def test_an_unknown_export_is_a_404_that_names_it(served: Served) -> None:
    for export_id in ("amemt-000000000000", "../platform"):
        response = served.api.post("/v2/eval?Action=DescribeEvalResultExportTask", {"taskId": export_id})
        assert response.status_code == 404
        assert repr(export_id) in response.json()["message"]


def test_an_export_larger_than_qfrun_reads_back_is_refused_on_both_storages(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = _finished(served)
    monkeypatch.setattr(evaluations, "MAX_EXPORT_BYTES", 100)  # the zip of four records is larger
    with pytest.raises(PlatformStatusError, match="holds more than 100 bytes, more than qfrun reads back"):
        served.client.eval_samples(REF, 10)
    served.api.app.state.objects.create_bucket("results")
    body = {"evalId": task_id, "storageType": "BOS", "bucket": "results", "exportContent": CONTENT}
    export_id = served.api.call("eval", "CreateEvalResultExportTask", body)["taskId"]
    with pytest.raises(PlatformStatusError, match=r"bytes, more than qfrun reads back \(100\)"):
        served.client.eval_samples(REF, 10, export_id=export_id)
