"""Reading an export's ``downloadUrl``: bounded whatever the server says or sends, and qfrun's credentials go
only to the console's own origin (a link elsewhere is fetched bare, as a pre-signed link is).

The servers here are httpx mock transports (unit tests of the download's error paths); the local platform's
real download is taken over HTTP in tests/local/test_local_eval_results.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from runner.errors import PlatformStatusError
from runner.platform.export_download import download
from runner.platform.settings import PlatformSettings, settings_from_pipeline

CONSOLE = "https://qianfan.baidubce.com"


def qianfan() -> PlatformSettings:
    return settings_from_pipeline("qianfan", environ={"QIANFAN_ACCESS_KEY": "ak", "QIANFAN_SECRET_KEY": "sk"})


class Endless(httpx.SyncByteStream):
    """A body that never ends; counts what was pulled from it."""

    def __init__(self) -> None:
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            self.pulled += 1
            yield b"x" * 65_536


def test_an_endless_body_is_given_up_just_past_the_bound() -> None:
    body = Endless()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=body))
    with pytest.raises(
        PlatformStatusError, match="holds more than 1000000 bytes, more than qfrun reads back"
    ):
        download(qianfan(), "https://bj.bcebos.com/x/export.zip", 1_000_000, transport=transport)
    assert body.pulled <= 1_000_000 // 65_536 + 2  # read no further than the bound


def test_a_declared_length_past_the_bound_is_refused_before_the_body_is_read() -> None:
    body = Endless()
    headers = {"Content-Length": str(10**12)}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, headers=headers, stream=body))
    with pytest.raises(PlatformStatusError, match="more than 1000 bytes"):
        download(qianfan(), "https://bj.bcebos.com/x/export.zip", 1_000, transport=transport)
    assert body.pulled == 0


def test_credentials_go_to_the_consoles_origin_only() -> None:
    seen: dict[str, str | None] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        seen[request.url.host] = request.headers.get("authorization")
        return httpx.Response(200, content=b"zip")

    transport = httpx.MockTransport(answer)
    assert download(qianfan(), "https://bj.bcebos.com/x/export.zip?sig=1", 100, transport=transport) == b"zip"
    assert download(qianfan(), f"{CONSOLE}/exports/a.zip", 100, transport=transport) == b"zip"
    assert seen["bj.bcebos.com"] is None
    assert (seen["qianfan.baidubce.com"] or "").startswith("bce-auth-v1/")


@pytest.mark.parametrize(
    ("url", "answer", "words"),
    [
        ("file:///etc/passwd", None, "is not an http(s) link"),
        ("https://bj.bcebos.com/gone.zip", httpx.Response(404), "answered HTTP 404"),
        (
            "https://bj.bcebos.com/moved.zip",
            httpx.Response(302, headers={"Location": "https://x"}),
            "HTTP 302",
        ),
    ],
)
def test_a_link_that_cannot_be_read_is_one_sentence(
    url: str, answer: httpx.Response | None, words: str
) -> None:
    transport = httpx.MockTransport(lambda request: answer or httpx.Response(200))
    with pytest.raises(PlatformStatusError) as raised:
        download(qianfan(), url, 100, transport=transport)
    assert words in str(raised.value)
    assert "sk" not in str(raised.value).split()


def test_a_download_leaves_the_transport_it_borrowed_open() -> None:
    # The platform client lends its transport; closing it would close the connections other stages use.
    closed: list[bool] = []

    class Lent(httpx.MockTransport):
        def close(self) -> None:
            closed.append(True)

    transport = Lent(lambda request: httpx.Response(200, content=b"zip"))
    assert download(qianfan(), "https://bj.bcebos.com/x/export.zip", 100, transport=transport) == b"zip"
    assert closed == []
