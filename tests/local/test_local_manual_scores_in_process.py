"""Manual scoring on the local platform, called in-process: the answers people score are listed in the
task's order, every score is checked before any is kept, and the scores finish the task exactly once.

The task is put in the store as the evaluation job leaves it (open for scoring, its answers on disk), so
no job runs; test_local_manual_eval.py takes the same path end to end through qfrun.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from runner.local.kinds.evaluation import KIND as EVALUATION_KIND
from runner.local.rows import AWAITING_SCORES, SUCCEEDED
from runner.platform.wire import SATISFACTION_WIRE

if TYPE_CHECKING:
    from conftest import Api

SAMPLES = "/v2/eval?Action=DescribeEvalManualSamples"
SCORES = "/v2/eval?Action=SubmitEvalManualScores"
ANSWERS = {
    "amv-a": [("1+1=?", "2", "2"), ("2+2=?", "4", "5")],
    "amv-b": [("1+1=?", "2", "11")],
}


def _open_task(api: Api, tmp_path: Path, *, status: str = AWAITING_SCORES, manual: bool = True) -> str:
    store = api.app.state.context.store
    models: dict[str, Any] = {}
    for version_id, rows in ANSWERS.items():
        path = tmp_path / f"{version_id}.jsonl"
        lines = [json.dumps({"prompt": p, "response": r, "output": o}) for p, r, o in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        models[version_id] = {"results_path": str(path), "metrics": {"accuracy": 0.5}}
    dimensions = [{"dimension": SATISFACTION_WIRE, "description": ""}, {"dimension": "format"}]
    params = {
        "manual": {"dimensions": dimensions, "range": [1, 5]} if manual else None,
        "eval_mode": "manual",
    }
    task = store.create_task(
        task_id="ame-open", kind=EVALUATION_KIND.store_kind, name="review", params=params
    )
    store.update_task(task.id, status=status, result={"models": models})
    return str(task.id)


def _score(version_id: str, index: int, satisfaction: int, format_: int = 3) -> dict[str, Any]:
    return {
        "modelId": version_id,
        "index": index,
        "scores": {SATISFACTION_WIRE: satisfaction, "format": format_},
    }


ALL = [_score("amv-a", 1, 5, 4), _score("amv-a", 2, 2, 2), _score("amv-b", 1, 5, 1)]


def _refused(response: Any, status: int = 400) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["message"])


def test_the_answers_are_listed_in_the_tasks_model_order(asgi_api: Api, tmp_path: Path) -> None:
    task_id = _open_task(asgi_api, tmp_path)
    samples = asgi_api.call("eval", "DescribeEvalManualSamples", {"taskId": task_id})["samples"]
    assert [(s["modelId"], s["index"], s["input"], s["expected"], s["output"]) for s in samples] == [
        ("amv-a", 1, "1+1=?", "2", "2"),
        ("amv-a", 2, "2+2=?", "4", "5"),
        ("amv-b", 1, "1+1=?", "2", "11"),
    ]


def test_the_scores_finish_the_task_with_each_dimensions_mean(asgi_api: Api, tmp_path: Path) -> None:
    task_id = _open_task(asgi_api, tmp_path)
    assert asgi_api.call("eval", "SubmitEvalManualScores", {"taskId": task_id, "scores": ALL}) == {}
    task = asgi_api.app.state.context.store.task(task_id)
    assert task.status == SUCCEEDED
    metrics_a = task.result["models"]["amv-a"]["metrics"]
    assert metrics_a == {
        "accuracy": 0.5,  # what the job measured stays
        SATISFACTION_WIRE: 3.5,
        "format": 3.0,
        "manualAvgScore": 3.5,
        "goodCaseProportion": 0.5,  # one of two answers got the top score
    }
    assert task.result["models"]["amv-b"]["metrics"]["goodCaseProportion"] == 1.0
    report = asgi_api.call("eval", "DescribeEvalTaskReport", {"taskId": task_id})
    assert {entry["modelId"] for entry in report} == {"amv-a", "amv-b"}
    # The same scores again (a client retrying) are accepted; other scores are not: the task is finished.
    assert asgi_api.call("eval", "SubmitEvalManualScores", {"taskId": task_id, "scores": ALL}) == {}
    changed = [_score("amv-a", 1, 1), *ALL[1:]]
    assert "is succeeded, not open for manual scoring" in _refused(
        asgi_api.post(SCORES, {"taskId": task_id, "scores": changed})
    )
    # Once finished, the answers can still be read.
    assert len(asgi_api.call("eval", "DescribeEvalManualSamples", {"taskId": task_id})["samples"]) == 3


@pytest.mark.parametrize(
    ("scores", "words"),
    [
        (ALL[:2], "no scores for amv-b#1."),
        ([*ALL, _score("amv-c", 1, 3)], "scores for answers the task does not have: amv-c#1."),
        ([*ALL, ALL[0]], "scores[3]: amv-a#1 is scored twice."),
        ([ALL[0], ALL[1], "five"], "scores[2] must be an object."),
        (
            [ALL[0], ALL[1], {**ALL[2], "scores": {SATISFACTION_WIRE: 5, "format": 1, "tone": 2}}],
            f"'tone' is not a dimension of this task ({SATISFACTION_WIRE}, format).",
        ),
        (
            [ALL[0], ALL[1], _score("amv-b", 1, 6)],
            f"the field '{SATISFACTION_WIRE}' must be between 1 and 5, not 6.",
        ),
        ([ALL[0], ALL[1], _score("amv-b", 0, 3)], "the field 'index' must be between 1 and"),
    ],
)
def test_scores_with_a_mistake_are_refused_and_the_task_stays_open(
    asgi_api: Api, tmp_path: Path, scores: list[Any], words: str
) -> None:
    task_id = _open_task(asgi_api, tmp_path)
    assert words in _refused(asgi_api.post(SCORES, {"taskId": task_id, "scores": scores}))
    assert asgi_api.app.state.context.store.task(task_id).status == AWAITING_SCORES


def test_a_task_without_manual_scoring_or_not_yet_open_has_no_answers_to_score(
    asgi_api: Api, tmp_path: Path
) -> None:
    automatic = _open_task(asgi_api, tmp_path, manual=False)
    assert _refused(asgi_api.post(SAMPLES, {"taskId": automatic})).endswith(
        f"the evaluation task {automatic!r} has no manual evaluation."
    )
    store = asgi_api.app.state.context.store
    store.update_task(automatic, params={"manual": {"dimensions": [], "range": [1, 5]}}, status="running")
    assert "is running; its answers come once it is open for manual scoring" in _refused(
        asgi_api.post(SAMPLES, {"taskId": automatic})
    )


def test_answers_gone_from_the_platform_are_named(asgi_api: Api, tmp_path: Path) -> None:
    task_id = _open_task(asgi_api, tmp_path)
    (tmp_path / "amv-b.jsonl").unlink()
    assert _refused(asgi_api.post(SAMPLES, {"taskId": task_id})) == (
        f"The answers of evaluation task {task_id!r} for amv-b are gone from this platform."
    )


def test_an_open_manual_evaluation_cannot_be_stopped(asgi_api: Api, tmp_path: Path) -> None:
    task_id = _open_task(asgi_api, tmp_path)
    response = asgi_api.post("/v2/eval?Action=StopEvalTask", {"taskId": task_id})
    assert response.status_code == 409
    assert response.json()["code"] == "Conflict"
    assert "score it (SubmitEvalManualScores) to finish it" in response.json()["message"]
    assert asgi_api.app.state.context.store.task(task_id).status == AWAITING_SCORES


@pytest.fixture
def model_and_data(asgi_api: Api, tmp_path: Path, fake_model: Callable[[Path], Path]) -> dict[str, str]:
    model = asgi_api.call("model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))})
    dataset = asgi_api.upload("d", '{"prompt": "1+1=?", "response": "2"}\n')
    return {"model": model["modelId"], "dataset": dataset["versionId"]}


def _manual_create(ids: dict[str, str], manual: dict[str, Any]) -> dict[str, Any]:
    entries = [{"modelId": ids["model"], "promptTemplate": "{input}"}]
    return {
        "taskName": "review",
        "evalObjectType": "model",
        "evalObjectConfig": {
            "evalModelConfig": {"versionId": ids["dataset"], "evalModelConfigList": entries}
        },
        "evalConfig": {"evalMode": "manual", "manualEvalConfig": manual},
    }


def test_a_manual_create_keeps_satisfaction_first_and_the_score_range(
    asgi_api: Api, model_and_data: dict[str, str]
) -> None:
    manual = {"evaluationDimension": [{"dimension": "format", "description": "The number alone."}]}
    task_id = asgi_api.call("eval", "CreateEvalTask", _manual_create(model_and_data, manual))
    kept = asgi_api.app.state.context.store.task(task_id).params["manual"]
    assert kept == {
        "dimensions": [
            {"dimension": SATISFACTION_WIRE, "description": ""},
            {"dimension": "format", "description": "The number alone."},
        ],
        "range": [1, 5],
    }
    assert asgi_api.call("eval", "DescribeEvalTask", {"taskId": task_id})["evalType"] == "manual"


@pytest.mark.parametrize(
    ("manual", "words"),
    [
        ({"evaluationDimension": ["format"]}, "evaluationDimension[0] must be an object."),
        (
            {"evaluationDimension": [{"dimension": "format"}, {"dimension": "format"}]},
            "the dimension 'format' is named twice.",
        ),
        (
            {"evaluationDimension": [{"dimension": f"d{n}"} for n in range(5)]},
            f"evaluationDimension may add at most 4 dimensions to {SATISFACTION_WIRE}, not 5.",
        ),
        (
            {"evaluationDimension": [{"dimension": "format"}], "scoreRange": {"min": 5, "max": 5}},
            "min (5) must be below max (5).",
        ),
    ],
)
def test_a_manual_create_with_bad_dimensions_is_refused(
    asgi_api: Api, model_and_data: dict[str, str], manual: dict[str, Any], words: str
) -> None:
    response = asgi_api.post("/v2/eval?Action=CreateEvalTask", _manual_create(model_and_data, manual))
    assert words in _refused(response)
    assert asgi_api.app.state.context.store.tasks() == []
