"""Deployed services: replicas start, answer the chat paths, stop when the prepaid term ends or on release."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from runner.local.services import HOUR_ENV, MONTH_HOURS
from runner.local.store import Store

pytestmark = pytest.mark.slow
CHAT = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"


def _create(api, model, name, suffix, replicas=1, months=1):
    """CreateService as [S1]: prepaid by the month on a documented resource type; returns both ids."""
    body = {
        "modelSetId": model["modelSetId"],
        "modelId": model["modelId"],
        "name": name,
        "urlSuffix": suffix,
        "resourceConfig": {"type": "GPU-1-1", "region": "bj", "replicasCount": replicas},
        "billing": {
            "paymentTiming": "Prepaid",
            "reservation": {"reservationTimeUnit": "Month", "reservationLength": months},
        },
    }
    result = api.call("service", "CreateService", body)
    assert set(result) == {"serviceId", "instanceId"}
    return result["serviceId"], result["instanceId"]


def _settled(api, service_id, *, leaving=("Deploying",)):
    def check():
        service = api.call("service", "DescribeService", {"serviceId": service_id})
        return None if service["runStatus"] in leaving else service

    return check


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_service_answers_both_chat_paths_and_stops_when_its_compute_is_released(
    platform_api, platform_home, adder_dir
):
    model = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    service_id, instance_id = _create(platform_api, model, "adder-svc", "adder", replicas=2)
    service = platform_api.wait(_settled(platform_api, service_id), timeout=120)
    assert service["runStatus"] == "Serving", service["failedReason"]
    assert service["url"] == f"{platform_api.url}{CHAT}adder"
    assert service["resourceConfig"] == {"type": "GPU-1-1", "region": "bj", "replicasCount": 2}
    listed = platform_api.call("service", "DescribeServices", {"name": "ADDER", "runStatus": ["Serving"]})
    assert [item["serviceId"] for item in listed["serviceList"]] == [service_id]  # a fuzzy name filter
    assert platform_api.call("service", "DescribeServices", {"runStatus": ["Stopped"]})["serviceList"] == []

    response = platform_api.post(CHAT + "adder", {"messages": [{"role": "user", "content": "2+3=?"}]})
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["result"].strip() == "5"
    assert reply["usage"]["completion_tokens"] > 0
    openai = platform_api.post(
        "/v1/chat/completions", {"model": "adder", "messages": [{"role": "user", "content": "40+2=?"}]}
    )
    assert openai.status_code == 200, openai.text
    assert openai.json()["choices"][0]["message"]["content"].strip() == "42"

    prompts = [f"{a}+{a}=?" for a in range(10, 18)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda p: platform_api.post(CHAT + "adder", {"messages": [{"role": "user", "content": p}]}),
                prompts,
            )
        )
    assert all(answer.status_code == 200 for answer in answers)

    # A deployed service can be the LLM judge of an evaluation (the job asks it over HTTP).
    results = platform_api.upload("judged", '{"prompt": "2+3=?", "response": "5", "prediction": "5"}\n')
    judged = {
        "taskName": "qfrun-et-judge",
        "evalObjectType": "inferDataset",
        "evalObjectConfig": {
            "evalInferDatasetConfig": {
                # an uploaded result set names its model (local: Qianfan reads it from the set itself)
                "evalInferDatasetConfigList": [
                    {"inferDatasetId": results["versionId"], "modelId": model["modelId"]}
                ]
            }
        },
        "evalConfig": {"evalMode": "model", "autoModelEvalConfig": {"apiName": "adder", "maxScore": 100}},
    }
    eval_id = platform_api.call("eval", "CreateEvalTask", judged)
    scored = platform_api.wait(
        lambda: (
            (e := platform_api.call("eval", "DescribeEvalTask", {"taskId": eval_id}))["state"]
            not in ("Queued", "Running")
            and e
        ),
        timeout=60,
    )
    assert scored["state"] == "Successed", scored["failedReason"]
    (report,) = platform_api.call("eval", "DescribeEvalTaskReport", {"taskId": eval_id})
    assert (report["modelId"], report["evalMode"]) == (model["modelId"], "model")
    assert "avgJudgeScore" in report["effectMetric"]

    conflict = platform_api.post(
        "/v2/service?Action=CreateService",
        {
            "modelSetId": model["modelSetId"],
            "modelId": model["modelId"],
            "name": "other",
            "urlSuffix": "adder",
            "billing": {"paymentTiming": "Postpaid", "chargeType": "Tokens"},
        },
    )
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "Conflict"

    pids = [replica["pid"] for replica in Store(platform_home.db_path).service(service_id).replicas]
    assert len(pids) == 2
    release = {"serviceId": service_id, "instanceId": instance_id}
    assert platform_api.call("serviceresources", "ReleaseComputeUnit", release) is True
    stopped = platform_api.call("service", "DescribeService", {"serviceId": service_id})
    assert stopped["runStatus"] == "Stopped"
    assert stopped["failedReason"] == "The service's compute was released, so its replicas were stopped."
    assert not any(_alive(pid) for pid in pids)
    gone = platform_api.post(CHAT + "adder", {"messages": [{"role": "user", "content": "1+1=?"}]})
    assert gone.status_code == 404
    assert gone.json()["error_code"] == 336005
    # Releasing again is harmless, on either documented route.
    assert platform_api.call("serviceresources", "ReleaseComputeUnit", release) is True
    assert platform_api.call("computeunit", "ReleaseComputeUnit", {"instanceId": instance_id}) is True


def test_a_service_is_redeployed_after_a_restart_and_still_expires_at_its_term(
    platform_home, serve_platform, adder_dir, monkeypatch
):
    # A billed month lasts 60 s: two deploys (before and after the restart) must fit in it on a busy machine.
    monkeypatch.setenv(HOUR_ENV, str(60 / MONTH_HOURS))
    with serve_platform(platform_home) as api:
        model = api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
        service_id, _ = _create(api, model, "short-svc", "short", months=1)
        serving = api.wait(_settled(api, service_id), timeout=20)
        assert serving["runStatus"] == "Serving", serving["failedReason"]
        old_pids = [replica["pid"] for replica in Store(platform_home.db_path).service(service_id).replicas]
    assert not any(_alive(pid) for pid in old_pids)  # a stopping platform stops its replicas
    with serve_platform(platform_home) as api:
        again = api.wait(_settled(api, service_id), timeout=20)
        assert again["runStatus"] == "Serving", again["failedReason"]
        assert again["expireTime"] == serving["expireTime"]
        response = api.post(CHAT + "short", {"messages": [{"role": "user", "content": "1+1=?"}]})
        assert response.status_code == 200, response.text
        expired = api.wait(_settled(api, service_id, leaving=("Deploying", "Serving")), timeout=80)
        assert expired["runStatus"] == "Stopped"
        assert expired["failedReason"] == "The service's prepaid term ended, so its replicas were stopped."
        response = api.post(CHAT + "short", {"messages": [{"role": "user", "content": "1+1=?"}]})
        assert response.status_code == 404


def test_a_replica_that_cannot_load_the_model_fails_the_deployment_with_its_reason(
    platform_api, fake_model, tmp_path
):
    model = platform_api.call(
        "model", "ImportLocalModel", {"name": "broken", "path": str(fake_model(tmp_path / "m"))}
    )
    service_id, _ = _create(platform_api, model, "broken-svc", "broken")
    failed = platform_api.wait(_settled(platform_api, service_id), timeout=120)
    assert failed["runStatus"] == "Failed"
    assert failed["failedReason"].startswith(
        "Deploying service broken-svc failed: a replica exited with status"
    )
