"""Fixtures for the local platform's tests: the real app served by uvicorn on 127.0.0.1, a free port.

``platform_server`` starts ``create_app`` in a thread (port 0, bound before uvicorn starts, so the URL is
known at once); ``Api`` is a tiny raw-HTTP caller, so these tests check the wire exactly as
docs/platform-api.md writes it, independently of the platform client.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.local.app import create_app
from runner.local.credentials import LocalKeys, load_or_create
from runner.local.home import Home
from runner.local.store import Store
from runner.testing.in_process import in_process
from runner.testing.serving import serve_app

REPO = Path(__file__).resolve().parents[2]
ADDER = REPO / "models" / "tiny-adder"
DATA = REPO / "data" / "addition"


@dataclass
class Api:
    """Raw calls to one running platform."""

    url: str
    token: str | None = None
    app: Any = None  # the served Starlette app, for tests that reach into app.state
    client: httpx.Client | None = None  # set: calls go in-process (runner.testing.in_process), not over TCP

    def post(self, path: str, body: Any = None, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        bearer = token if token is not None else self.token
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        headers.update(kwargs.pop("headers", {}))
        if self.client is not None:
            return self.client.post(path, json=body, headers=headers, **kwargs)
        return httpx.post(self.url + path, json=body, headers=headers, timeout=60, **kwargs)

    def call(self, route: str, action: str, body: dict[str, Any]) -> Any:
        """A console action that must succeed; returns its ``result``."""
        response = self.post(f"/v2/{route}?Action={action}", body)
        assert response.status_code == 200, response.text
        payload = response.json()
        assert payload["requestId"] == response.headers["X-Bce-Request-Id"]
        return payload["result"]

    def upload(self, name: str, text: str) -> dict[str, Any]:
        sha = hashlib.sha256(text.encode()).hexdigest()
        result: dict[str, Any] = self.call(
            "dataset", "ImportLocalDataset", {"name": name, "sha256": sha, "content": text}
        )
        return result

    def wait(self, check: Callable[[], Any], timeout: float = 90.0, every: float = 0.2) -> Any:
        """Poll ``check`` until it returns a truthy value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(every)
        raise AssertionError(f"not reached within {timeout} s")


@contextmanager
def serve_in_thread(home: Home, token: str | None = None, keys: LocalKeys | None = None) -> Iterator[Api]:
    """Serve ``create_app(home, token, keys)`` on a free loopback port until the block ends (lifespan too);
    the ``Api`` sends ``token``, else the token the platform made for ``home``, as qfrun's client does."""
    app = create_app(home, token, keys)
    with serve_app(app) as url:
        yield Api(url, token or load_or_create(home).token, app)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """A fresh platform home (its folders made), for tests of the platform's parts without its server."""
    return Home(tmp_path / "home").ensure()


@pytest.fixture
def store(home: Home) -> Iterator[Store]:
    """The home's SQLite store, open for the test and closed after it."""
    opened = Store(home.db_path)
    yield opened
    opened.close()


@pytest.fixture
def asgi_api(platform_home: Home) -> Iterator[Api]:
    """The platform app called in-process (no server, no port); its task runner and services run as served."""
    with in_process(platform_home) as (client, app):
        yield Api("", load_or_create(platform_home).token, app, client)


@pytest.fixture
def platform_home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture
def platform_api(platform_home: Home) -> Iterator[Api]:
    with serve_in_thread(platform_home) as api:
        yield api


@pytest.fixture(scope="session")
def adder_dir() -> Path:
    """The committed demo model (helper C's models/tiny-adder)."""
    if not (ADDER / "config.json").is_file():
        pytest.fail(f"The demo model is missing: {ADDER} has no config.json.")
    return ADDER


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def _addition_rows(count: int) -> list[dict[str, Any]]:
    lines = (DATA / "eval.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:count]]


def _fake_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    return folder


@pytest.fixture
def fake_model() -> Callable[[Path], Path]:
    """Makes a folder shaped like a model (config.json + .safetensors) for tests that never load it."""
    return _fake_model


@pytest.fixture
def addition_rows() -> Callable[[int], list[dict[str, Any]]]:
    """The first N held-out rows of data/addition/eval.jsonl."""
    return _addition_rows


@pytest.fixture
def platform_client() -> Callable[..., Api]:
    """Makes an ``Api`` for a platform URL (e.g. one that ``launcher.start`` returned)."""
    return Api


@pytest.fixture
def serve_platform() -> Callable[..., Any]:
    """``serve_in_thread`` for tests that start (and restart) their own platform."""
    return serve_in_thread
