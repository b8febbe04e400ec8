"""The local platform's BOS API over real HTTP: objects round-trip, listings page, bad keys and oversized
bodies are refused, signatures are required when a key pair is configured, and Baidu's own BosClient
(bce-python-sdk, code nobody here wrote) works against it unchanged."""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.errors import PlatformError
from runner.local.bos_store import (
    DEFAULT_BUCKET,
    SWEEP_AFTER_S,
    BosError,
    BosUri,
    ObjectStore,
    check_key,
    parse_bos_uri,
    task_output_uri,
)
from runner.local.credentials import LocalKeys, load_or_create
from runner.local.home import Home
from runner.platform.auth import BceSigner
from runner.platform.settings import Credentials

AK = "ak-local-0123456789"
SK = "sk-local-abcdefghij"
BUCKET = DEFAULT_BUCKET


def _bos_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["requestId"] == response.headers["x-bce-request-id"]
    assert body["message"].endswith(".")
    return str(body["message"])


@pytest.fixture
def bos(platform_api: Any) -> Iterator[httpx.Client]:
    bearer = {"Authorization": f"Bearer {platform_api.token}"}
    with httpx.Client(base_url=platform_api.url, headers=bearer, timeout=30) as client:
        yield client


def test_put_get_head_list_delete_round_trip(bos: httpx.Client) -> None:
    data = b'{"id": "1", "query": "1+1=?"}\n'
    md5 = hashlib.md5(data).hexdigest()
    put = bos.put(f"/{BUCKET}/in/a b.jsonl", content=data, headers={"Content-Type": "application/jsonl"})
    assert put.status_code == 200, put.text
    assert put.headers["ETag"] == f'"{md5}"'
    assert put.headers["x-bce-request-id"]

    got = bos.get(f"/{BUCKET}/in/a b.jsonl")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["Content-Type"] == "application/jsonl"
    assert got.headers["ETag"] == f'"{md5}"'
    assert got.headers["Content-Length"] == str(len(data))
    assert got.headers["Last-Modified"].endswith(" GMT")

    head = bos.head(f"/{BUCKET}/in/a b.jsonl")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["ETag"] == f'"{md5}"'

    listing = bos.get(f"/{BUCKET}", params={"prefix": "in/"}).json()
    assert listing["name"] == BUCKET
    assert listing["prefix"] == "in/"
    assert listing["isTruncated"] is False
    assert listing["maxKeys"] == 1000
    assert "nextMarker" not in listing
    (item,) = listing["contents"]
    assert item["key"] == "in/a b.jsonl"
    assert item["size"] == len(data)
    assert item["eTag"] == md5
    assert item["storageClass"] == "STANDARD"
    assert set(item["owner"]) == {"id", "displayName"}
    assert time.strptime(item["lastModified"], "%Y-%m-%dT%H:%M:%SZ")

    assert bos.delete(f"/{BUCKET}/in/a b.jsonl").status_code == 204
    message = _bos_error(bos.get(f"/{BUCKET}/in/a b.jsonl"), 404, "NoSuchKey")
    assert "'in/a b.jsonl'" in message
    missing_head = bos.head(f"/{BUCKET}/in/a b.jsonl")
    assert missing_head.status_code == 404
    assert bos.get(f"/{BUCKET}", params={"prefix": "in/"}).json()["contents"] == []


def test_a_put_replaces_the_object_and_keeps_one_blob(bos: httpx.Client, platform_api: Any) -> None:
    objects: ObjectStore = platform_api.app.state.objects
    for text in (b"first", b"second version"):
        assert bos.put(f"/{BUCKET}/k", content=text).status_code == 200
    assert bos.get(f"/{BUCKET}/k").content == b"second version"
    assert len(list(objects.blobs_dir.iterdir())) == 1
    assert list(objects.tmp_dir.iterdir()) == []


def test_missing_bucket_is_no_such_bucket_and_bad_bucket_names_are_refused(bos: httpx.Client) -> None:
    assert "'no-such-bucket'" in _bos_error(bos.get("/no-such-bucket/k"), 404, "NoSuchBucket")
    _bos_error(bos.put("/no-such-bucket/k", content=b"x"), 404, "NoSuchBucket")
    _bos_error(bos.get("/no-such-bucket"), 404, "NoSuchBucket")
    _bos_error(bos.put("/Bad_Name"), 400, "InvalidBucketName")


def test_buckets_are_created_listed_and_deleted_when_empty(bos: httpx.Client) -> None:
    assert bos.put("/my-bucket").status_code == 200
    _bos_error(bos.put("/my-bucket"), 409, "BucketAlreadyExists")
    assert bos.head("/my-bucket").status_code == 200
    names = [b["name"] for b in bos.get("/").json()["buckets"]]
    assert names == ["my-bucket", BUCKET]
    assert bos.put("/my-bucket/x", content=b"1").status_code == 200
    _bos_error(bos.delete("/my-bucket"), 409, "BucketNotEmpty")
    assert bos.delete("/my-bucket/x").status_code == 204
    assert bos.delete("/my-bucket").status_code == 204
    assert bos.head("/my-bucket").status_code == 404


def test_listing_pages_with_max_keys_and_next_marker(bos: httpx.Client) -> None:
    keys = ["d/1", "d/2", "d/3", "d/4", "d/5", "e/1"]
    for key in keys:
        assert bos.put(f"/{BUCKET}/{key}", content=key.encode()).status_code == 200
    seen: list[str] = []
    marker = ""
    pages = 0
    while True:
        page = bos.get(f"/{BUCKET}", params={"prefix": "d/", "maxKeys": "2", "marker": marker}).json()
        pages += 1
        assert page["maxKeys"] == 2
        assert len(page["contents"]) <= 2
        seen += [item["key"] for item in page["contents"]]
        if not page["isTruncated"]:
            break
        assert page["nextMarker"] == seen[-1]
        marker = page["nextMarker"]
    assert seen == keys[:5]
    assert pages == 3


def test_delimiter_folds_common_prefixes_and_pages_past_them(bos: httpx.Client) -> None:
    for key in ["fun/test.jpg", "fun/movie/001.avi", "fun/movie/007.avi", "fun/zoo/1", "top"]:
        assert bos.put(f"/{BUCKET}/{key}", content=b"x").status_code == 200
    page = bos.get(f"/{BUCKET}", params={"prefix": "fun/", "delimiter": "/"}).json()
    assert [c["key"] for c in page["contents"]] == ["fun/test.jpg"]
    assert page["commonPrefixes"] == [{"prefix": "fun/movie/"}, {"prefix": "fun/zoo/"}]
    first = bos.get(f"/{BUCKET}", params={"prefix": "fun/", "delimiter": "/", "maxKeys": "1"}).json()
    assert first["commonPrefixes"] == [{"prefix": "fun/movie/"}]
    assert first["nextMarker"] == "fun/movie/"
    second = bos.get(
        f"/{BUCKET}", params={"prefix": "fun/", "delimiter": "/", "maxKeys": "1", "marker": "fun/movie/"}
    ).json()
    assert [c["key"] for c in second["contents"]] == ["fun/test.jpg"]
    assert second["commonPrefixes"] == []
    _bos_error(bos.get(f"/{BUCKET}", params={"maxKeys": "many"}), 400, "InvalidArgument")
    _bos_error(bos.get(f"/{BUCKET}", params={"acl": ""}), 501, "NotImplemented")


def test_range_gets_return_206_with_content_range(bos: httpx.Client) -> None:
    assert bos.put(f"/{BUCKET}/r", content=b"0123456789").status_code == 200
    part = bos.get(f"/{BUCKET}/r", headers={"Range": "bytes=2-4"})
    assert part.status_code == 206
    assert part.content == b"234"
    assert part.headers["Content-Range"] == "bytes 2-4/10"
    assert bos.get(f"/{BUCKET}/r", headers={"Range": "bytes=-3"}).content == b"789"
    _bos_error(bos.get(f"/{BUCKET}/r", headers={"Range": "bytes=20-"}), 416, "InvalidRange")


def test_content_md5_and_crc32_are_checked_and_a_bad_one_stores_nothing(bos: httpx.Client) -> None:
    data = b"payload"
    good = base64.b64encode(hashlib.md5(data).digest()).decode()
    assert bos.put(f"/{BUCKET}/m", content=data, headers={"Content-MD5": good}).status_code == 200
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    message = _bos_error(
        bos.put(f"/{BUCKET}/n", content=data, headers={"Content-MD5": wrong}), 400, "BadDigest"
    )
    assert message == "The Content-MD5 you sent does not match the bytes received."
    _bos_error(bos.put(f"/{BUCKET}/n", content=data, headers={"Content-MD5": "nope"}), 400, "BadDigest")
    _bos_error(bos.put(f"/{BUCKET}/n", content=data, headers={"x-bce-content-crc32": "1"}), 400, "BadDigest")
    assert bos.head(f"/{BUCKET}/n").status_code == 404


@pytest.mark.parametrize(
    "raw_path",
    [b"/qfrun-local/a/%2E%2E/b", b"/qfrun-local/%2E%2E", b"/qfrun-local/a/%2E/b", b"/qfrun-local/a%00b"],
)
def test_dot_segments_and_nul_in_keys_are_refused(bos: httpx.Client, raw_path: bytes) -> None:
    url = bos.base_url.copy_with(raw_path=raw_path)
    response = bos.put(url, content=b"x")
    _bos_error(response, 400, "InvalidURI")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "..", "a\0b", "x" * 1025])
def test_the_python_api_refuses_the_same_keys(key: str) -> None:
    with pytest.raises(BosError) as caught:
        check_key(key)
    assert caught.value.code == "InvalidURI"
    assert caught.value.status == 400


def test_the_size_limit_holds_for_declared_and_streamed_bodies(bos: httpx.Client, platform_api: Any) -> None:
    objects: ObjectStore = platform_api.app.state.objects
    objects.max_object_bytes = 1000
    assert bos.put(f"/{BUCKET}/fits", content=b"x" * 1000).status_code == 200
    message = _bos_error(bos.put(f"/{BUCKET}/big", content=b"x" * 1001), 400, "EntityTooLarge")
    assert message == ("The upload declares 1001 bytes; this platform stores objects of at most 1000 bytes.")

    def chunks() -> Iterator[bytes]:  # no Content-Length: only counting while streaming can stop it
        for _ in range(15):
            yield b"y" * 100

    streamed = bos.put(f"/{BUCKET}/big", content=chunks())
    assert "received more than 1000 bytes" in _bos_error(streamed, 400, "EntityTooLarge")
    assert bos.head(f"/{BUCKET}/big").status_code == 404
    assert list(objects.tmp_dir.iterdir()) == []


def test_requests_the_local_bos_does_not_serve_are_refused_by_name(bos: httpx.Client) -> None:
    assert bos.put(f"/{BUCKET}/src", content=b"x").status_code == 200
    message = _bos_error(
        bos.put(f"/{BUCKET}/dst", headers={"x-bce-copy-source": f"/{BUCKET}/src"}), 501, "NotImplemented"
    )
    assert "x-bce-copy-source" in message
    _bos_error(bos.get(f"/{BUCKET}/src", headers={"Range": "bytes=1-2,4-5"}), 400, "InvalidArgument")
    _bos_error(bos.get(f"/{BUCKET}", params={"delimiter": "//"}), 400, "InvalidArgument")
    assert [c["key"] for c in bos.get(f"/{BUCKET}/").json()["contents"]] == ["src"]


def test_an_internal_failure_is_a_500_with_the_request_id_and_no_traceback(
    bos: httpx.Client, platform_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(platform_api.app.state.objects, "buckets", broken)
    response = bos.get("/")
    message = _bos_error(response, 500, "InternalError")
    assert response.json()["requestId"] in message
    assert "disk on fire" not in response.text
    assert "Traceback" not in response.text


def test_get_on_a_console_path_is_bos_and_post_elsewhere_stays_the_consoles_404(bos: httpx.Client) -> None:
    _bos_error(bos.get("/v2/model"), 400, "InvalidBucketName")
    response = bos.post("/nowhere/at-all", json={})
    assert response.status_code == 404
    assert response.json()["code"] == "ResourceNotFound"
    assert bos.get("/healthz").json()["status"] == "ok"


def test_the_v1_prefix_of_bos_api_pages_reaches_the_same_objects(bos: httpx.Client) -> None:
    assert bos.put(f"/v1/{BUCKET}/via-v1", content=b"v1").status_code == 200
    assert bos.get(f"/{BUCKET}/via-v1").content == b"v1"
    assert [c["key"] for c in bos.get(f"/v1/{BUCKET}").json()["contents"]] == ["via-v1"]


def test_the_python_api_and_the_http_api_share_one_store(platform_home: Home, bos: httpx.Client) -> None:
    objects = ObjectStore.for_home(platform_home)
    out = parse_bos_uri("bos:/qfrun-local/out/")
    info = objects.put(out.bucket, out.child("abcdefghijklmnopqrstuvwx/r.jsonl").key, b'{"id": "1"}\n')
    assert info.etag == hashlib.md5(b'{"id": "1"}\n').hexdigest()
    assert bos.get(f"/{BUCKET}/out/abcdefghijklmnopqrstuvwx/r.jsonl").content == b'{"id": "1"}\n'
    bos.put(f"/{BUCKET}/in/1.jsonl", content=b"a\n")
    bos.put(f"/{BUCKET}/in/2.jsonl", content=b"b\n")
    assert [o.key for o in objects.iter_objects(BUCKET, "in/")] == ["in/1.jsonl", "in/2.jsonl"]
    assert objects.read_uri(BosUri(BUCKET, "in/2.jsonl")) == b"b\n"


def test_files_in_a_folder_leave_out_sub_folders_and_markers_and_task_dirs_are_fresh(
    platform_home: Home,
) -> None:
    objects = ObjectStore.for_home(platform_home)
    for key in ["in/", "in/1.jsonl", "in/2.txt", "in/sub/3.jsonl", "input-other/4.jsonl"]:
        objects.put(BUCKET, key, b"{}\n")
    folder = parse_bos_uri("bos:/qfrun-local/in")
    assert [o.key for o in objects.files_in(folder)] == ["in/1.jsonl", "in/2.txt"]
    first = task_output_uri(parse_bos_uri("bos:/qfrun-local/out/"))
    second = task_output_uri(parse_bos_uri("bos:/qfrun-local/out"))
    assert first != second
    for uri in (first, second):
        name = uri.key.removeprefix("out/").removesuffix("/")
        assert len(name) == 24
        assert name.isalnum()
        assert name.lower() == name
        assert str(uri) == f"bos:/qfrun-local/out/{name}/"


def test_a_half_configured_key_pair_names_the_missing_variable() -> None:
    assert LocalKeys.from_env({}) is None
    assert LocalKeys.from_env({"QFRUN_LOCAL_ACCESS_KEY": "a", "QFRUN_LOCAL_SECRET_KEY": "s"}) == LocalKeys(
        "a", "s"
    )
    with pytest.raises(PlatformError) as caught:
        LocalKeys.from_env({"QFRUN_LOCAL_ACCESS_KEY": "a"})
    assert str(caught.value) == (
        "The local platform's key pair is incomplete: QFRUN_LOCAL_SECRET_KEY is not set; set both "
        "QFRUN_LOCAL_ACCESS_KEY and QFRUN_LOCAL_SECRET_KEY, or neither."
    )
    assert "sk-very-secret" not in repr(LocalKeys("ak-x", "sk-very-secret"))


@pytest.mark.parametrize(
    ("text", "bucket", "key"),
    [
        ("bos:/bucket-name/folder/", "bucket-name", "folder/"),
        ("bos://bucket-name/folder/file.jsonl", "bucket-name", "folder/file.jsonl"),
        ("bos:/bucket-name", "bucket-name", ""),
    ],
)
def test_bos_uris_parse_in_both_spellings(text: str, bucket: str, key: str) -> None:
    uri = parse_bos_uri(text)
    assert (uri.bucket, uri.key) == (bucket, key)
    assert str(uri) == f"bos:/{bucket}/{key}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("s3://b/k", "'s3://b/k' is not a BOS location; write bos:/bucket/path."),
        ("bos:/B/k", "The bucket name 'B' in 'bos:/B/k' is not valid"),
        ("bos:/bucket/../etc", "The object key '../etc' in 'bos:/bucket/../etc' has a '.' or '..' path"),
    ],
)
def test_bad_bos_uris_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(BosError) as caught:
        parse_bos_uri(text)
    assert caught.value.message.startswith(message)


def test_a_restart_sweeps_stale_temporary_files_and_unreferenced_blobs(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "bos").ensure()
    objects.put(BUCKET, "kept", b"kept")
    (kept_blob,) = list(objects.blobs_dir.iterdir())
    stale = [objects.tmp_dir / "put-stale", objects.blobs_dir / "orphan"]
    fresh = objects.tmp_dir / "put-fresh"
    for path in [*stale, fresh]:
        path.write_bytes(b"left over")
    old = time.time() - SWEEP_AFTER_S - 10
    for path in [*stale, kept_blob]:
        os.utime(path, (old, old))
    ObjectStore(tmp_path / "bos").ensure()
    assert not any(path.exists() for path in stale)
    assert fresh.exists()  # may belong to a put still running
    assert kept_blob.exists()
    assert objects.read(BUCKET, "kept") == b"kept"


# -- signatures ----------------------------------------------------------------------------------------


@pytest.fixture
def signed_api(platform_home: Home, serve_platform: Any) -> Iterator[Any]:
    with serve_platform(platform_home, token="bearer-tok", keys=LocalKeys(AK, SK)) as api:
        yield api


def _signed(url: str, *, ak: str = AK, sk: str = SK, clock: Any = time.time) -> httpx.Client:
    signer = BceSigner(Credentials(access_key=ak, secret_key=sk), clock=clock)
    return httpx.Client(base_url=url, auth=signer, timeout=30)


def test_bos_requests_need_a_valid_signature_when_keys_are_configured(signed_api: Any) -> None:
    with httpx.Client(base_url=signed_api.url, timeout=30) as anonymous:
        message = _bos_error(anonymous.get(f"/{BUCKET}/k"), 401, "AccessDenied")
        assert "bce-auth-v1 signature" in message
        assert anonymous.get("/healthz").status_code == 200
        bearer = anonymous.get(f"/{BUCKET}", headers={"Authorization": "Bearer bearer-tok"})
        assert bearer.status_code == 200
    with _signed(signed_api.url) as good:
        assert good.put(f"/{BUCKET}/k", content=b"signed").status_code == 200
        assert good.get(f"/{BUCKET}/k").content == b"signed"
    with _signed(signed_api.url, sk="not-the-secret") as wrong:
        _bos_error(wrong.get(f"/{BUCKET}/k"), 403, "SignatureDoesNotMatch")
    with _signed(signed_api.url, ak="another-ak") as other:
        _bos_error(other.get(f"/{BUCKET}/k"), 403, "InvalidAccessKeyId")
    with _signed(signed_api.url, clock=lambda: time.time() - 3600) as stale:
        _bos_error(stale.get(f"/{BUCKET}/k"), 403, "RequestExpired")


def test_a_token_given_to_the_platform_replaces_its_homes_token_and_keeps_its_homes_keys(
    platform_home: Home, serve_platform: Any
) -> None:
    own = load_or_create(platform_home)
    with serve_platform(platform_home, token="bearer-tok") as api:
        stale = httpx.get(f"{api.url}/{BUCKET}", headers={"Authorization": f"Bearer {own.token}"})
        assert _bos_error(stale, 401, "AccessDenied") == "The bearer token is not the platform's token."
        with _signed(api.url, ak=own.keys.access_key, sk=own.keys.secret_key) as signed:
            assert signed.get(f"/{BUCKET}").status_code == 200
        with _signed(api.url) as foreign:
            _bos_error(foreign.get(f"/{BUCKET}"), 403, "InvalidAccessKeyId")


def test_console_and_chat_need_a_valid_signature_too(signed_api: Any) -> None:
    describe = "/v2/model?Action=DescribeModel"
    with httpx.Client(base_url=signed_api.url, timeout=30) as anonymous:
        refused = anonymous.post(describe, json={"modelId": "amv-x"})
        assert refused.status_code == 401
        assert refused.json()["code"] == "AccessDenied"
        chat = anonymous.post("/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/x", json={"messages": []})
        assert chat.status_code == 401
    with _signed(signed_api.url, sk="not-the-secret") as wrong:
        body = wrong.post(describe, json={"modelId": "amv-x"})
        assert body.status_code == 403
        assert body.json()["code"] == "AccessDenied"
        assert body.json()["requestId"] == body.headers["X-Bce-Request-Id"]
        assert SK not in body.text
    with _signed(signed_api.url) as good:
        assert good.post(describe, json={"modelId": "amv-x"}).json()["code"] == "ResourceNotFound"


@pytest.mark.slow
def test_a_background_platform_takes_its_key_pair_from_the_environment(
    platform_home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.local import launcher

    monkeypatch.setenv("QFRUN_LOCAL_ACCESS_KEY", AK)
    monkeypatch.setenv("QFRUN_LOCAL_SECRET_KEY", SK)
    endpoint = launcher.start(platform_home)
    try:
        assert httpx.get(f"{endpoint.url}/{BUCKET}", timeout=30).status_code == 401
        with _signed(endpoint.url) as good:
            assert good.put(f"/{BUCKET}/from-daemon", content=b"ok").status_code == 200
    finally:
        launcher.stop(platform_home)


# -- the oracle: Baidu's own BOS SDK ---------------------------------------------------------------------


# bce-python-sdk leaves its http.client sockets for the garbage collector to close.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_baidus_bos_client_puts_heads_lists_gets_and_deletes_on_the_local_platform(signed_api: Any) -> None:
    bos_client = pytest.importorskip("baidubce.services.bos.bos_client")
    configuration = pytest.importorskip("baidubce.bce_client_configuration")
    credentials = pytest.importorskip("baidubce.auth.bce_credentials")
    client = bos_client.BosClient(
        configuration.BceClientConfiguration(
            credentials=credentials.BceCredentials(AK, SK), endpoint=signed_api.url
        )
    )
    lines = [json.dumps({"id": str(i), "query": f"{i}+{i}=?"}, ensure_ascii=False) for i in range(3)]
    text = "\n".join(lines) + "\n模型\n"
    data = text.encode()

    put = client.put_object_from_string(BUCKET, "input/批量 a.jsonl", text)  # sends x-bce-content-crc32
    assert put.metadata.etag == hashlib.md5(data).hexdigest()
    head = client.get_object_meta_data(BUCKET, "input/批量 a.jsonl")
    assert int(head.metadata.content_length) == len(data)
    assert head.metadata.etag == hashlib.md5(data).hexdigest()
    client.put_object_from_string(BUCKET, "input/b.jsonl", "{}\n", content_md5=_b64md5(b"{}\n"))
    listed = client.list_objects(BUCKET, prefix="input/", max_keys=1)
    assert [o.key for o in listed.contents] == ["input/b.jsonl"]
    assert listed.is_truncated is True
    every = [o.key for o in client.list_all_objects(BUCKET, prefix="input/")]
    assert every == ["input/b.jsonl", "input/批量 a.jsonl"]
    assert [o.key for o in client.list_objects(BUCKET, prefix="input/批").contents] == ["input/批量 a.jsonl"]
    assert client.get_object_as_string(BUCKET, "input/批量 a.jsonl") == data
    assert client.get_object_as_string(BUCKET, "input/批量 a.jsonl", range=[0, 5]) == data[:6]
    assert BUCKET in [b.name for b in client.list_buckets().buckets]
    client.create_bucket("oracle-bucket")
    assert client.does_bucket_exist("oracle-bucket") is True
    client.delete_bucket("oracle-bucket")
    assert client.does_bucket_exist("oracle-bucket") is False
    client.put_object_from_string(BUCKET, "meta.txt", "m", user_metadata={"source": "qfrun", "note": "模型"})
    metadata = client.get_object_meta_data(BUCKET, "meta.txt").metadata
    assert (metadata.bce_meta_source, metadata.bce_meta_note) == ("qfrun", "模型")
    client.delete_object(BUCKET, "input/b.jsonl")
    assert [o.key for o in client.list_all_objects(BUCKET, prefix="input/")] == ["input/批量 a.jsonl"]

    exceptions = pytest.importorskip("baidubce.exception")
    with pytest.raises(exceptions.BceHttpClientError) as caught:
        client.get_object_as_string(BUCKET, "input/missing.jsonl")
    assert caught.value.last_error.code == "NoSuchKey"
    assert caught.value.last_error.status_code == 404
    wrong = bos_client.BosClient(
        configuration.BceClientConfiguration(
            credentials=credentials.BceCredentials(AK, "not-the-secret"), endpoint=signed_api.url
        )
    )
    with pytest.raises(exceptions.BceHttpClientError) as refused:
        wrong.list_buckets()
    assert refused.value.last_error.code == "SignatureDoesNotMatch"
    gc.collect()  # close the SDK's sockets here, under this test's warning filter, not in a later test


def _b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# -- conditional puts (what the BOS state backend's lock and writes stand on) ---------------------------


def test_conditional_put_creates_only_when_absent_and_replaces_only_the_etag_named(bos: httpx.Client) -> None:
    url = f"/{BUCKET}/state/p.lock"
    first = bos.put(url, content=b"one", headers={"If-None-Match": "*"})
    assert first.status_code == 200, first.text
    _bos_error(bos.put(url, content=b"two", headers={"If-None-Match": "*"}), 412, "PreconditionFailed")
    stale = f'"{hashlib.md5(b"other").hexdigest()}"'
    _bos_error(bos.put(url, content=b"two", headers={"If-Match": stale}), 412, "PreconditionFailed")
    assert bos.get(url).content == b"one"
    swapped = bos.put(url, content=b"two", headers={"If-Match": first.headers["ETag"]})
    assert swapped.status_code == 200, swapped.text
    assert bos.get(url).content == b"two"
    absent = bos.put(f"/{BUCKET}/state/none", content=b"x", headers={"If-Match": stale})
    _bos_error(absent, 412, "PreconditionFailed")


@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_baidus_bos_client_conditional_put_is_refused_with_412_on_the_local_platform(signed_api: Any) -> None:
    bos_client = pytest.importorskip("baidubce.services.bos.bos_client")
    configuration = pytest.importorskip("baidubce.bce_client_configuration")
    credentials = pytest.importorskip("baidubce.auth.bce_credentials")
    exceptions = pytest.importorskip("baidubce.exception")
    client = bos_client.BosClient(
        configuration.BceClientConfiguration(
            credentials=credentials.BceCredentials(AK, SK), endpoint=signed_api.url
        )
    )
    put = client.put_object_from_string(BUCKET, "lock", "mine", cond_read_write={"If-None-Match": "*"})
    with pytest.raises(exceptions.BceHttpClientError) as caught:
        client.put_object_from_string(BUCKET, "lock", "theirs", cond_read_write={"If-None-Match": "*"})
    assert caught.value.last_error.status_code == 412
    assert caught.value.last_error.code == "PreconditionFailed"
    client.put_object_from_string(BUCKET, "lock", "renewed", cond_read_write={"If-Match": put.metadata.etag})
    assert client.get_object_as_string(BUCKET, "lock") == b"renewed"
