"""The local platform's service actions against the reference [S1]-[S6], over HTTP, shape by shape.

Replicas of these services never answer (the model is a dummy folder, or the row is written straight into
the store), so only the API is under test here; test_local_services.py deploys a real model.
"""

from __future__ import annotations

import copy
import sqlite3
from typing import Any

import pytest

from runner.local.rows import DEPLOYING
from runner.local.store import _SCHEMA, SCHEMA_VERSION, Store

# The reference's CreateService example request, verbatim (section 6.1, [S1]).
EXAMPLE_S1: dict[str, Any] = {
    "modelSetId": "am-3aa2***5c9",
    "modelId": "amv-ur1u1***722s",
    "name": "apitest_1226_3",
    "urlSuffix": "apitest_1226_3",
    "deploymentConfig": {
        "qps": 1,
        "replicaComputeUnitCount": 1,
        "replicasCount": 1,
        "deploymentComputeUnitList": [{"instanceId": "unit-gdqb1Fot", "deploymentReplicasCount": 2}],
    },
    "protocolVersion": 1,
}
# DescribeService's result fields [S2]; the local platform adds the four of LOCAL_FIELDS.
DOCUMENTED = {
    "serviceId",
    "modelSetId",
    "modelId",
    "name",
    "description",
    "url",
    "serviceType",
    "runStatus",
    "updateStatus",
    "chargeType",
    "payType",
    "chargeStatus",
    "resourceConfig",
}
LOCAL_FIELDS = {"urlSuffix", "instanceId", "expireTime", "failedReason", "createTime"}
RUN_STATUSES = {"New", "Deploying", "Serving", "Failed", "Stopped"}


@pytest.fixture
def model(platform_api, fake_model, tmp_path) -> dict[str, Any]:
    folder = fake_model(tmp_path / "dummy")
    result: dict[str, Any] = platform_api.call(
        "model", "ImportLocalModel", {"name": "dummy", "path": str(folder)}
    )
    return result


def buying(model: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "modelSetId": model["modelSetId"],
        "modelId": model["modelId"],
        "name": "qa",
        "urlSuffix": "qa_w4",
        "resourceConfig": {"type": "GPU-1-1", "replicasCount": 1},
        "billing": {
            "paymentTiming": "Prepaid",
            "reservation": {"reservationTimeUnit": "Month", "reservationLength": 1},
        },
    }
    return {**body, **changes}


def refused(api, body: dict[str, Any], status: int = 400) -> dict[str, Any]:
    response = api.post("/v2/service?Action=CreateService", body)
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()
    assert set(error) == {"requestId", "code", "message"}
    return error


def test_the_reference_example_is_read_and_refused_only_for_its_redacted_model_ids(platform_api) -> None:
    error = refused(platform_api, EXAMPLE_S1, 404)
    assert error["message"] == "The model version 'amv-ur1u1***722s' does not exist on this platform."


def test_the_reference_example_deploys_on_its_compute_unit(platform_api, model) -> None:
    body = copy.deepcopy(EXAMPLE_S1)
    body["modelSetId"], body["modelId"] = model["modelSetId"], model["modelId"]
    result = platform_api.call("service", "CreateService", body)
    assert set(result) == {"serviceId", "instanceId"}
    assert result["serviceId"].startswith("svco-")
    assert result["instanceId"] == "unit-gdqb1Fot"  # deployed on the unit the example names
    service = platform_api.call("service", "DescribeService", {"serviceId": result["serviceId"]})
    assert set(service) == DOCUMENTED | LOCAL_FIELDS
    assert service["runStatus"] in RUN_STATUSES
    assert (service["name"], service["serviceType"], service["payType"]) == (
        "apitest_1226_3",
        "chat",
        "Postpay",
    )
    assert service["resourceConfig"] == {"replicasCount": 1, "qps": 1.0}
    assert service["url"].endswith("/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/apitest_1226_3")
    assert service["expireTime"] == ""  # compute already bought: no prepaid term here


def test_a_prepaid_service_expires_after_its_months_and_a_postpaid_one_never(platform_api, model) -> None:
    prepaid = platform_api.call("service", "CreateService", buying(model))
    tokens = platform_api.call(
        "service",
        "CreateService",
        buying(model, urlSuffix="qa_tokens", billing={"paymentTiming": "Postpaid", "chargeType": "Tokens"}),
    )
    for created in (prepaid, tokens):
        assert created["instanceId"].startswith("unit-")
    first = platform_api.call("service", "DescribeService", {"serviceId": prepaid["serviceId"]})
    second = platform_api.call("service", "DescribeService", {"serviceId": tokens["serviceId"]})
    assert first["expireTime"] > first["createTime"]
    assert (first["payType"], first["chargeType"]) == ("Prepay", "ComputingUnit")
    assert (second["expireTime"], second["payType"], second["chargeType"]) == ("", "Postpay", "Tokens")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"name": "twenty-one-characters"},
            "CreateService: the name 'twenty-one-characters' has 21 characters; Qianfan allows 2 to 20.",
        ),
        (
            {"urlSuffix": "qa_w4_"},
            "CreateService: the urlSuffix 'qa_w4_' must be 2 to 20 lower-case letters, digits, '_' or '-', "
            "starting and ending with a letter or digit.",
        ),
        (
            {
                "billing": {
                    "paymentTiming": "Prepaid",
                    "reservation": {"reservationTimeUnit": "Month", "reservationLength": 13},
                }
            },
            "CreateService billing reservation: the field 'reservationLength' must be between 1 and 12, "
            "not 13.",
        ),
        (
            {"resourceConfig": {"type": "GPU-9-9", "replicasCount": 1}},
            "CreateService resourceConfig: the field 'type' must be one of CPU-1-1, GPU-1-1, GPU-1-2, "
            "GPU-1-4, GPU-1-8, GPU-5-1, GPU-5-2, GPU-6-1, GPU-6-2, GPU-7-1, GPU-7-2, GPU-I-2, GPU-I-4, "
            "CPU-I-2, not 'GPU-9-9'.",
        ),
        (
            {"billing": {"paymentTiming": "Postpaid"}},
            "CreateService billing needs the field 'chargeType' (a string).",
        ),
        (
            {"billing": {"paymentTiming": "Postpaid", "chargeType": "ComputingUnit"}, "resourceConfig": None},
            "CreateService needs the field 'resourceConfig' (an object).",
        ),
        (
            {"resourceConfig": {"type": "GPU-1-1", "qps": 60}},
            "CreateService resourceConfig: the field 'qps' must be a number above 0 and at most 50, not 60.",
        ),
    ],
)
def test_create_refuses_what_qianfan_refuses(
    platform_api, model, changes: dict[str, Any], message: str
) -> None:
    body = {key: value for key, value in buying(model, **changes).items() if value is not None}
    assert refused(platform_api, body)["message"] == message


def test_what_the_official_sdk_sends_is_accepted_as_a_local_tolerance(platform_api, model) -> None:
    sdk = buying(
        model,
        serviceType="chat",
        resourceConfig={"type": "GPU-I-2", "replicasCount": 1},
        billing={
            "paymentTiming": "Prepaid",
            "reservation": {"reservationTimeUnit": "Hour", "reservationLength": 2},
        },
    )
    created = platform_api.call("service", "CreateService", sdk)
    service = platform_api.call("service", "DescribeService", {"serviceId": created["serviceId"]})
    assert service["resourceConfig"]["type"] == "GPU-I-2"
    release = {"serviceId": created["serviceId"], "instanceId": created["instanceId"]}
    assert platform_api.call("charge", "ReleaseComputeUnit", release) is True  # where the SDK sends it


def test_names_are_not_unique_but_a_live_url_suffix_is(platform_api, model) -> None:
    one = platform_api.call("service", "CreateService", buying(model))
    two = platform_api.call("service", "CreateService", buying(model, urlSuffix="qa_w8"))
    assert one["serviceId"] != two["serviceId"]
    assert refused(platform_api, buying(model), 409)["code"] == "Conflict"


def test_release_checks_the_instance_and_a_second_release_is_harmless(platform_api, model) -> None:
    created = platform_api.call("service", "CreateService", buying(model))
    wrong = platform_api.post(
        "/v2/serviceresources?Action=ReleaseComputeUnit",
        {"serviceId": created["serviceId"], "instanceId": "unit-other"},
    )
    assert wrong.status_code == 404
    assert (
        wrong.json()["message"]
        == f"The compute instance 'unit-other' does not run service {created['serviceId']}."
    )
    for _ in range(2):
        assert (
            platform_api.call("computeunit", "ReleaseComputeUnit", {"instanceId": created["instanceId"]})
            is True
        )
    service = platform_api.call("service", "DescribeService", {"serviceId": created["serviceId"]})
    assert service["runStatus"] == "Stopped"
    unknown = platform_api.post("/v2/computeunit?Action=ReleaseComputeUnit", {"instanceId": "unit-none"})
    assert unknown.status_code == 404


def stored(platform_home, model: dict[str, Any], count: int, status: str = DEPLOYING) -> list[str]:
    """Services written straight into the store (no replicas start), in the given status."""
    store = Store(platform_home.db_path)
    ids = []
    for index in range(count):
        row = store.create_service(
            service_id=f"svco-{index:03d}",
            name=f"listed-{index}",
            endpoint_suffix=f"s{index:03d}",
            model_version_id=model["modelId"],
            params={"instance_id": f"unit-{index}", "payment": "Postpaid", "charge_type": "Tokens"},
        )
        store.update_service(row.id, status=status)
        ids.append(row.id)
    store.close()
    return ids


def test_describe_services_pages_through_page_info_ten_by_default_at_most_a_hundred(
    platform_api, platform_home, model
) -> None:
    ids = stored(platform_home, model, 12)
    first = platform_api.call("service", "DescribeServices", {})
    assert [s["serviceId"] for s in first["serviceList"]] == ids[:10]
    # the marker is where the next page starts ("本次查询的起始位置" [M3]), as on every list
    assert first["pageInfo"] == {"marker": "", "maxKeys": 10, "isTruncated": True, "nextMarker": ids[10]}
    second = platform_api.call("service", "DescribeServices", {"marker": ids[10]})
    assert [s["serviceId"] for s in second["serviceList"]] == ids[10:]
    assert second["pageInfo"] == {"marker": ids[10], "maxKeys": 10, "isTruncated": False}  # no nextMarker
    everything = platform_api.call("service", "DescribeServices", {"maxKeys": 500})
    assert everything["pageInfo"]["maxKeys"] == 100
    assert len(everything["serviceList"]) == 12
    fuzzy = platform_api.call("service", "DescribeServices", {"name": "ted-1"})
    assert [s["name"] for s in fuzzy["serviceList"]] == ["listed-1", "listed-10", "listed-11"]
    bad = platform_api.post("/v2/service?Action=DescribeServices", {"runStatus": ["Expired"]})
    assert bad.status_code == 400
    assert bad.json()["message"] == (
        "DescribeServices: runStatus 'Expired' is not one of New, Deploying, Serving, Failed, Stopped."
    )


@pytest.mark.parametrize(("old", "word"), [("DeployFailed", "Failed"), ("Expired", "Stopped")])
def test_words_an_older_store_holds_are_answered_as_qianfan_spells_them(
    platform_api, platform_home, model, old: str, word: str
) -> None:
    (service_id,) = stored(platform_home, model, 1, old)
    assert platform_api.call("service", "DescribeService", {"serviceId": service_id})["runStatus"] == word
    listed = platform_api.call("service", "DescribeServices", {"runStatus": [word]})
    assert [s["serviceId"] for s in listed["serviceList"]] == [service_id]


def test_a_store_of_schema_1_loses_the_unique_service_name_and_keeps_its_rows(tmp_path) -> None:
    path = tmp_path / "platform.sqlite3"
    old = _SCHEMA.replace(
        "    name TEXT NOT NULL,\n    endpoint_suffix", "    name TEXT NOT NULL UNIQUE,\n    endpoint_suffix"
    )
    assert old != _SCHEMA
    db = sqlite3.connect(path)
    db.executescript(old)
    db.execute("INSERT INTO schema_version VALUES (1)")
    db.execute("INSERT INTO models VALUES ('am-1', 'm', 't')")
    db.execute("INSERT INTO model_versions VALUES ('amv-1', 'am-1', 1, '/m', 'h', 1, 'import', '{}', 't')")
    row = "('{}', 'qa', '{}', 'amv-1', 'Serving', '{{}}', '[]', '', NULL, 't', 't')"
    db.execute("INSERT INTO services VALUES " + row.format("svco-1", "qa"))
    db.commit()
    db.close()
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO services VALUES " + row.format("svco-2", "qa2"))
    db.commit()
    assert db.execute("SELECT id, name FROM services ORDER BY rowid").fetchall() == [
        ("svco-1", "qa"),
        ("svco-2", "qa"),
    ]
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    db.close()


def test_modify_service_switches_a_live_service_to_another_version_and_refuses_a_stopped_one(
    platform_api, platform_home, model, fake_model, tmp_path
) -> None:
    other = platform_api.call(
        "model", "ImportLocalModel", {"name": "other", "path": str(fake_model(tmp_path / "other"))}
    )
    (service_id,) = stored(platform_home, model, 1)
    modify = {"serviceId": service_id, "modelSetId": other["modelSetId"], "modelId": other["modelId"]}
    assert platform_api.call("service", "ModifyService", modify) is True  # [S4]: result true
    after = platform_api.call("service", "DescribeService", {"serviceId": service_id})
    assert (after["modelSetId"], after["modelId"]) == (other["modelSetId"], other["modelId"])
    platform_api.call("computeunit", "ReleaseComputeUnit", {"instanceId": "unit-0"})
    # Stopped, or Failed if the dummy model's replica gave up first: neither is live.
    ended = platform_api.call("service", "DescribeService", {"serviceId": service_id})["runStatus"]
    assert ended in ("Stopped", "Failed")
    back = {**modify, "modelSetId": model["modelSetId"], "modelId": model["modelId"]}
    response = platform_api.post("/v2/service?Action=ModifyService", back)
    assert response.status_code == 400
    assert response.json()["message"] == (
        f"ModifyService: the service {service_id} is {ended}; only a live service can switch its model."
    )
    kept = platform_api.call("service", "DescribeService", {"serviceId": service_id})
    assert (kept["modelSetId"], kept["modelId"]) == (other["modelSetId"], other["modelId"])
