"""The local platform's service and chat actions refusing what they cannot do, called in-process (ASGI):
every refusal is a 4xx in the API's shape with one sentence naming the field and value, and nothing is
deployed, listed or answered on a refused request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from runner.local.access import Gate
from runner.local.credentials import LocalKeys
from runner.local.home import Home
from runner.testing.in_process import in_process

CHAT = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"
ASK = {"messages": [{"role": "user", "content": "2+2=?"}]}


@pytest.fixture
def model(asgi_api: Any, fake_model: Callable[[Path], Path], tmp_path: Path) -> dict[str, Any]:
    result: dict[str, Any] = asgi_api.call(
        "model", "ImportLocalModel", {"name": "dummy", "path": str(fake_model(tmp_path / "dummy"))}
    )
    return result


def _buying(model: dict[str, Any], **changes: Any) -> dict[str, Any]:
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
        **changes,
    }
    return body


def _refused(response: Any, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["requestId"] == response.headers["X-Bce-Request-Id"]
    return str(body["message"])


def _services(api: Any) -> list[Any]:
    return list(api.call("service", "DescribeServices", {})["serviceList"])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"modelSetId": "am-other"}, "belongs to"),
        ({"description": "x" * 501}, "the description has 501 characters; at most 500."),
        ({"serviceType": "embedding"}, "must be one of"),
        ({"protocolVersion": 3}, "protocolVersion"),
    ],
)
def test_a_create_that_cannot_be_served_here_is_refused_and_deploys_nothing(
    asgi_api: Any, model: dict[str, Any], changes: dict[str, Any], message: str
) -> None:
    said = _refused(asgi_api.post("/v2/service?Action=CreateService", _buying(model, **changes)))
    assert said.startswith("CreateService")
    assert message in said
    assert _services(asgi_api) == []


def test_a_create_for_a_version_of_another_model_names_both(asgi_api: Any, model: dict[str, Any]) -> None:
    said = _refused(asgi_api.post("/v2/service?Action=CreateService", _buying(model, modelSetId="am-other")))
    assert (
        said
        == f"CreateService: model version {model['modelId']} belongs to {model['modelSetId']}, not am-other."
    )


def test_a_create_for_a_version_that_does_not_exist_is_a_404(asgi_api: Any, model: dict[str, Any]) -> None:
    response = asgi_api.post("/v2/service?Action=CreateService", _buying(model, modelId="amv-nope"))
    assert response.status_code == 404
    assert "amv-nope" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"runStatus": "Dancing"}, "runStatus 'Dancing' is not one of"),
        ({"runStatus": ["Serving", "Dancing"]}, "runStatus 'Dancing' is not one of"),
        ({"serviceType": ["chat", ""]}, "serviceType[1] must be a non-empty string."),
        ({"chargeType": "Free"}, "the field 'chargeType' must be one of"),
        ({"payType": "Barter"}, "the field 'payType' must be one of Prepay, Postpay, not 'Barter'."),
        ({"runStatus": 5}, "runStatus"),
    ],
)
def test_a_list_filter_that_names_nothing_qianfan_knows_is_refused(
    asgi_api: Any, body: dict[str, Any], message: str
) -> None:
    said = _refused(asgi_api.post("/v2/service?Action=DescribeServices", body))
    assert message in said


def test_list_filters_accept_one_word_or_a_list_and_page_reverse_lists_newest_first(
    asgi_api: Any, model: dict[str, Any]
) -> None:
    first = asgi_api.call("service", "CreateService", _buying(model, name="alpha", urlSuffix="alpha"))
    second = asgi_api.call("service", "CreateService", _buying(model, name="beta", urlSuffix="beta"))
    ids = {first["serviceId"], second["serviceId"]}
    listed = asgi_api.call("service", "DescribeServices", {"runStatus": ["Deploying", "Serving", "Failed"]})
    assert {item["serviceId"] for item in listed["serviceList"]} <= ids
    one_word = asgi_api.call("service", "DescribeServices", {"serviceType": "chat", "name": "ALP"})
    assert [item["name"] for item in one_word["serviceList"]] == ["alpha"]
    forward = [item["serviceId"] for item in asgi_api.call("service", "DescribeServices", {})["serviceList"]]
    reverse = [
        item["serviceId"]
        for item in asgi_api.call("service", "DescribeServices", {"pageReverse": True})["serviceList"]
    ]
    assert reverse == list(reversed(forward))
    by_pay = asgi_api.call("service", "DescribeServices", {"payType": "Postpay"})["serviceList"]
    assert by_pay == []  # both are prepaid


def test_modify_to_a_version_of_another_model_is_refused_and_changes_nothing(
    asgi_api: Any, model: dict[str, Any]
) -> None:
    created = asgi_api.call("service", "CreateService", _buying(model))
    body = {"serviceId": created["serviceId"], "modelSetId": "am-other", "modelId": model["modelId"]}
    said = _refused(asgi_api.post("/v2/service?Action=ModifyService", body))
    assert said.endswith(f"belongs to {model['modelSetId']}, not am-other.")
    described = asgi_api.call("service", "DescribeService", {"serviceId": created["serviceId"]})
    assert described["modelId"] == model["modelId"]


def test_a_chat_to_an_endpoint_nobody_serves_is_qianfans_not_found(asgi_api: Any) -> None:
    response = asgi_api.post(CHAT + "nobody_here", ASK)
    assert response.status_code == 404
    body = response.json()
    assert body["error_code"] == 336005
    assert "nobody_here" in body["error_msg"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"temperature": 5}, "'temperature' must be between"),
        ({"temperature": "hot"}, "'temperature' must be a number, not 'hot'."),
        ({"top_p": 10**400}, "'top_p' must be"),
        ({"seed": 1.5}, "'seed' must be a whole number, not 1.5."),
        ({"seed": -1}, "'seed' must be between 0 and"),
        ({"max_output_tokens": True}, "'max_output_tokens' must be a whole number, not True."),
        ({"max_output_tokens": 0}, "'max_output_tokens' must be between 1 and"),
    ],
)
def test_chat_parameters_out_of_range_are_refused_before_any_service_is_looked_up(
    asgi_api: Any, params: dict[str, Any], words: str
) -> None:
    response = asgi_api.post(CHAT + "nobody_here", {**ASK, **params})
    assert response.status_code == 400, response.text
    assert words in response.json()["error_msg"]


def _request(authorization: str) -> Request:
    headers = [(b"host", b"127.0.0.1:8765"), (b"authorization", authorization.encode())]
    return Request({"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers})


def test_a_signed_request_to_a_replica_that_holds_only_the_token_is_told_to_use_the_token() -> None:
    gate = Gate("only-a-token-0123", None)  # what a replica is started with
    refusal = gate.check(_request("bce-auth-v1/ak/2026-01-01T00:00:00Z/1800/host/abc"))
    assert refusal is not None
    assert (refusal.status, refusal.message) == (
        403,
        "This platform has no AK/SK configured; send the platform's bearer token.",
    )
    assert gate.check(_request("Bearer only-a-token-0123")) is None
    wrong = gate.check(_request("Bearer someone-elses"))
    assert wrong is not None
    assert wrong.status == 401
    assert wrong.message == "The bearer token is not the platform's token."


def test_a_platform_with_only_a_key_pair_asks_for_a_signature(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    keys = LocalKeys("ak-only-keys-0123", "sk-only-keys-4567")
    with in_process(home, keys=keys) as (client, _):
        response = client.post("/v2/service?Action=DescribeServices", json={})
    assert response.status_code == 401
    assert "needs a bce-auth-v1 signature" in response.json()["message"]
