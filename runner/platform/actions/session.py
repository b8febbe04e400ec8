"""What every action of the platform client shares: the one HTTP session, turning a reply's shape errors
into protocol errors that name the request, and paging a list action to its end."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import httpx

from runner.errors import PlatformStatusError
from runner.platform import wire
from runner.platform.bos import BosClient
from runner.platform.http import PlatformHttp, Reply
from runner.platform.settings import PlatformSettings

T = TypeVar("T")
LIST_PAGE_SIZE = 100
MAX_LIST_PAGES = 1000  # 100,000 tasks: past that, refuse rather than risk a duplicate

# A list request's body from the page's marker (None for the first page) and the page size asked for.
PageBody = Callable[[str | None, int], dict[str, Any]]
# A list reply's items and the next page's marker (None on the last page), read with the page size asked for.
PageItems = Callable[[Any, int], tuple[list[Mapping[str, Any]], str | None]]


class Session:
    """One platform's settings, HTTP session and transport (BOS clients are opened on the same transport)."""

    def __init__(
        self, settings: PlatformSettings, http: PlatformHttp, transport: httpx.BaseTransport | None
    ) -> None:
        self.settings = settings
        self.http = http
        self.transport = transport

    @property
    def display_name(self) -> str:
        return self.settings.display_name

    @property
    def local(self) -> bool:
        return self.settings.kind == "local"

    def bos(self) -> BosClient:
        return BosClient(self.settings, transport=self.transport)

    def refused(self, message: str) -> PlatformStatusError:
        """The one-sentence error of an action that cannot go on, naming the platform."""
        return PlatformStatusError(message, platform=self.display_name)

    def parse(self, reply: Reply, parse: Callable[..., T], *args: Any) -> T:
        try:
            return parse(*args)
        except wire.WireError as exc:
            raise self.http.protocol_error(reply, str(exc)) from None

    def local_only(self, what: str, instead: str) -> None:
        if not self.local:
            raise self.refused(
                f"{what} works only on the local platform; on Qianfan name {instead} in the pipeline"
            )

    def every_item(
        self, route: str, action: str, body: PageBody, page: PageItems, looking_for: str
    ) -> Iterator[tuple[Reply, Mapping[str, Any]]]:
        """Every item of a list action, page by page to the last; past ``MAX_LIST_PAGES`` pages an error,
        rather than a lookup that stops early and lets a create run twice."""
        marker: str | None = None
        for _ in range(MAX_LIST_PAGES):
            reply = self.http.console(route, action, body(marker, LIST_PAGE_SIZE))
            items, next_marker = self.parse(reply, page, reply.body["result"], LIST_PAGE_SIZE)
            for item in items:
                yield reply, item
            if not next_marker or next_marker == marker:
                return
            marker = next_marker
        raise self.refused(
            f"the {action} list has more than {MAX_LIST_PAGES * LIST_PAGE_SIZE} entries; qfrun stops "
            f"looking for {looking_for} there rather than risk creating it twice"
        )


def page_body(marker: str | None, size: int) -> dict[str, Any]:
    """A list request that asks for the largest page, from ``marker`` (the first page without one)."""
    return {"maxKeys": size, **({"marker": marker} if marker else {})}


def page_of(field: str) -> PageItems:
    """The items of a list whose reply names them ``result.<field>``."""
    return lambda result, size: wire.page_items(result, field, size)
