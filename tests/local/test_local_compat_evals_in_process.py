"""The v1 evaluation routes the official SDK calls, in-process, over a task at each point of its life: the
detail's v1 words, the report and the result export exist once the task is done, and the export's signed
link serves the rows in the console's columns.

Finished tasks are written to the store as the evaluation job leaves them, so no job runs here; the SDK
oracle (tests/sdk) drives the same routes end to end with real jobs.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from runner.local.kinds.evaluation import KIND as EVALUATION_KIND
from runner.local.rows import FAILED, PENDING, STOPPED, SUCCEEDED

if TYPE_CHECKING:
    from conftest import Api


@pytest.fixture
def ids(asgi_api: Api, tmp_path: Path, fake_model: Callable[[Path], Path]) -> dict[str, str]:
    model = asgi_api.call(
        "model", "ImportLocalModel", {"name": "adder", "path": str(fake_model(tmp_path / "m"))}
    )
    dataset = asgi_api.upload("sums", '{"prompt": "1+1=?", "response": "2"}\n')
    return {"version": model["modelId"], "set": model["modelSetId"], "dataset": dataset["versionId"]}


def _v1(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"/wenxinworkshop/{path}", body)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def _task(
    api: Api, ids: dict[str, str], tmp_path: Path, *, status: str, modes: list[str], task_id: str = "ame-5f"
) -> str:
    """An evaluation task as a v1 create stores it, moved to ``status`` with the job's results on disk."""
    results = tmp_path / f"{task_id}.jsonl"
    results.write_text(
        json.dumps({"prompt": "1+1=?", "response": "2", "output": "3"}) + "\n", encoding="utf-8"
    )
    store = api.app.state.context.store
    conf = {"evalMode": ",".join(modes), "scoreModes": ["accuracy"]}
    params = {
        "model_version_ids": [ids["version"]],
        "dataset_id": ids["dataset"],
        "eval_mode": ",".join(modes),
        "compat_v1": {"modes": modes, "evalStandardConf": conf},
    }
    store.create_task(task_id=task_id, kind=EVALUATION_KIND.store_kind, name="sdk_eval", params=params)
    models = {ids["version"]: {"results_path": str(results), "metrics": {"accuracy": 0.0}, "samples": 1}}
    message = "the job ran out of memory" if status == FAILED else ""
    store.update_task(task_id, status=status, result={"models": models}, message=message)
    return task_id


def test_a_done_rule_evaluation_answers_detail_report_and_export_in_v1_words(
    asgi_api: Api, ids: dict[str, str], tmp_path: Path
) -> None:
    task_id = _task(asgi_api, ids, tmp_path, status=SUCCEEDED, modes=["rule"])
    detail = _v1(asgi_api, "modelrepo/eval/detail", {"id": task_id})["result"]
    assert (detail["state"], detail["evaluationIdStr"], detail["evaluationId"]) == ("Done", task_id, 0x5F)
    assert detail["datasetName"] == "sums"
    assert detail["evalUnits"] == [
        {
            "modelIdStr": ids["set"],
            "modelVersionIdStr": ids["version"],
            "modelName": "adder",
            "modelVersion": "1",
        }
    ]
    assert "resultDatasetIdStr" not in detail["evalStandardConf"]  # only a manual task hands back its answers
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", detail["createTime"])  # v1's time, no zone
    report = _v1(asgi_api, "modelrepo/eval/report", {"id": task_id})["result"]
    assert [(r["modelVersionIdStr"], r["effectMetric"], r["sampleCount"]) for r in report] == [
        (ids["version"], {"accuracy": 0.0}, 1)
    ]
    export_id = _v1(asgi_api, "modelrepo/eval/result/export", {"id": task_id})["result"]["exportIDStr"]
    assert export_id == "amemt-5f"
    info = _v1(asgi_api, "modelrepo/eval/result/export/info", {"exportID": export_id})["result"]
    assert info["state"] == "Done"
    link = urlsplit(info["downloadUrl"])
    assert asgi_api.client is not None
    download = asgi_api.client.get(f"{link.path}?{link.query}")  # no credentials: the link is signed
    assert download.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.content)) as zipped:
        rows = [json.loads(line) for line in zipped.read("data.jsonl").decode("utf-8").splitlines()]
    assert rows == [
        [{"模型名称": "adder", "模型版本": "1", "Prompt问题": "1+1=?", "模型结果": "3", "预期回答": "2"}]
    ]
    cancelled = _v1(asgi_api, "modelrepo/eval/cancel", {"id": task_id})["result"]
    assert cancelled == {"result": False, "errorMessage": f"The evaluation {task_id} is Done, not running."}


def test_a_done_manual_evaluation_waits_for_labelling_and_hands_back_one_result_set(
    asgi_api: Api, ids: dict[str, str], tmp_path: Path
) -> None:
    task_id = _task(asgi_api, ids, tmp_path, status=SUCCEEDED, modes=["manual"])
    first = _v1(asgi_api, "modelrepo/eval/detail", {"id": task_id})["result"]
    again = _v1(asgi_api, "modelrepo/eval/detail", {"id": task_id})["result"]
    assert first["state"] == "DoingWithManualBegin"
    result_set = first["evalStandardConf"]["resultDatasetIdStr"]
    assert again["evalStandardConf"]["resultDatasetIdStr"] == result_set  # every poll, the same set
    exported = asgi_api.call("dataset", "ExportDatasetVersion", {"versionId": result_set})
    assert json.loads(exported["content"]) == {"prompt": "1+1=?", "response": "2", "completion": "3"}
    assert not list(asgi_api.app.state.context.home.task_dir(task_id).glob("sdk-result-*"))


@pytest.mark.parametrize(
    ("status", "state", "export"), [(PENDING, "Pending", "Pending"), (FAILED, "Fail", "Fail")]
)
def test_an_unfinished_evaluation_has_no_report_or_export_yet(
    asgi_api: Api, ids: dict[str, str], tmp_path: Path, status: str, state: str, export: str
) -> None:
    task_id = _task(asgi_api, ids, tmp_path, status=status, modes=["rule"])
    detail = _v1(asgi_api, "modelrepo/eval/detail", {"id": task_id})["result"]
    assert detail["state"] == state
    assert detail["errMsg"] == ("the job ran out of memory" if status == FAILED else "")
    report = _v1(asgi_api, "modelrepo/eval/report", {"id": task_id})
    assert report["error_msg"] == f"The evaluation {task_id} is {state}; its report exists once it is Done."
    info = _v1(asgi_api, "modelrepo/eval/result/export/info", {"exportID": "amemt-5f"})["result"]
    assert info == {"exportIDStr": "amemt-5f", "state": export}


def test_a_v2_task_over_result_sets_shows_on_the_v1_detail_with_its_mode(
    asgi_api: Api, ids: dict[str, str], tmp_path: Path
) -> None:
    store = asgi_api.app.state.context.store
    params = {
        "result_dataset_ids": {ids["version"]: ids["dataset"]},
        "dataset_id": None,
        "eval_mode": "rule,model",
    }
    store.create_task(task_id="ame-v2", kind=EVALUATION_KIND.store_kind, name="v2_eval", params=params)
    store.update_task("ame-v2", status=STOPPED, message="The task was stopped on request.")
    detail = _v1(asgi_api, "modelrepo/eval/detail", {"id": "ame-v2"})["result"]
    assert detail["evalStandardConf"] == {"evalMode": "rule,model"}
    assert [unit["modelVersionIdStr"] for unit in detail["evalUnits"]] == [ids["version"]]
    assert (detail["state"], detail["errMsg"], detail["datasetName"]) == (
        "Stopped",
        "The task was stopped on request.",
        "",
    )
    assert detail["evaluationId"] == 0  # "v2" is not hexadecimal: only the string id identifies it


def _create(ids: dict[str, str], **changes: Any) -> dict[str, Any]:
    body = {
        "name": "sdk_eval",
        "versionEvalInfo": [{"modelId": ids["set"], "modelVersionId": ids["version"]}],
        "datasetId": ids["dataset"],
        "evalStandardConf": {"evalMode": "rule", "scoreModes": ["accuracy", "similarity"]},
    }
    return {**body, **changes}


def test_a_v1_create_is_one_task_and_a_second_by_the_same_name_is_refused(
    asgi_api: Api, ids: dict[str, str]
) -> None:
    created = _v1(asgi_api, "modelrepo/eval/create", _create(ids))["result"]
    task = asgi_api.app.state.context.store.task(created["evalIdStr"])
    assert task.params["evaluators"] == [{"kind": "rule", "accuracy": True, "similarity": True}]
    assert created["evalId"] == int(created["evalIdStr"].removeprefix("ame-"), 16)
    again = _v1(asgi_api, "modelrepo/eval/create", _create(ids))
    assert (
        again["error_msg"]
        == "/wenxinworkshop/modelrepo/eval/create: an evaluation named 'sdk_eval' already exists."
    )
    assert len(asgi_api.app.state.context.store.tasks()) == 1
    manual = _v1(
        asgi_api,
        "modelrepo/eval/create",
        _create(ids, name="sdk_batch", evalStandardConf={"evalMode": "manual"}),
    )
    assert asgi_api.app.state.context.store.task(manual["result"]["evalIdStr"]).params["evaluators"] == []


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"versionEvalInfo": []}, "versionEvalInfo must name at least one model version."),
        (
            {"evalStandardConf": {"evalMode": "rule,vibes"}},
            "evalMode must be a comma list of rule, model and manual.",
        ),
        ({"datasetId": "ds-none"}, "The dataset version 'ds-none' does not exist on this platform."),
    ],
)
def test_a_v1_create_it_cannot_run_is_refused_in_the_v1_envelope(
    asgi_api: Api, ids: dict[str, str], changes: dict[str, Any], words: str
) -> None:
    payload = _v1(asgi_api, "modelrepo/eval/create", _create(ids, **changes))
    assert words in payload["error_msg"]
    assert payload["error_code"] == 336003
    assert asgi_api.app.state.context.store.tasks() == []
