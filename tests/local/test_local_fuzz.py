"""Every bad request gets a 4xx: hypothesis sends malformed requests to every route of the local platform.

The routes come from the app's own route table, so a route added later is fuzzed without touching this
file; path parameters that select a handler (``/v2/{route}`` and its ``Action``, the v1 compatibility
paths) are drawn from the same dispatch tables the app uses, and body field names from the handlers' own
source, so requests get past the first check and into the handlers. Bodies are deep JSON, ``NaN`` and
``Infinity``, integers of thousands of digits, wrong types, missing fields, lone surrogates and other odd
unicode, and bytes that are not JSON at all. Requests go through ``httpx.ASGITransport`` to the real app
(its lifespan running), so thousands take seconds. No answer may be a 5xx (nor the v1 envelope's internal
error 500000, which travels with HTTP 200) or show a traceback, except
BOS's documented 501 ``NotImplemented`` for a BOS feature the local platform does not serve (a sub-resource
such as ``?acl``, a copy): that request is not malformed, and the answer says so in BOS's own words.

The replicas' app (``runner.local.engine.serve``, over the demo model) is fuzzed the same way: its port is
as reachable as the platform's. ``QFRUN_FUZZ_EXAMPLES`` sets the number of requests per app (default 300,
which keeps this file under a minute on a two-core machine); raise it for a deeper run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Route

from runner.local import app as app_module
from runner.local.compat import routes as compat_routes
from runner.local.compat.envelope import CONSOLE_INTERNAL_ERROR
from runner.local.home import Home
from runner.local.kinds import console_routes

EXAMPLES = int(os.environ.get("QFRUN_FUZZ_EXAMPLES", "300"))
TOKEN = "fuzz-token"  # given explicitly, so every request reaches the handlers behind the gate
SOURCES = Path(app_module.__file__).parent
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+")


def _field_names() -> list[str]:
    """Every field name a handler reads (``body.text("name")``, ``data.get("name")``, ...)."""
    pattern = re.compile(
        r"\.(?:text|opt_text|integer|opt_integer|obj|array|texts|choice|get|_get)\(\s*\"([A-Za-z_][\w.]*)\""
    )
    names: set[str] = set()
    for path in [
        *SOURCES.glob("*.py"),
        *SOURCES.glob("compat/*.py"),
        *SOURCES.glob("kinds/*.py"),
        SOURCES / "engine" / "serve.py",
    ]:
        names.update(pattern.findall(path.read_text(encoding="utf-8")))
    return sorted(names)


FIELDS = _field_names()
ROUTES = console_routes(app_module.BASE_ROUTES)  # what create_app serves
# Path parameters that choose a handler are drawn from the app's own tables; any other is free text.
CHOICES: dict[str, list[str]] = {
    "route": sorted(ROUTES),
    "path": sorted(compat_routes.HANDLERS),
    "bucket": ["qfrun-local"],
    "kind": sorted(compat_routes.ARCHIVES),
}
odd_text = st.text(st.characters(codec=None, categories=None), max_size=40)  # lone surrogates, controls, ...
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text,
    st.sampled_from(["", " ", "amv-x", "ds-x", "0", "-1", "../../etc/passwd", "Prepaid", "Month"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(FIELDS) | odd_text, inner, max_size=5)
    ),
    max_leaves=20,
)
objects = st.dictionaries(st.sampled_from(FIELDS), values, max_size=8)
# A chat that gets past the first checks, with the generation settings and odd content around it.
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system"]) | odd_text, "content": odd_text | values}
    ),
    min_size=1,
    max_size=4,
)
settings_fields = st.sampled_from(
    ["temperature", "top_p", "top_k", "seed", "max_tokens", "max_output_tokens", "stream", "model", "stop"]
)
chats = st.builds(
    lambda chat, extra: {"messages": chat, **extra},
    messages,
    st.dictionaries(settings_fields, values | st.integers(min_value=-3, max_value=3), max_size=4),
)


def _raw(value: Any) -> bytes:
    # allow_nan writes NaN/Infinity as the bare tokens Python's parser accepts and JSON does not have.
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["object", "object", "chat", "chat", "value", "deep", "bytes", "empty"]))
    if kind == "object":
        return _raw(draw(objects))
    if kind == "chat":
        return _raw(draw(chats))
    if kind == "value":
        return _raw(draw(values))
    if kind == "deep":
        depth = draw(st.integers(min_value=50, max_value=100_000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return (opener * depth + "1" + closer * depth).encode()
    if kind == "bytes":
        return draw(
            st.binary(max_size=64) | st.sampled_from([b"NaN", b"-Infinity", b"9" * 5000, b"\xff\xfe{", b"{"])
        )
    return b""


@dataclass(frozen=True)
class Endpoint:
    """One route of the table with the methods it answers."""

    route: Route
    methods: tuple[str, ...]
    params: tuple[str, ...] = field(default=())


def _endpoints(app: Starlette) -> list[Endpoint]:
    found = []
    for route in app.routes:
        assert isinstance(route, Route), f"{route!r} is not a plain route; teach this test to fuzz it"
        methods = tuple(sorted((route.methods or {"GET"}) - {"HEAD"})) or ("HEAD",)
        found.append(Endpoint(route, methods, tuple(route.param_convertors)))
    return found


@st.composite
def requests(draw: st.DrawFn, endpoints: list[Endpoint]) -> tuple[str, str, dict[str, str], bytes]:
    endpoint = draw(st.sampled_from(endpoints))
    method = draw(st.sampled_from(endpoint.methods))
    params: dict[str, str] = {}
    for name in endpoint.params:
        free = st.text(st.characters(codec="utf-8", exclude_characters="/?#"), min_size=1, max_size=20)
        params[name] = draw(st.sampled_from(CHOICES[name]) | free if name in CHOICES else free)
    path = endpoint.route.path_format
    for name, value in params.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    query: dict[str, str] = {}
    actions = ROUTES.get(params.get("route", ""))
    if actions is not None:
        query["Action"] = draw(st.sampled_from(sorted(actions)) | st.text(max_size=10))
    if draw(st.booleans()):
        query[draw(st.sampled_from(["maxKeys", "marker", "prefix", "delimiter", "expires"]))] = draw(
            st.text(max_size=10)
        )
    url = path + ("?" + urlencode(query) if query else "")
    return method, url, params, draw(bodies())


@dataclass
class Tally:
    sent: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


@contextmanager
def _served(app: Starlette) -> Iterator[tuple[Starlette, Any, httpx.AsyncClient]]:
    """``app`` with its lifespan running, and a client that reaches it in process."""
    loop = asyncio.new_event_loop()
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://127.0.0.1:8765",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        yield app, loop, client
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.close()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Starlette, Any, httpx.AsyncClient]]:
    with _served(app_module.create_app(Home(tmp_path_factory.mktemp("fuzz") / "home"), TOKEN)) as served:
        yield served


@pytest.fixture(scope="module")
def replica() -> Iterator[tuple[Starlette, Any, httpx.AsyncClient]]:
    """A deployed service's own app over the demo model, behind the platform's token as in production."""
    from runner.local.access import Gate
    from runner.local.engine import serve
    from runner.local.engine.loading import load_model

    model = load_model(Path(__file__).resolve().parents[2] / "models" / "tiny-adder")
    with _served(serve.create_app(model, gate=Gate(TOKEN))) as served:
        yield served


def _internal_in_body(response: httpx.Response) -> bool:
    """A failure the v1 envelope hides behind HTTP 200: the console's internal error code in the body."""
    try:
        answer = response.json()
    except ValueError:
        return False
    return isinstance(answer, dict) and (
        answer.get("error_code") == CONSOLE_INTERNAL_ERROR or answer.get("code") == "InternalError"
    )


def _send(loop: Any, client: httpx.AsyncClient, method: str, url: str, body: bytes) -> httpx.Response:
    content = body if method in ("POST", "PUT") else None
    return loop.run_until_complete(client.request(method, url, content=content))


@pytest.mark.parametrize("which", ["platform", "replica"])
def test_every_route_answers_malformed_requests_with_a_4xx_and_no_traceback(
    which: str, request: pytest.FixtureRequest
) -> None:
    app, loop, client = request.getfixturevalue(which)
    endpoints = _endpoints(app)
    tally = Tally()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests(endpoints))
    def one(request: tuple[str, str, dict[str, str], bytes]) -> None:
        method, url, _, body = request
        response = _send(loop, client, method, url, body)
        tally.sent += 1
        tally.by_status[response.status_code] = tally.by_status.get(response.status_code, 0) + 1
        unserved = response.status_code == 501 and response.json().get("code") == "NotImplemented"
        shown = f"{method} {url} {body[:200]!r} -> {response.text[:500]}"
        assert response.status_code < 500 or unserved, shown
        assert not _internal_in_body(response), shown
        assert not TRACEBACK.search(response.text), f"{method} {url} answered a traceback"

    one()
    print(f"fuzz {which}: {tally.sent} requests, statuses {dict(sorted(tally.by_status.items()))}")
    assert tally.sent >= EXAMPLES * 0.9


def test_the_fuzzer_reaches_every_route_of_the_table(platform: Any) -> None:
    """A route the generator could never produce would be a route this file silently stopped testing."""
    app, _, _ = platform
    for endpoint in _endpoints(app):
        for name in endpoint.params:
            assert name in CHOICES or name in ("suffix", "key", "name"), (
                f"{endpoint.route.path} has the parameter {name}; fuzzed as free text, say so here"
            )
    console = [e for e in _endpoints(app) if e.route.path == "/v2/{route}"]
    assert console
    assert set(CHOICES["route"]) == set(ROUTES)
    assert len(FIELDS) > 40, FIELDS  # the handlers' field names were found in their source
