"""bce-auth-v1 signing checked against hand computations of the algorithm's definition, and bearer auth."""

from __future__ import annotations

import hashlib
import hmac

import httpx

from runner.platform.auth import (
    BceSigner,
    BearerAuth,
    auth_for,
    authorization,
    canonical_headers,
    canonical_query,
    canonical_time,
    uri_encode,
)
from runner.platform.settings import Credentials

DOC_AK = "aabbccddeeff11223344556677889900"
DOC_SK = "eeff11223344556677889900aabbccdd"


def _hmac_hex(key: str, msg: str) -> str:
    return hmac.new(key.encode(), msg.encode(), hashlib.sha256).hexdigest()


def test_uri_encode_keeps_only_unreserved_characters_and_optionally_slashes() -> None:
    # Checks UriEncode as the canonical-request rules define it [G3].
    assert uri_encode("a-b_c.d~e") == "a-b_c.d~e"
    assert uri_encode("a b/c+d=e&f*") == "a%20b%2Fc%2Bd%3De%26f%2A"
    assert uri_encode("/v2/my model", keep_slash=True) == "/v2/my%20model"
    assert uri_encode("模型") == "%E6%A8%A1%E5%9E%8B"


def test_canonical_time_is_utc_seconds_with_z() -> None:
    assert canonical_time(1430123029.9) == "2015-04-27T08:23:49Z"


def test_canonical_query_is_sorted_encoded_and_drops_authorization() -> None:
    # Checks the canonical query string [G3].
    query = [("uploadId", "a b"), ("Action", "DescribeModel"), ("authorization", "x"), ("empty", "")]
    assert canonical_query(query) == "Action=DescribeModel&empty=&uploadId=a%20b"


def test_canonical_headers_signs_only_known_and_x_bce_headers() -> None:
    block, signed = canonical_headers(
        {
            "Host": "bj.bcebos.com",
            "Content-Type": "text/plain",
            "X-Bce-Date": "2015-04-27T08:23:49Z",
            "Accept": "*/*",
        }
    )
    assert block == "content-type:text%2Fplain\nhost:bj.bcebos.com\nx-bce-date:2015-04-27T08%3A23%3A49Z"
    assert signed == "content-type;host;x-bce-date"


def test_authorization_matches_a_step_by_step_hand_computation() -> None:
    # Checks the signing key, canonical request and signature of bce-auth-v1 [G1][G2].
    timestamp, expiration = "2015-04-27T08:23:49Z", 1800
    headers = {
        "Host": "bj.bcebos.com",
        "Content-Type": "text/plain",
        "Content-Length": "8",
        "Content-MD5": "NFzcPqhviddjRNnSOGo4rw==",
        "x-bce-date": timestamp,
    }
    query = [("partNumber", "9"), ("uploadId", "a44cc9bab11cbd156984767aad637851")]
    # 1. signing key from the auth string prefix
    prefix = f"bce-auth-v1/{DOC_AK}/{timestamp}/{expiration}"
    signing_key = _hmac_hex(DOC_SK, prefix)
    # 2. canonical request, built by hand
    canonical = "\n".join(
        [
            "PUT",
            "/v1/test/myfolder/readme.txt",
            "partNumber=9&uploadId=a44cc9bab11cbd156984767aad637851",
            "content-length:8\ncontent-md5:NFzcPqhviddjRNnSOGo4rw%3D%3D\ncontent-type:text%2Fplain\n"
            "host:bj.bcebos.com\nx-bce-date:2015-04-27T08%3A23%3A49Z",
        ]
    )
    # 3. signature over the canonical request with the hex signing key
    signature = _hmac_hex(signing_key, canonical)
    expected = f"{prefix}/content-length;content-md5;content-type;host;x-bce-date/{signature}"
    got = authorization(
        access_key=DOC_AK,
        secret_key=DOC_SK,
        method="put",
        path="/v1/test/myfolder/readme.txt",
        query=query,
        headers=headers,
        timestamp=timestamp,
        expiration_s=expiration,
    )
    assert got == expected
    # The fixed known answer of this vector (computed once from the definition with hashlib alone).
    assert got == (
        "bce-auth-v1/aabbccddeeff11223344556677889900/2015-04-27T08:23:49Z/1800/"
        "content-length;content-md5;content-type;host;x-bce-date/"
        "2cda900fcbe7c82b969d1102575045eb0fc3cf842a7834db180bfc9285089278"
    )
    assert signing_key == "479c052b71f8fd503bcb76ac8ac7a034dee64eaec49a90ed318e67737c6d8308"


def test_signer_signs_an_httpx_console_request_as_the_definition_says() -> None:
    creds = Credentials(access_key=DOC_AK, secret_key=DOC_SK)
    signer = BceSigner(creds, expiration_s=300, clock=lambda: 1430123029.0)
    request = httpx.Request(
        "POST",
        "https://qianfan.baidubce.com/v2/model",
        params={"Action": "DescribeModel"},
        json={"modelId": "amv-1"},
    )
    signed = next(signer.auth_flow(request))
    assert signed.headers["x-bce-date"] == "2015-04-27T08:23:49Z"
    length = str(len(request.content))
    canonical = (
        "POST\n/v2/model\nAction=DescribeModel\n"
        f"content-length:{length}\ncontent-type:application%2Fjson\nhost:qianfan.baidubce.com\n"
        "x-bce-date:2015-04-27T08%3A23%3A49Z"
    )
    prefix = f"bce-auth-v1/{DOC_AK}/2015-04-27T08:23:49Z/300"
    signature = _hmac_hex(_hmac_hex(DOC_SK, prefix), canonical)
    assert (
        signed.headers["Authorization"] == f"{prefix}/content-length;content-type;host;x-bce-date/{signature}"
    )


def test_a_changed_body_length_or_query_changes_the_signature() -> None:
    creds = Credentials(access_key=DOC_AK, secret_key=DOC_SK)
    signer = BceSigner(creds, clock=lambda: 1430123029.0)

    def sign(url: str, body: dict[str, str]) -> str:
        return next(signer.auth_flow(httpx.Request("POST", url, json=body))).headers["Authorization"]

    base = sign("https://h/v2/model?Action=A", {"a": "1"})
    assert base != sign("https://h/v2/model?Action=B", {"a": "1"})
    assert base != sign("https://h/v2/model?Action=A", {"a": "12"})


def test_bearer_auth_sends_the_token_and_refresh_rereads_the_environment() -> None:
    env = {"QFRUN_LOCAL_TOKEN": "old"}
    creds = Credentials(bearer_token="old", bearer_env="QFRUN_LOCAL_TOKEN", environ=env)
    auth = BearerAuth(creds)
    request = next(auth.auth_flow(httpx.Request("POST", "http://127.0.0.1/v2/model")))
    assert request.headers["Authorization"] == "Bearer old"
    env["QFRUN_LOCAL_TOKEN"] = "new"
    auth.refresh()
    request = next(auth.auth_flow(httpx.Request("POST", "http://127.0.0.1/v2/model")))
    assert request.headers["Authorization"] == "Bearer new"


def test_no_token_means_no_authorization_header() -> None:
    request = next(BearerAuth(Credentials()).auth_flow(httpx.Request("POST", "http://127.0.0.1/v2/model")))
    assert "Authorization" not in request.headers


def test_signing_is_preferred_when_both_keys_are_set_and_reprs_show_no_secret() -> None:
    creds = Credentials(access_key=DOC_AK, secret_key=DOC_SK, bearer_token="tok-secret")
    auth = auth_for(creds)
    assert isinstance(auth, BceSigner)
    for text in (repr(auth), str(auth), repr(creds), str(creds)):
        assert DOC_AK not in text
        assert DOC_SK not in text
        assert "tok-secret" not in text
    assert repr(creds) == "Credentials(ak/sk, bearer)"
