"""No web page can drive the local platform: what a browser could send it is refused before anything runs.

A page the developer visits can post to 127.0.0.1 (a text/plain form or fetch needs no preflight), or use
DNS rebinding to reach it under a name of its own. These tests send exactly those requests to the real
server, even with the platform's own token (as if a page had learnt it), and check that none gets through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import Api

LIST = "/v2/batchinference?Action=DescribeBatchInferenceTasks"


def _with_token(api: Api, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token}", **headers}


def test_a_rebound_host_name_is_refused(platform_api: Api) -> None:
    response = httpx.post(
        platform_api.url + LIST,
        json={},
        headers=_with_token(platform_api, Host="attacker.example"),
        timeout=30,
    )
    assert response.status_code == 403
    assert response.json()["code"] == "AccessDenied"
    assert "is not this platform's address" in response.json()["message"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:8765", "[::1]:8765"])
def test_loopback_host_names_are_answered(platform_api: Api, host: str) -> None:
    response = httpx.post(
        platform_api.url + LIST, json={}, headers=_with_token(platform_api, Host=host), timeout=30
    )
    assert response.status_code == 200, response.text


def test_a_web_pages_origin_is_refused_on_every_api(platform_api: Api) -> None:
    origin = _with_token(platform_api, Origin="https://attacker.example")
    console = httpx.post(platform_api.url + LIST, json={}, headers=origin, timeout=30)
    assert console.status_code == 403
    assert "attacker.example" in console.json()["message"]
    chat = httpx.post(
        platform_api.url + "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/x",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers=origin,
        timeout=30,
    )
    assert chat.status_code in (401, 403)
    upload = httpx.put(platform_api.url + "/qfrun-local/x.jsonl", content=b"{}", headers=origin, timeout=30)
    assert upload.status_code == 403
    stored = httpx.head(platform_api.url + "/qfrun-local/x.jsonl", headers=_with_token(platform_api))
    assert stored.status_code == 404
    local_page = httpx.post(
        platform_api.url + LIST, json={}, headers=_with_token(platform_api, Origin="http://127.0.0.1:3000")
    )
    assert local_page.status_code == 200


def test_a_text_plain_body_is_refused(platform_api: Api) -> None:
    # What a <form enctype="text/plain"> or a no-preflight fetch sends: JSON in a body that is not JSON.
    response = httpx.post(
        platform_api.url + LIST,
        content=b"{}",
        headers=_with_token(platform_api, **{"Content-Type": "text/plain"}),
        timeout=30,
    )
    assert response.status_code == 415
    assert "must be JSON" in response.json()["message"]


def test_urls_the_platform_reports_come_from_its_own_address(platform_api: Api) -> None:
    first = httpx.post(
        platform_api.url + LIST, json={}, headers=_with_token(platform_api, Host="localhost:1"), timeout=30
    )
    assert first.status_code == 200
    assert platform_api.app.state.context.base_url == platform_api.url  # the bound address, not the Host
