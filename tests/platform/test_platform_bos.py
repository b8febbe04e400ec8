"""The BOS client: against the real local platform (signed, in-process on 127.0.0.1) for the round trip and
dataset uploads, and against httpx.MockTransport for paging, retries and the mapping of every failure."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.errors import (
    PlatformAuthError,
    PlatformError,
    PlatformNotFound,
    PlatformProtocolError,
    PlatformServerError,
    PlatformUnavailable,
)
from runner.local.app import create_app
from runner.local.credentials import LocalKeys
from runner.local.home import Home
from runner.platform.auth import verify_authorization
from runner.platform.bos import BosClient
from runner.platform.client import PlatformClient
from runner.platform.ratelimit import TokenBucket
from runner.platform.settings import (
    BosSettings,
    Credentials,
    PlatformSettings,
    settings_from_pipeline,
)
from runner.testing.serving import serve_app

AK = "ak-bos-client-0123"
SK = "sk-bos-client-4567"
LOCAL_ENV = {"QFRUN_LOCAL_ACCESS_KEY": AK, "QFRUN_LOCAL_SECRET_KEY": SK}


class CountingTransport(httpx.HTTPTransport):
    """A real transport that remembers the method of every request it sent."""

    def __init__(self) -> None:
        super().__init__()
        self.methods: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.methods.append(request.method)
        return super().handle_request(request)


@dataclass
class Served:
    url: str
    home: Home


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    home = Home(tmp_path / "home")
    app = create_app(home, keys=LocalKeys(AK, SK))
    with serve_app(app) as url:
        yield Served(url, home)


def _client(url: str, transport: httpx.BaseTransport | None = None, **env: str) -> BosClient:
    settings = settings_from_pipeline("local", environ={**LOCAL_ENV, **env}, local_base_url=url)
    return BosClient(settings, transport=transport, bucket=TokenBucket(1e6, 1000))


def test_local_settings_point_bos_at_the_platform_and_sign_with_the_local_pair() -> None:
    settings = settings_from_pipeline("local", environ=LOCAL_ENV, local_base_url="http://127.0.0.1:9")
    assert settings.bos == BosSettings("http://127.0.0.1:9", "qfrun-local")
    assert settings.credentials.has_signing_keys
    assert SK not in repr(settings)
    unsigned = settings_from_pipeline("local", environ={}, local_base_url="http://127.0.0.1:9")
    assert not unsigned.credentials.has_signing_keys


def test_qianfan_bos_comes_from_the_environment_or_the_platform_mapping() -> None:
    env = {"QIANFAN_ACCESS_KEY": "a", "QIANFAN_SECRET_KEY": "s"}
    assert settings_from_pipeline("qianfan", environ=env).bos is None
    full = {**env, "QIANFAN_BOS_ENDPOINT": "https://bj.bcebos.com/", "QIANFAN_BOS_BUCKET": "mine"}
    assert settings_from_pipeline("qianfan", environ=full).bos == BosSettings("https://bj.bcebos.com", "mine")
    mapped = settings_from_pipeline(
        {"kind": "qianfan", "bos": {"bucket": "other"}}, environ={**env, "QIANFAN_BOS_ENDPOINT": "https://e"}
    )
    assert mapped.bos == BosSettings("https://e", "other")
    with pytest.raises(PlatformError) as half:
        settings_from_pipeline("qianfan", environ={**env, "QIANFAN_BOS_BUCKET": "mine"})
    assert str(half.value) == (
        "the BOS endpoint is not set; set platform.bos.endpoint in the pipeline or QIANFAN_BOS_ENDPOINT in "
        "the environment."
    )
    with pytest.raises(PlatformError, match="must be a mapping"):
        settings_from_pipeline({"kind": "qianfan", "bos": "bos:/x"}, environ=env)


def test_a_client_without_bos_settings_says_which_variables_to_set() -> None:
    settings = settings_from_pipeline(
        "qianfan", environ={"QIANFAN_ACCESS_KEY": "a", "QIANFAN_SECRET_KEY": "s"}
    )
    with pytest.raises(PlatformError) as caught:
        BosClient(settings)
    assert "set QIANFAN_BOS_ENDPOINT and QIANFAN_BOS_BUCKET" in str(caught.value)


def test_put_head_get_and_list_round_trip_on_the_signed_local_platform(served: Served) -> None:
    with _client(served.url) as bos:
        data = b'{"id": "1", "query": "2+2=?"}\n'
        etag = bos.put_object("qfrun-local", "in/x #1.jsonl", data)
        assert etag == hashlib.md5(data).hexdigest()
        head = bos.head_object("qfrun-local", "in/x #1.jsonl")
        assert head is not None
        assert (head.size, head.etag) == (len(data), etag)
        assert bos.get_object("qfrun-local", "in/x #1.jsonl") == data
        bos.put_object("qfrun-local", "in/y.jsonl", b"{}\n")
        listed = bos.list_objects("qfrun-local", "in/")
        assert [(o.key, o.size) for o in listed] == [("in/x #1.jsonl", len(data)), ("in/y.jsonl", 3)]
        assert bos.head_object("qfrun-local", "in/none") is None


def test_the_local_console_accepts_the_clients_signature(served: Served) -> None:
    settings = settings_from_pipeline("local", environ=LOCAL_ENV, local_base_url=served.url)
    with PlatformClient(settings) as client, pytest.raises(PlatformNotFound):
        client.describe_model_version("amv-none")
    wrong = settings_from_pipeline(
        "local", environ={**LOCAL_ENV, "QFRUN_LOCAL_SECRET_KEY": "nope"}, local_base_url=served.url
    )
    with PlatformClient(wrong) as client, pytest.raises(PlatformAuthError) as caught:
        client.describe_model_version("amv-none")
    assert caught.value.code == "AccessDenied"
    assert "nope" not in str(caught.value)


def test_upload_dataset_puts_once_then_only_heads(served: Served, tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"prompt": "1+1=", "response": "2"}\n')
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with CountingTransport() as transport, _client(served.url, transport) as bos:  # a lent transport: ours
        uri = bos.upload_dataset(path, sha)
        assert uri == f"bos:/qfrun-local/qfrun/datasets/{sha}/train.jsonl"
        assert transport.methods == ["HEAD", "PUT"]
        assert bos.upload_dataset(path, sha) == uri
        assert transport.methods == ["HEAD", "PUT", "HEAD"]
        assert bos.get_object("qfrun-local", f"qfrun/datasets/{sha}/train.jsonl") == path.read_bytes()
        with pytest.raises(PlatformError, match="changed since it was hashed"):
            bos.upload_dataset(path, "0" * 64)


def test_a_refused_signature_is_an_auth_error_naming_the_location_never_the_key(served: Served) -> None:
    with _client(served.url, QFRUN_LOCAL_SECRET_KEY="wrong-secret") as bos:
        with pytest.raises(PlatformAuthError) as caught:
            bos.get_object("qfrun-local", "in/a.jsonl")
    text = str(caught.value)
    assert text.startswith(
        f"platform BOS {served.url}: GET bos:/qfrun-local/in/a.jsonl -> 403: SignatureDoesNotMatch"
    )
    assert "(request id " in text
    assert "wrong-secret" not in text
    assert SK not in text
    with _client(served.url) as bos, pytest.raises(PlatformNotFound) as missing:
        bos.get_object("qfrun-local", "in/a.jsonl")
    assert "NoSuchKey" in str(missing.value)


# -- MockTransport: paging, retries, failures -----------------------------------------------------------


def _mock(handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float]) -> BosClient:
    settings = PlatformSettings(
        "qianfan",
        "https://qianfan.test",
        "https://aip.test",
        Credentials(access_key=AK, secret_key=SK),
        max_retries=2,
        backoff_base_s=0.01,
        bos=BosSettings("https://bj.bcebos.test", "bkt"),
    )
    return BosClient(
        settings, transport=httpx.MockTransport(handler), bucket=TokenBucket(1e6, 1000), sleep=sleeps.append
    )


def test_list_objects_follows_next_marker_until_the_last_page() -> None:
    keys = [f"p/{i}" for i in range(5)]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        assert request.headers["Authorization"].startswith(f"bce-auth-v1/{AK}/")
        marker = request.url.params.get("marker", "")
        rest = [k for k in keys if k > marker][:2]
        more = rest[-1] != keys[-1]
        body: dict[str, Any] = {"contents": [{"key": k, "size": 1, "eTag": "e"} for k in rest]}
        body.update({"isTruncated": more, **({"nextMarker": rest[-1]} if more else {})})
        return httpx.Response(200, json=body)

    with _mock(handler, []) as bos:
        assert [o.key for o in bos.list_objects("bkt", "p/")] == keys
    assert [r.url.params.get("marker", "") for r in seen] == ["", "p/1", "p/3"]
    assert all(r.url.path == "/bkt" and r.url.params["prefix"] == "p/" for r in seen)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"contents": [], "isTruncated": True}, "a truncated listing has no usable nextMarker"),
        ({"contents": [{"key": 1}]}, "a listed object is not {key, size, ...}"),
        ({"contents": "none"}, "the listing has no 'contents' list"),
    ],
)
def test_a_malformed_listing_is_a_protocol_error(body: dict[str, Any], detail: str) -> None:
    with _mock(lambda request: httpx.Response(200, json=body), []) as bos:
        with pytest.raises(PlatformProtocolError) as caught:
            bos.list_objects("bkt")
    assert detail in str(caught.value)


def test_server_errors_are_retried_then_reported() -> None:
    calls: list[str] = []
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(500, json={"code": "InternalError", "message": "boom", "requestId": "r-1"})

    with _mock(handler, sleeps) as bos, pytest.raises(PlatformServerError) as caught:
        bos.put_object("bkt", "k", b"x")
    assert calls == ["PUT", "PUT", "PUT"]
    assert len(sleeps) == 2
    assert str(caught.value) == (
        "platform BOS https://bj.bcebos.test: PUT bos:/bkt/k -> 500: InternalError: boom (request id r-1)."
    )


def test_a_flaky_connection_recovers_and_a_dead_one_is_unavailable() -> None:
    answers: list[httpx.Response | Exception] = [
        httpx.ConnectError("refused"),
        httpx.Response(200, content=b"ok"),
    ]

    def flaky(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with _mock(flaky, []) as bos:
        assert bos.get_object("bkt", "k") == b"ok"

    def dead(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with _mock(dead, []) as bos, pytest.raises(PlatformUnavailable, match="the connection failed"):
        bos.get_object("bkt", "k")


def test_an_etag_that_is_not_the_md5_sent_is_a_protocol_error() -> None:
    with _mock(lambda request: httpx.Response(200, headers={"ETag": '"0000"'}), []) as bos:
        with pytest.raises(PlatformProtocolError, match="the ETag is not the MD5 of the bytes sent"):
            bos.put_object("bkt", "k", b"data")


def test_requests_are_signed_over_the_encoded_key_path() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"x")

    with _mock(handler, []) as bos:
        bos.get_object("bkt", "dir/a b?c#d")
    (request,) = seen
    assert request.url.raw_path == b"/bkt/dir/a%20b%3Fc%23d"
    # What a BOS server decodes from that path is what the signature covers.
    verified = verify_authorization(
        request.headers["Authorization"],
        access_key=AK,
        secret_key=SK,
        method="GET",
        path="/bkt/dir/a b?c#d",
        query=[],
        headers=dict(request.headers.items()),
        now_s=time.time(),
    )
    assert "host" in verified.signed_headers


class Lender(httpx.HTTPTransport):
    """The platform client's transport, lent to the BOS clients it opens; counts who closes it."""

    closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_closing_a_bos_client_leaves_the_transport_it_borrowed_open(served: Served) -> None:
    # httpx closes a client's transport with the client; the platform client's requests of other stages may
    # be in flight on that pool, and closing it took their sockets away mid-read (EBADF, an ambiguous create).
    lender = Lender()
    with _client(served.url, transport=lender) as bos:
        bos.put_object("qfrun-local", "in/lent.jsonl", b"{}\n")
    assert lender.closed == 0
    with _client(served.url, transport=lender) as bos:
        assert bos.get_object("qfrun-local", "in/lent.jsonl") == b"{}\n"
    lender.close()
    assert lender.closed == 1
