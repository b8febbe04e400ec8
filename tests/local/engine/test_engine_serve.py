"""The model service: a real process on a free port, answering OpenAI-style chat over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
ADDER = ROOT / "models" / "tiny-adder"
GRADER = ROOT / "models" / "tiny-grader"
DATA = ROOT / "data" / "addition"


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


pytestmark = pytest.mark.slow
TOKEN = "replica-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def service():
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner.local.engine.serve", "--model", str(ADDER), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "QFRUN_LOCAL_TOKEN": TOKEN},
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("listening http://127.0.0.1:"), (
            proc.stderr.read() if proc.poll() is not None else line
        )
        base = line.removeprefix("listening ")
        httpx.get(f"{base}/healthz", timeout=30).raise_for_status()
        yield proc, base, time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_service_answers_a_chat_in_openai_shape(service):
    _, base, _ = service
    reply = httpx.post(
        f"{base}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "23+45=?"}], "temperature": 0, "max_tokens": 5},
        headers=AUTH,
        timeout=30,
    )
    assert reply.status_code == 200
    body = reply.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "tiny-adder"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "68"}
    assert body["choices"][0]["finish_reason"] in {"stop", "length"}
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    models = httpx.get(f"{base}/v1/models", headers=AUTH, timeout=10).json()
    assert models["data"][0]["id"] == "tiny-adder"


def test_concurrent_chats_are_all_answered(service):
    _, base, _ = service
    sums = [(a, a + 11) for a in range(10, 26)]

    def ask(pair):
        a, b = pair
        body = {"messages": [{"role": "user", "content": f"{a}+{b}=?"}], "max_tokens": 5}
        return httpx.post(f"{base}/v1/chat/completions", json=body, headers=AUTH, timeout=60).json()

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(ask, sums))
    right = sum(
        r["choices"][0]["message"]["content"] == str(a + b) for r, (a, b) in zip(replies, sums, strict=True)
    )
    assert right >= 12


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"messages": []}', 422, "'messages' must be a non-empty list"),
        (b'{"messages": [{"role": "robot", "content": "x"}]}', 422, "messages[0] needs a 'role'"),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
            422,
            "'temperature' must be",
        ),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "stream": true}',
            400,
            "Streaming is not supported",
        ),
    ],
)
def test_bad_requests_get_openai_style_errors(service, body, status, fragment):
    _, base, _ = service
    reply = httpx.post(f"{base}/v1/chat/completions", content=body, headers=AUTH, timeout=10)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert fragment in error["message"]
    assert error["type"] == "invalid_request_error"


def test_unknown_path_gets_an_error_body(service):
    _, base, _ = service
    reply = httpx.get(f"{base}/v2/nothing", headers=AUTH, timeout=10)
    assert reply.status_code == 404
    assert "/v2/nothing" in reply.json()["error"]["message"]


def test_a_replica_refuses_requests_without_the_platforms_credentials(service):
    _, base, _ = service
    chat = {"messages": [{"role": "user", "content": "1+1=?"}]}
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        reply = httpx.post(f"{base}/v1/chat/completions", json=chat, headers=headers, timeout=10)
        assert reply.status_code == 401
        assert reply.json()["error"]["type"] == "authentication_error"
        assert httpx.get(f"{base}/v1/models", headers=headers, timeout=10).status_code == 401
    rebound = {**AUTH, "Host": "attacker.example"}
    assert (
        httpx.post(f"{base}/v1/chat/completions", json=chat, headers=rebound, timeout=10).status_code == 403
    )
    page = {**AUTH, "Origin": "https://attacker.example"}
    assert httpx.post(f"{base}/v1/chat/completions", json=chat, headers=page, timeout=10).status_code == 403
    assert httpx.get(f"{base}/healthz", headers={"Host": "attacker.example"}, timeout=10).status_code == 403


def test_a_replica_will_not_start_without_credentials():
    env = {k: v for k, v in os.environ.items() if not k.startswith("QFRUN_LOCAL_")}
    done = subprocess.run(
        [sys.executable, "-m", "runner.local.engine.serve", "--model", str(ADDER), "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "needs the platform's credentials" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_replica_cuts_off_an_oversized_body_and_a_too_long_last_message(service):
    _, base, _ = service
    endless = (b"x" * 65536 for _ in range(100))  # 6.5 MB with no Content-Length: cut off while streaming
    reply = httpx.post(f"{base}/v1/chat/completions", content=endless, headers=AUTH, timeout=30)
    assert reply.status_code == 413
    long = {"messages": [{"role": "user", "content": "1+1=? " * 2000}], "max_tokens": 2}
    reply = httpx.post(f"{base}/v1/chat/completions", json=long, headers=AUTH, timeout=30)
    assert reply.status_code == 400
    assert "the limit is 3000" in reply.json()["error"]["message"]
    for bad in ({"seed": 2**70}, {"seed": -(10**400)}, {"temperature": float("nan")}, {"top_p": 10**400}):
        body = {"messages": [{"role": "user", "content": "1+1=?"}], **bad}
        raw = json.dumps(body).encode()  # NaN goes out as the non-JSON token NaN
        reply = httpx.post(f"{base}/v1/chat/completions", content=raw, headers=AUTH, timeout=10)
        assert 400 <= reply.status_code < 500, reply.text


def test_service_stops_cleanly_on_sigterm(service):
    proc, _, start_seconds = service
    print(f"service start to healthy: {start_seconds:.2f} s")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
