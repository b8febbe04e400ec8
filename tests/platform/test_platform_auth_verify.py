"""bce-auth-v1 verification: the signing vectors verify, every altered part is refused with BCE's code, and
signatures made by Baidu's own bce-python-sdk signer verify too."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import pytest

from runner.platform.auth import (
    BceSigner,
    SignatureRefused,
    canonical_time,
    parse_authorization,
    verify_authorization,
)
from runner.platform.settings import Credentials

DOC_AK = "aabbccddeeff11223344556677889900"
DOC_SK = "eeff11223344556677889900aabbccdd"
SIGNED_AT = 1430123029.0  # 2015-04-27T08:23:49Z
VECTOR = (
    "bce-auth-v1/aabbccddeeff11223344556677889900/2015-04-27T08:23:49Z/1800/"
    "content-length;content-md5;content-type;host;x-bce-date/"
    "2cda900fcbe7c82b969d1102575045eb0fc3cf842a7834db180bfc9285089278"
)
HEADERS = {
    "Host": "bj.bcebos.com",
    "Content-Type": "text/plain",
    "Content-Length": "8",
    "Content-MD5": "NFzcPqhviddjRNnSOGo4rw==",
    "x-bce-date": "2015-04-27T08:23:49Z",
    "User-Agent": "anything: unsigned headers do not matter",
}
PATH = "/v1/test/myfolder/readme.txt"
QUERY = [("partNumber", "9"), ("uploadId", "a44cc9bab11cbd156984767aad637851")]


def _verify(value: str = VECTOR, **changes: object) -> str:
    request: dict[str, object] = {
        "access_key": DOC_AK,
        "secret_key": DOC_SK,
        "method": "PUT",
        "path": PATH,
        "query": QUERY,
        "headers": HEADERS,
        "now_s": SIGNED_AT + 60,
    }
    request.update(changes)
    return verify_authorization(value, **request).access_key  # type: ignore[arg-type]


def _refused(value: str = VECTOR, **changes: object) -> SignatureRefused:
    with pytest.raises(SignatureRefused) as caught:
        _verify(value, **changes)
    assert DOC_SK not in caught.value.message
    assert "2cda900f" not in caught.value.message
    return caught.value


def test_the_step_by_step_signing_vector_verifies() -> None:
    assert _verify() == DOC_AK
    parsed = parse_authorization(VECTOR)
    assert parsed.signed_headers == ("content-length", "content-md5", "content-type", "host", "x-bce-date")
    assert parsed.expiration_s == 1800
    assert "2cda900f" not in repr(parsed)


@pytest.mark.parametrize(
    "change",
    [
        {"method": "POST"},
        {"path": "/v1/test/myfolder/readme.txt2"},
        {"query": [("partNumber", "10"), ("uploadId", "a44cc9bab11cbd156984767aad637851")]},
        {"query": QUERY[:1]},
        {"headers": {**HEADERS, "Content-Length": "9"}},
        {"headers": {**HEADERS, "Host": "evil.example"}},
        {"secret_key": DOC_SK[::-1]},
    ],
    ids=["method", "path", "query-value", "query-dropped", "signed-header", "host", "secret"],
)
def test_any_altered_part_of_the_request_is_signature_does_not_match(change: dict[str, object]) -> None:
    assert _refused(**change).code == "SignatureDoesNotMatch"


def test_another_access_key_is_invalid_access_key_id() -> None:
    refused = _refused(access_key="ffffccddeeff11223344556677889900")
    assert refused.code == "InvalidAccessKeyId"
    assert refused.message == "The access key id in the Authorization header is not known here."


def test_an_expired_signature_is_refused_after_the_clock_skew_allowance() -> None:
    # Signed for 1800 s; 300 s of skew are forgiven, one more second is not.
    assert _verify(now_s=SIGNED_AT + 1800 + 300) == DOC_AK
    refused = _refused(now_s=SIGNED_AT + 1800 + 301)
    assert refused.code == "RequestExpired"
    assert "signed at 2015-04-27T08:23:49Z for 1800 s" in refused.message


def test_a_timestamp_from_the_future_is_refused() -> None:
    assert _verify(now_s=SIGNED_AT - 300) == DOC_AK
    refused = _refused(now_s=SIGNED_AT - 301)
    assert refused.code == "RequestExpired"
    assert "in the future" in refused.message


@pytest.mark.parametrize(
    "value",
    [
        "Bearer abc",
        "bce-auth-v1/ak/2015-04-27T08:23:49Z/1800/host",
        "bce-auth-v2/ak/2015-04-27T08:23:49Z/1800/host/sig",
        "bce-auth-v1/ak/2015-04-27 08:23:49/1800/host/sig",
        "bce-auth-v1/ak/2015-04-27T08:23:49Z/-5/host/sig",
        "bce-auth-v1//2015-04-27T08:23:49Z/1800/host/sig",
    ],
)
def test_malformed_authorization_values_are_invalid_http_auth_header(value: str) -> None:
    assert _refused(value).code == "InvalidHTTPAuthHeader"


def _sign(canonical: str, prefix: str) -> str:
    key = hmac.new(DOC_SK.encode(), prefix.encode(), hashlib.sha256).hexdigest()
    return hmac.new(key.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def test_a_signature_must_cover_host_and_name_only_headers_present() -> None:
    prefix = f"bce-auth-v1/{DOC_AK}/2015-04-27T08:23:49Z/1800"
    only_date = _sign(
        "PUT\n/v1/test/myfolder/readme.txt\npartNumber=9&uploadId=a44cc9bab11cbd156984767aad637851\n"
        "x-bce-date:2015-04-27T08%3A23%3A49Z",
        prefix,
    )
    refused = _refused(f"{prefix}/x-bce-date/{only_date}")
    assert refused.message == "The signature must cover the host header."
    missing = _refused(f"{prefix}/host;x-bce-nothing/{only_date}")
    assert missing.message == "The request lacks header(s) the signature names: x-bce-nothing."


def test_empty_signed_headers_mean_bces_default_set_as_baidus_sdks_send_it() -> None:
    # bce-python-sdk's signer leaves signedHeaders empty and signs host, content-length, content-md5,
    # content-type and every x-bce-* header; computed here by hand from that definition.
    prefix = f"bce-auth-v1/{DOC_AK}/2015-04-27T08:23:49Z/1800"
    canonical = (
        "PUT\n/v1/test/myfolder/readme.txt\npartNumber=9&uploadId=a44cc9bab11cbd156984767aad637851\n"
        "content-length:8\ncontent-md5:NFzcPqhviddjRNnSOGo4rw%3D%3D\ncontent-type:text%2Fplain\n"
        "host:bj.bcebos.com\nx-bce-date:2015-04-27T08%3A23%3A49Z"
    )
    assert _verify(f"{prefix}//{_sign(canonical, prefix)}") == DOC_AK
    assert _refused(f"{prefix}//{_sign(canonical + 'x', prefix)}").code == "SignatureDoesNotMatch"


def test_what_the_signer_signs_the_verifier_accepts() -> None:
    signer = BceSigner(Credentials(access_key=DOC_AK, secret_key=DOC_SK), clock=lambda: SIGNED_AT)
    request = httpx.Request(
        "PUT",
        "http://127.0.0.1:8080/qfrun-local/dir/a%20b%23c.jsonl",
        params={"prefix": "a b", "empty": ""},
        content=b"{}\n",
        headers={"Content-Type": "application/jsonl"},
    )
    signed = next(signer.auth_flow(request))
    assert _verify(
        signed.headers["Authorization"],
        method="PUT",
        path="/qfrun-local/dir/a b#c.jsonl",
        query=[("prefix", "a b"), ("empty", "")],
        headers=dict(signed.headers.items()),
        now_s=SIGNED_AT,
    )


def test_signatures_made_by_bce_python_sdk_verify() -> None:
    sdk_signer = pytest.importorskip("baidubce.auth.bce_v1_signer")
    sdk_credentials = pytest.importorskip("baidubce.auth.bce_credentials")
    credentials = sdk_credentials.BceCredentials(DOC_AK, DOC_SK)
    # What bce-python-sdk's BosClient sends: the key percent-encoded except "/", its headers as bytes.
    headers = {
        b"Host": b"127.0.0.1:8080",
        b"Content-Length": b"5",
        b"Content-Type": b"application/octet-stream",
        b"x-bce-date": canonical_time(SIGNED_AT).encode(),
        b"x-bce-content-crc32": b"907060870",
        b"User-Agent": b"bce-sdk-python",
    }
    params = {b"maxKeys": 2, b"prefix": b"dir/a b~", b"marker": None}
    value = sdk_signer.sign(
        credentials, b"PUT", b"/qfrun-local/dir/%E6%A8%A1%20x.txt", headers, params, int(SIGNED_AT), 1800
    ).decode()
    assert value.split("/")[4] == ""  # the SDK names no headers: BCE's default set applies
    text_headers = {k.decode(): v.decode() for k, v in headers.items()}
    query = [("maxKeys", "2"), ("prefix", "dir/a b~"), ("marker", "")]
    assert _verify(
        value,
        method="PUT",
        path="/qfrun-local/dir/模 x.txt",
        query=query,
        headers=text_headers,
        now_s=SIGNED_AT,
    )
    tampered = {**text_headers, "x-bce-content-crc32": "1"}
    assert _refused(value, method="PUT", path="/qfrun-local/dir/模 x.txt", query=query, headers=tampered)
