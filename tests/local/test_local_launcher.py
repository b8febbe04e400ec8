"""The background platform: start writes platform.json once it answers, status reads it, stop ends it."""

from __future__ import annotations

import json
import os
import stat

import httpx
import pytest

from runner.errors import PlatformError
from runner.local import launcher, server
from runner.local.home import HOME_ENV, Home

pytestmark = pytest.mark.slow


def test_start_status_stop_round_trip(platform_home: Home):
    endpoint = launcher.start(platform_home, token="tok-123")
    try:
        assert endpoint.url.startswith("http://127.0.0.1:")
        assert "tok-123" not in repr(endpoint)
        info = json.loads(platform_home.info_path.read_text())
        assert info["url"] == endpoint.url
        assert "tok-123" not in platform_home.info_path.read_text()
        status = launcher.status(platform_home)
        assert status is not None
        assert status.healthy
        assert status.token_required
        assert launcher.start(platform_home, token="tok-123").url == endpoint.url  # reused, not a second one
        # Only this user reads the platform's files: the home is 0700 and what the server writes 0600.
        assert stat.S_IMODE(platform_home.root.stat().st_mode) == 0o700
        assert stat.S_IMODE(platform_home.db_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(platform_home.info_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(platform_home.log_path.stat().st_mode) == 0o600
        refused = httpx.post(f"{endpoint.url}/v2/model?Action=DescribeModel", json={"modelId": "amv-x"})
        assert refused.status_code == 401
        with pytest.raises(PlatformError, match="Another local platform already serves"):
            server.serve(platform_home)
    finally:
        assert launcher.stop(platform_home) is True
    assert launcher.status(platform_home) is None
    assert not platform_home.info_path.exists()
    assert launcher.stop(platform_home) is False


def test_ensure_running_reuses_the_live_platform(platform_home: Home, monkeypatch):
    monkeypatch.setenv(HOME_ENV, str(platform_home.root))
    first = launcher.ensure_running()
    try:
        assert launcher.ensure_running(platform_home).url == first.url
        assert httpx.get(f"{first.url}/healthz").json()["status"] == "ok"
    finally:
        launcher.stop(platform_home)


def test_stale_platform_json_of_a_dead_process_is_ignored(platform_home: Home):
    platform_home.ensure()
    platform_home.info_path.write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": 2**22 + 12345}))
    assert launcher.status(platform_home) is None
    assert not platform_home.info_path.exists()


def test_serve_refuses_a_non_loopback_host(platform_home: Home):
    with pytest.raises(PlatformError, match=r"binds to 127\.0\.0\.1 only"):
        server.serve(platform_home, host="0.0.0.0")


def test_the_launcher_imports_no_server_code() -> None:
    """What `qfrun run` loads to find or start the platform: no uvicorn, no app, no SQLite store."""
    import subprocess
    import sys

    code = (
        "import sys, runner.local.launcher, runner.run.connect\n"
        "print(sorted(m for m in ('uvicorn', 'starlette', 'sqlite3', 'runner.local.app',"
        " 'runner.local.store',"
        " 'runner.local.server', 'runner.local.workers') if m in sys.modules))"
    )
    # Without coverage's variables: measured, the child would load coverage, whose data file is SQLite.
    env = {key: value for key, value in os.environ.items() if not key.startswith("COVERAGE_")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.strip() == "[]"


def test_a_platform_killed_mid_run_is_started_again_on_the_same_address_and_keeps_its_tasks(
    platform_home: Home, monkeypatch, tmp_path, adder_dir
):
    """The client `qfrun run` opens survives `kill -9` of the platform it started: the next request starts it
    again on the same URL, and the task created before the kill finishes there; no second task."""
    import hashlib
    import os
    import signal
    import time

    from runner.platform.protocol import TaskKind, TaskRequest, TaskStatus
    from runner.run.connect import open_platform

    monkeypatch.setenv(HOME_ENV, str(platform_home.root))
    monkeypatch.delenv("QFRUN_LOCAL_TOKEN", raising=False)
    client = open_platform({"kind": "local"}, notify=lambda line: None)
    try:
        model = client.import_model(name="tiny-adder", path=str(adder_dir))
        rows = tmp_path / "sums.jsonl"
        rows.write_text('{"prompt": "1+1=?", "response": "2"}\n', encoding="utf-8")
        digest = hashlib.sha256(rows.read_bytes()).hexdigest()
        dataset = client.ensure_dataset(name="sums", path=str(rows), sha256=digest)
        request = TaskRequest(
            TaskKind.BATCH_INFERENCE,
            "qf-answer-0123456789",
            {
                "model_version_id": model.version_id,
                "dataset_id": dataset.dataset_id,
                "inference_params": {"max_output_tokens": 4},
                "input_bos_uri": dataset.batch_input_uri,
            },
        )
        ref = client.create_task(request)
        before = launcher.status(platform_home)
        assert before is not None
        os.kill(before.pid, signal.SIGKILL)

        deadline = time.monotonic() + 120
        info = client.describe_task(ref)  # refused, started again, answered
        while not info.status.terminal and time.monotonic() < deadline:
            time.sleep(0.2)
            info = client.describe_task(ref)
        after = launcher.status(platform_home)
        assert after is not None
        assert after.pid != before.pid
        assert after.url == before.url == client.settings.console_base_url
        assert info.status is TaskStatus.SUCCEEDED, info.message
        assert client.find_task(TaskKind.BATCH_INFERENCE, request.name) == ref
    finally:
        client.close()
        launcher.stop(platform_home)
