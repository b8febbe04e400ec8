"""The official ``qianfan`` SDK as a test oracle: the real local platform, a request recorder, an SDK runner.

``serve_recorded`` serves ``create_app`` on 127.0.0.1 behind ``Recorder`` (an ASGI wrapper that keeps every
request and answer), with the demo model and eight held-out addition rows imported. ``SdkPlatform.run``
runs Python code in a fresh interpreter whose environment reaches the platform only through the SDK's own
variables, set by the recipe of docs/sdk-compat.md: ``LocalCredentials.sdk_environment`` (what ``qfrun
platform env`` prints: ``QIANFAN_CONSOLE_API_BASE_URL``, ``QIANFAN_BASE_URL`` and the AK/SK pair the platform
made at its first start, read from its ``credentials.json``; polling intervals shortened with the SDK's
``QIANFAN_*_POLLING_INTERVAL``), in its
own working folder (the SDK writes ``tmp.zip`` and reads ``.env`` there). A fresh process per example is
what a user runs, and keeps the SDK's global config, caches and threads out of the test process.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runner.local.app import create_app
from runner.local.credentials import LocalCredentials, load_or_create
from runner.local.home import Home
from runner.testing.serving import serve_app

REPO = Path(__file__).resolve().parents[2]  # runner/testing/ -> the checkout
ADDER = REPO / "models" / "tiny-adder"
EVAL_ROWS = REPO / "data" / "addition" / "eval.jsonl"
EXAMPLES = REPO / "tests" / "sdk" / "examples"
RESULT_MARK = "SDK-RESULT "


@dataclass(frozen=True)
class Call:
    """One recorded request and its answer."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    answer: Any
    headers: dict[str, str]

    @property
    def route(self) -> str:
        """``POST /v2/model?Action=DescribeModel`` or ``POST /wenxinworkshop/dataset/info``."""
        action = self.query.get("Action")
        return f"{self.method} {self.path}" + (f"?Action={action}" if action else "")


@dataclass
class Recorder:
    """ASGI wrapper that records every HTTP exchange of the app it wraps."""

    app: ASGIApp
    calls: list[Call] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent: list[bytes] = []
        answer: list[bytes] = []
        status: list[int] = []

        async def receive_body() -> Message:
            message = await receive()
            sent.append(message.get("body", b""))
            return message

        def record() -> None:
            query = dict(httpx.QueryParams(scope["query_string"].decode()))
            headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
            self.calls.append(
                Call(
                    scope["method"],
                    scope["path"],
                    query,
                    _json(b"".join(sent)),
                    status[0],
                    _json(b"".join(answer)),
                    headers,
                )
            )

        async def send_answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
                if not message.get("more_body"):
                    # Recorded before the last byte goes out: once a client has its answer, the call is in
                    # ``calls`` (recorded after sending, a test could look before it was there).
                    record()
            await send(message)

        await self.app(scope, receive_body, send_answer)

    def since(self, start: int) -> list[Call]:
        return self.calls[start:]


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@dataclass
class SdkPlatform:
    url: str
    credentials: LocalCredentials = field(repr=False)
    recorder: Recorder
    version_id: str
    set_id: str
    dataset_id: str
    workdir: Path
    runs: int = 0

    def sdk_env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("QIANFAN_")}
        env.update(self.credentials.sdk_environment(self.url))
        env.update(
            QIANFAN_CACHE_DIR=str(self.workdir / "qianfan-cache"),
            QIANFAN_EVALUATION_ONLINE_POLLING_INTERVAL="0.5",
            QIANFAN_BATCH_RUN_STATUS_POLLING_INTERVAL="0.5",
            QIANFAN_DEPLOY_STATUS_POLLING_INTERVAL="0.5",
            QIANFAN_EXPORT_STATUS_POLLING_INTERVAL="0.5",
        )
        return env

    @property
    def access_key(self) -> str:
        return self.credentials.keys.access_key

    def example(self, name: str) -> str:
        """An example file with the page's placeholder ids replaced by this platform's."""
        text = (EXAMPLES / name).read_text(encoding="utf-8")
        return text.replace("amv-xx", self.version_id).replace("ds-xx", self.dataset_id)

    def run(
        self, code: str, *, timeout: float = 300, env: dict[str, str] | None = None
    ) -> tuple[Any, list[Call]]:
        """Run ``code`` under the SDK's environment (``env`` overrides it); its ``report(...)`` value and the
        requests it made."""
        start = len(self.recorder.calls)
        self.runs += 1
        folder = self.workdir / f"run-{self.runs}"
        folder.mkdir()
        prelude = (
            f"import json\ndef report(value):\n    print({RESULT_MARK!r} + json.dumps(value, default=str))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", prelude + code],
            env={**self.sdk_env(), **(env or {})},
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        results = [
            line[len(RESULT_MARK) :] for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)
        ]
        if done.returncode != 0 or not results:
            raise SdkFailed(done.returncode, done.stdout[-3000:], done.stderr[-6000:])
        return json.loads(results[-1]), self.recorder.since(start)


class SdkFailed(AssertionError):
    """The SDK's process failed; the message keeps its output for the test report."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(f"the SDK exited {returncode}\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
        self.stderr = stderr


@contextmanager
def serve_recorded(workdir: Path) -> Iterator[SdkPlatform]:
    """The real platform over ``workdir/home`` behind a Recorder, with the demo model and data imported."""
    # No credentials given: the platform makes its own, as for a user, and the SDK's signatures must pass
    # its bce-auth-v1 check with the pair the recipe reads.
    home = Home(workdir / "home")
    recorder = Recorder(create_app(home))
    credentials = load_or_create(home)
    with serve_app(recorder) as url:
        # Setup through the local-only import actions: the SDK page starts from a model and a dataset
        # that already exist on the platform.
        token = credentials.token
        model = _call(url, token, "model", "ImportLocalModel", {"name": "tiny-adder", "path": str(ADDER)})
        rows = "".join(EVAL_ROWS.read_text(encoding="utf-8").splitlines(keepends=True)[:8])
        sha = hashlib.sha256(rows.encode()).hexdigest()
        dataset = _call(
            url, token, "dataset", "ImportLocalDataset", {"name": "addition", "sha256": sha, "content": rows}
        )
        yield SdkPlatform(
            url, credentials, recorder, model["modelId"], model["modelSetId"], dataset["versionId"], workdir
        )


def _call(url: str, token: str, route: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.post(f"{url}/v2/{route}?Action={action}", json=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result
