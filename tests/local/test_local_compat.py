"""The v1 compatibility routes (runner/local/compat) over raw HTTP: envelope, refusals, links, dataset info.

These need no model runtime; tests/sdk runs the same routes through the official SDK end to end.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
import pytest

from runner.local.compat.envelope import LinkSigner


def v1(api: Any, path: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    response = api.post(f"/wenxinworkshop/{path}", body, **kwargs)
    assert response.status_code == 200, response.text  # v1 refusals are HTTP 200 with error_code
    payload: dict[str, Any] = response.json()
    assert isinstance(payload["log_id"], str)
    return payload


def test_version_detail_names_the_set_in_v1_words(platform_api, fake_model, tmp_path) -> None:
    folder = fake_model(tmp_path / "m")
    version = platform_api.call("model", "ImportLocalModel", {"name": "adder", "path": str(folder)})

    payload = v1(platform_api, "modelrepo/modelVersionDetail", {"modelVersionId": version["modelId"]})

    result = payload["result"]
    assert result["modelIdStr"] == version["modelSetId"]
    assert result["modelVersionIdStr"] == version["modelId"]
    assert result["state"] == "Ready"
    assert "error_code" not in payload


def test_an_unknown_id_is_a_v1_error_that_names_it(platform_api) -> None:
    payload = v1(platform_api, "modelrepo/modelVersionDetail", {"modelVersionId": "amv-missing"})

    assert payload["error_code"] == 336003
    assert "amv-missing" in payload["error_msg"]
    assert "result" not in payload


def test_a_missing_field_and_an_unknown_path_are_refused(platform_api) -> None:
    missing = v1(platform_api, "modelrepo/modelVersionDetail", {})
    unknown = v1(platform_api, "modelrepo/nothingHere", {})

    assert "modelVersionId" in missing["error_msg"]
    assert unknown["error_code"] == 336003
    assert "/wenxinworkshop/modelrepo/nothingHere" in unknown["error_msg"]


def test_dataset_info_and_its_export_link(platform_api, addition_rows) -> None:
    """[D7]: the version id goes in as datasetId; the answer carries status and success besides result."""
    text = "".join(json.dumps(row) + "\n" for row in addition_rows(3))
    dataset = platform_api.upload("addition", text)

    info = v1(platform_api, "dataset/info", {"datasetId": dataset["versionId"]})
    records = v1(platform_api, "dataset/exportRecord", {"datasetId": dataset["versionId"]})

    assert (info["status"], info["success"]) == (200, True)
    version = info["result"]["versionInfo"]
    assert version["datasetPK"] == dataset["versionId"]
    assert version["entityCount"] == 3
    assert version["exportStatus"] == 2
    (record,) = records["result"]
    assert record["finishTime"] == version["modifyTime"]
    download = httpx.get(record["downloadUrl"], timeout=30)
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert archive.read(f"{dataset['versionId']}.jsonl").decode() == text


def test_a_tampered_export_link_is_refused(platform_api, addition_rows) -> None:
    dataset = platform_api.upload("addition", "".join(json.dumps(r) + "\n" for r in addition_rows(1)))
    (record,) = v1(platform_api, "dataset/exportRecord", {"datasetId": dataset["versionId"]})["result"]

    tampered = httpx.get(record["downloadUrl"][:-4] + "0000", timeout=30)
    unsigned = httpx.get(record["downloadUrl"].split("?")[0], timeout=30)

    assert tampered.status_code == 403
    assert unsigned.status_code == 403


def test_link_signer_refuses_expired_and_foreign_links() -> None:
    signer = LinkSigner()
    link = signer.sign("http://h", "/_compat/exports/datasets/x.zip", now=1000.0)
    query = dict(httpx.URL(link).params)

    assert signer.check("/_compat/exports/datasets/x.zip", query["expires"], query["signature"], now=1000.0)
    assert not signer.check("/_compat/exports/datasets/x.zip", query["expires"], query["signature"], now=1e12)
    assert not signer.check(
        "/_compat/exports/datasets/y.zip", query["expires"], query["signature"], now=1000.0
    )
    assert not LinkSigner().check(
        "/_compat/exports/datasets/x.zip", query["expires"], query["signature"], now=1000.0
    )


@pytest.mark.parametrize(
    ("conf", "words"),
    [
        ({"evalMode": "model", "appId": 1}, "appId"),
        ({"evalMode": "rule"}, "scoreModes"),
        ({"evalMode": "rule", "scoreModes": ["bleu"]}, "similarity and/or accuracy"),
        ({"evalMode": ""}, "evalMode"),
    ],
)
def test_eval_create_refuses_what_it_cannot_run(platform_api, fake_model, tmp_path, conf, words) -> None:
    version = platform_api.call(
        "model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))}
    )
    dataset = platform_api.upload("d", '{"prompt": "1+1=?", "response": "2"}\n')
    body = {
        "name": "sdk_eval_x",
        "versionEvalInfo": [{"modelId": version["modelSetId"], "modelVersionId": version["modelId"]}],
        "datasetId": dataset["versionId"],
        "evalStandardConf": conf,
    }

    payload = v1(platform_api, "modelrepo/eval/create", body)

    assert words in payload["error_msg"]


def test_eval_create_refuses_a_version_of_another_set(platform_api, fake_model, tmp_path) -> None:
    version = platform_api.call(
        "model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))}
    )
    dataset = platform_api.upload("d", '{"prompt": "1+1=?", "response": "2"}\n')
    body = {
        "name": "sdk_eval_y",
        "versionEvalInfo": [{"modelId": "am-other", "modelVersionId": version["modelId"]}],
        "datasetId": dataset["versionId"],
        "evalStandardConf": {"evalMode": "manual"},
    }

    payload = v1(platform_api, "modelrepo/eval/create", body)

    assert "am-other" in payload["error_msg"]


def test_eval_detail_of_an_unknown_task_is_refused(platform_api) -> None:
    payload = v1(platform_api, "modelrepo/eval/detail", {"id": "ame-000000000000"})

    assert "ame-000000000000" in payload["error_msg"]


def test_an_evaluation_made_through_v2_shows_on_the_v1_routes(platform_api, fake_model, tmp_path) -> None:
    version = platform_api.call(
        "model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))}
    )
    dataset = platform_api.upload("d", '{"prompt": "1+1=?", "response": "2"}\n')
    body = {
        "taskName": "v2_eval",
        "evalObjectType": "model",
        "evalObjectConfig": {
            "evalModelConfig": {
                "versionId": dataset["versionId"],
                "evalModelConfigList": [{"modelId": version["modelId"], "promptTemplate": "{input}"}],
            }
        },
        "evalConfig": {"evalMode": "rule", "autoRuleEvalConfig": {"scoreModes": ["accuracy"]}},
    }
    task_id = platform_api.call("eval", "CreateEvalTask", body)

    detail = v1(platform_api, "modelrepo/eval/detail", {"id": task_id})["result"]

    assert detail["evaluationIdStr"] == task_id
    assert detail["evalStandardConf"] == {"evalMode": "rule"}
    assert detail["datasetIdStr"] == dataset["versionId"]
    assert [unit["modelVersionIdStr"] for unit in detail["evalUnits"]] == [version["modelId"]]
    assert detail["state"] in ("Pending", "Doing", "Fail")  # the fake model cannot really run


def test_service_list_has_no_preset_services(platform_api) -> None:
    payload = v1(platform_api, "service/list", {})

    assert payload["result"] == {"common": [], "custom": []}


def test_v1_routes_need_the_platforms_credentials(platform_home, serve_platform) -> None:
    with serve_platform(platform_home, "s3cret-token") as api:
        refused = v1(api, "service/list", {}, token="wrong")
        allowed = v1(api, "service/list", {})

    assert refused["error_code"] == 14
    assert "result" not in refused
    assert allowed["result"]["custom"] == []


def test_eval_cancel_stops_a_waiting_task_once(platform_api, fake_model, tmp_path) -> None:
    """[E10]: v1 cancel answers a nested {result, errorMessage}."""
    version = platform_api.call(
        "model", "ImportLocalModel", {"name": "m", "path": str(fake_model(tmp_path / "m"))}
    )
    dataset = platform_api.upload("d", '{"prompt": "1+1=?", "response": "2"}\n')
    body = {
        "name": "sdk_eval_cancel",
        "versionEvalInfo": [{"modelId": version["modelSetId"], "modelVersionId": version["modelId"]}],
        "datasetId": dataset["versionId"],
        "evalStandardConf": {"evalMode": "rule", "scoreModes": ["accuracy"]},
    }
    eval_id = v1(platform_api, "modelrepo/eval/create", body)["result"]["evalIdStr"]

    first = v1(platform_api, "modelrepo/eval/cancel", {"id": eval_id})["result"]
    second = v1(platform_api, "modelrepo/eval/cancel", {"id": eval_id})["result"]
    detail = v1(platform_api, "modelrepo/eval/detail", {"id": eval_id})["result"]

    assert first == {"result": True, "errorMessage": ""}
    assert second["result"] is False
    assert detail["state"] == "Stopped"
