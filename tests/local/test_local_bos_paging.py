"""BOS listings page by marker: the local emulation against a model of ListObjects, and qfrun's BOS client
following nextMarker across real pages of the local platform over HTTP.

The model: the keys under the prefix, in UTF-8 byte order, those sharing the text up to the first delimiter
after the prefix folded into one common prefix. Paging with any page size, from any marker, must give that
sequence exactly once, each page full but the last, ``nextMarker`` its last entry.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import PlatformProtocolError
from runner.local.app import create_app
from runner.local.bos_store import DEFAULT_BUCKET, MAX_LIST_KEYS, BosError, ObjectStore, check_key
from runner.local.credentials import LocalKeys
from runner.local.home import Home
from runner.platform.bos import BosClient
from runner.platform.ratelimit import TokenBucket
from runner.platform.settings import settings_from_pipeline
from runner.testing.serving import serve_app

AK = "ak-bos-paging-0123"
SK = "sk-bos-paging-4567"


def _valid(key: str) -> bool:
    try:
        check_key(key)
    except BosError:
        return False
    return True


KEYS = st.sets(st.text(alphabet="ab/é-", min_size=1, max_size=6).filter(_valid), max_size=25)


def _expected(keys: set[str], prefix: str, delimiter: str, marker: str = "") -> list[str]:
    """ListObjects as a reference: entries after ``marker``, each folded prefix once."""
    entries: list[str] = []
    for key in sorted(keys, key=lambda k: k.encode()):
        if not key.startswith(prefix):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        entry = key[: cut + len(delimiter)] if cut >= 0 else key
        if entry.encode() <= marker.encode() or (entries and entries[-1] == entry):
            continue
        entries.append(entry)
    return entries


def _page_entries(page: Any) -> list[str]:
    return sorted([o.key for o in page.contents] + list(page.common_prefixes), key=lambda k: k.encode())


def _walk(objects: ObjectStore, prefix: str, delimiter: str, size: int, marker: str = "") -> list[list[str]]:
    pages: list[list[str]] = []
    while True:
        page = objects.list(DEFAULT_BUCKET, prefix=prefix, delimiter=delimiter, max_keys=size, marker=marker)
        entries = _page_entries(page)
        pages.append(entries)
        assert page.is_truncated == bool(page.next_marker)
        if not page.is_truncated:
            return pages
        assert len(entries) == size  # only the last page may be short
        assert page.next_marker == entries[-1]
        assert len(pages) <= 100, "the listing does not end"
        marker = page.next_marker


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    keys=KEYS,
    prefix=st.sampled_from(["", "a", "a/", "b-", "é"]),
    delimiter=st.sampled_from(["", "/", "-"]),
    size=st.integers(1, 4),
)
def test_paging_any_listing_gives_every_entry_once_in_byte_order(
    keys: set[str], prefix: str, delimiter: str, size: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        objects = ObjectStore(Path(folder)).ensure()
        for key in keys:
            objects.put(DEFAULT_BUCKET, key, key.encode())
        pages = _walk(objects, prefix, delimiter, size)
    assert [entry for page in pages for entry in page] == _expected(keys, prefix, delimiter)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys=KEYS, marker=st.text(alphabet="ab/é-", max_size=4), delimiter=st.sampled_from(["", "/"]))
def test_a_listing_from_any_marker_starts_right_after_it(keys: set[str], marker: str, delimiter: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        objects = ObjectStore(Path(folder)).ensure()
        for key in keys:
            objects.put(DEFAULT_BUCKET, key, b"")
        pages = _walk(objects, "", delimiter, 3, marker=marker)
    assert [entry for page in pages for entry in page] == _expected(keys, "", delimiter, marker)


def test_a_page_size_outside_the_limits_is_brought_within_them(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path).ensure()
    for index in range(3):
        objects.put(DEFAULT_BUCKET, f"k{index}", b"")
    assert _page_entries(objects.list(DEFAULT_BUCKET, max_keys=0)) == ["k0"]
    assert objects.list(DEFAULT_BUCKET, max_keys=-5).max_keys == 1
    assert objects.list(DEFAULT_BUCKET, max_keys=10**9).max_keys == MAX_LIST_KEYS


def test_a_folded_prefix_is_not_listed_again_on_the_page_after_it(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path).ensure()
    for key in ("a/1", "a/2", "a/3", "b", "c/1"):
        objects.put(DEFAULT_BUCKET, key, b"")
    first = objects.list(DEFAULT_BUCKET, delimiter="/", max_keys=1)
    assert (first.common_prefixes, first.next_marker) == (("a/",), "a/")
    second = objects.list(DEFAULT_BUCKET, delimiter="/", max_keys=1, marker=first.next_marker)
    assert [o.key for o in second.contents] == ["b"]
    third = objects.list(DEFAULT_BUCKET, delimiter="/", max_keys=1, marker=second.next_marker)
    assert (third.common_prefixes, third.is_truncated, third.next_marker) == (("c/",), False, "")


def test_listing_a_missing_bucket_is_no_such_bucket(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path).ensure()
    with pytest.raises(BosError) as caught:
        objects.list("no-such-bucket")
    assert (caught.value.status, caught.value.code) == (404, "NoSuchBucket")


# -- over HTTP: the platform's ListObjects and the client's paging -----------------------------------------


class _Counting(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.markers: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.rstrip("/").count("/") == 1:
            self.markers.append(request.url.params.get("marker"))
        return super().handle_request(request)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Home]]:
    home = Home(tmp_path / "home")
    with serve_app(create_app(home, keys=LocalKeys(AK, SK))) as url:
        yield url, home


def _client(url: str, transport: httpx.BaseTransport | None = None) -> BosClient:
    environ = {"QFRUN_LOCAL_ACCESS_KEY": AK, "QFRUN_LOCAL_SECRET_KEY": SK}
    settings_ = settings_from_pipeline("local", environ=environ, local_base_url=url)
    return BosClient(settings_, transport=transport, bucket=TokenBucket(1e6, 1000))


def test_the_client_follows_next_marker_across_full_pages_of_the_local_platform(
    served: tuple[str, Home],
) -> None:
    url, home = served
    objects = ObjectStore.for_home(home)
    keys = [f"runs/{index:05d}.json" for index in range(MAX_LIST_KEYS + 7)]
    for key in keys:
        objects.put(DEFAULT_BUCKET, key, b"{}")
    objects.put(DEFAULT_BUCKET, "runt", b"outside the prefix")
    with (
        _Counting() as transport,
        _client(url, transport) as client,
    ):  # a lent transport: the lender closes it
        listed = client.list_objects(DEFAULT_BUCKET, "runs/")
    assert [o.key for o in listed] == keys
    assert {o.size for o in listed} == {2}
    assert transport.markers == [
        None,
        keys[MAX_LIST_KEYS - 1],
    ]  # two pages, the second after the first's last


def test_a_listing_of_an_empty_prefix_is_one_request_and_no_objects(served: tuple[str, Home]) -> None:
    url, _ = served
    with _Counting() as transport, _client(url, transport) as client:
        assert client.list_objects(DEFAULT_BUCKET, "nothing/") == []
    assert transport.markers == [None]


def test_the_platforms_pages_over_http_say_truncated_and_name_their_last_entry(
    served: tuple[str, Home],
) -> None:
    url, home = served
    objects = ObjectStore.for_home(home)
    for key in ("d/a/1", "d/a/2", "d/b", "d/c/1", "d/e"):
        objects.put(DEFAULT_BUCKET, key, b"x")
    seen: list[str] = []
    marker = ""
    with _client(url) as client:
        while True:  # the signed client's requests, with the page size another BOS client might choose
            params = {
                "prefix": "d/",
                "delimiter": "/",
                "maxKeys": "2",
                **({"marker": marker} if marker else {}),
            }
            response = client._send("GET", DEFAULT_BUCKET, "", params=params)
            body = response.json()
            page = [c["key"] for c in body.get("contents", [])] + [
                p["prefix"] for p in body.get("commonPrefixes", [])
            ]
            seen += sorted(page)
            if not body["isTruncated"]:
                assert "nextMarker" not in body
                break
            assert body["nextMarker"] == sorted(page)[-1]
            marker = body["nextMarker"]
    assert seen == ["d/a/", "d/b", "d/c/", "d/e"]


def test_a_page_whose_next_marker_goes_backwards_is_a_protocol_error_not_a_loop() -> None:
    pages = iter(
        [
            {
                "contents": [{"key": "b", "size": 1, "eTag": "x", "lastModified": "2026-01-01T00:00:00Z"}],
                "isTruncated": True,
                "nextMarker": "b",
            },
            {"contents": [], "isTruncated": True, "nextMarker": "a"},
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=next(pages))

    with (
        _client("http://127.0.0.1:9", httpx.MockTransport(answer)) as client,
        pytest.raises(PlatformProtocolError, match="a truncated listing has no usable nextMarker"),
    ):
        client.list_objects(DEFAULT_BUCKET)
