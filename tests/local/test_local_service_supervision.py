"""The service manager supervises replica processes: a service serves once every replica reports its port and
answers /healthz, fails with the replica's own last log lines when one exits, and is stopped, never left
running, when its compute is released while it starts.

The replicas are real processes on 127.0.0.1 started the way the manager starts the engine's replica (its
``python`` runs ``-m runner.local.engine.serve ...``), but the interpreter is a small stand-in script that
loads no model, so each case takes about a second; test_local_services.py deploys the real replica.
"""

from __future__ import annotations

import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.local import services
from runner.local.credentials import load_or_create
from runner.local.home import Home
from runner.local.processes import pid_alive
from runner.local.rows import DEPLOYING, SERVICE_FAILED, SERVICE_STOPPED, SERVING, ServiceRow
from runner.local.services import HOUR_ENV, ServiceManager
from runner.local.store import Store

pytestmark = pytest.mark.slow  # starts (stand-in) replica processes

# The stand-in replica: $REPLICA_MODE says how it behaves; it answers /healthz like the engine's replica.
REPLICA = r"""
import http.server, os, sys, threading, time
mode = os.environ.get("REPLICA_MODE", "serve")
if mode == "crash":
    print("loading the model failed: no weights", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "silent":
    print("warming up", flush=True)
    time.sleep(60)
    sys.exit(0)

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Health)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"listening http://127.0.0.1:{server.server_port}", flush=True)
if mode == "dies":
    flag = os.environ["REPLICA_FLAG"]
    while not os.path.exists(flag):
        time.sleep(0.05)
    print("out of memory while answering", file=sys.stderr, flush=True)
    os._exit(9)
time.sleep(120)
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    """An executable that runs the stand-in replica whatever arguments the manager gives it."""
    script = tmp_path / "replica.py"
    script.write_text(REPLICA, encoding="utf-8")
    launcher = tmp_path / "python"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n', encoding="utf-8")
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    return launcher


@pytest.fixture
def manager(platform_home: Home, stand_in: Path) -> Iterator[ServiceManager]:
    platform_home.ensure()
    store = Store(platform_home.db_path)
    manager = ServiceManager(
        platform_home, store, python=str(stand_in), credentials=load_or_create(platform_home)
    )
    try:
        yield manager
    finally:
        manager.shutdown()
        store.close()


def _service(
    manager: ServiceManager, tmp_path: Path, fake_model: Callable[[Path], Path], replicas: int = 1
) -> ServiceRow:
    store = manager.store
    model = store.ensure_model("m")
    version = store.add_version(
        version_id="amv-1",
        model_id=model.id,
        path=str(fake_model(tmp_path / "model")),
        content_hash="0" * 64,
        size_bytes=64,
        source="import",
        details={},
    )
    row = store.create_service(
        service_id="svco-1",
        name="adder",
        endpoint_suffix="adder",
        model_version_id=version.id,
        params={"replicas": replicas},
    )
    store.update_service(row.id, status=DEPLOYING)
    found = store.service(row.id)
    assert found is not None
    return found


def _until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)


def _status(manager: ServiceManager) -> str:
    row = manager.store.service("svco-1")
    assert row is not None
    return row.status


def test_a_service_serves_once_its_replicas_answer_and_forwards_round_robin(
    manager: ServiceManager,
    tmp_path: Path,
    fake_model: Callable[[Path], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLICA_MODE", "serve")
    manager.deploy(_service(manager, tmp_path, fake_model, replicas=2), expires_at=None)
    _until(lambda: _status(manager) == SERVING)
    row = manager.store.service("svco-1")
    assert row is not None
    urls = [replica["url"] for replica in row.replicas]
    assert len(set(urls)) == 2
    assert all(url.startswith("http://127.0.0.1:") for url in urls)
    assert [manager.next_url("svco-1") for _ in range(4)] == urls + urls
    assert manager.next_url("svco-none") is None
    pids = [replica["pid"] for replica in row.replicas]
    manager.delete("svco-1")
    assert _status(manager) == SERVICE_STOPPED
    assert not any(pid_alive(pid) for pid in pids)  # released: the replicas are gone when delete returns


def test_a_replica_that_exits_while_serving_fails_the_service_with_its_last_words(
    manager: ServiceManager,
    tmp_path: Path,
    fake_model: Callable[[Path], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flag = tmp_path / "die-now"
    monkeypatch.setenv("REPLICA_MODE", "dies")
    monkeypatch.setenv("REPLICA_FLAG", str(flag))
    monkeypatch.setattr(services, "WATCH_SECONDS", 0.05)
    manager.deploy(_service(manager, tmp_path, fake_model), expires_at=None)
    _until(lambda: _status(manager) == SERVING)
    flag.touch()
    _until(lambda: _status(manager) == SERVICE_FAILED)
    row = manager.store.service("svco-1")
    assert row is not None
    assert row.message == "Replica 0 of service svco-1 exited with status 9: out of memory while answering"
    assert row.replicas == []
    assert manager.next_url("svco-1") is None


def test_a_replica_that_cannot_start_fails_the_deployment_with_its_reason(
    manager: ServiceManager,
    tmp_path: Path,
    fake_model: Callable[[Path], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLICA_MODE", "crash")
    manager.deploy(_service(manager, tmp_path, fake_model), expires_at=None)
    _until(lambda: _status(manager) == SERVICE_FAILED)
    row = manager.store.service("svco-1")
    assert row is not None
    assert row.message == (
        "Deploying service adder failed: a replica exited with status 3: "
        "loading the model failed: no weights."
    )


def test_a_replica_that_never_reports_its_port_fails_the_deployment_in_time(
    manager: ServiceManager,
    tmp_path: Path,
    fake_model: Callable[[Path], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLICA_MODE", "silent")
    monkeypatch.setattr(services, "START_TIMEOUT", 1.0)
    manager.deploy(_service(manager, tmp_path, fake_model), expires_at=None)
    _until(lambda: _status(manager) == SERVICE_FAILED)
    row = manager.store.service("svco-1")
    assert row is not None
    assert row.message == "Deploying service adder failed: a replica did not report its port within 1 s."


def test_a_service_released_while_its_replica_starts_is_stopped_and_its_replica_ended(
    manager: ServiceManager,
    tmp_path: Path,
    fake_model: Callable[[Path], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLICA_MODE", "silent")
    manager.deploy(_service(manager, tmp_path, fake_model), expires_at=None)
    _until(lambda: bool((manager.store.service("svco-1") or _never()).replicas))
    pid = manager.store.service("svco-1").replicas[0]["pid"]  # type: ignore[union-attr]
    manager.delete("svco-1")
    assert _status(manager) == SERVICE_STOPPED
    _until(lambda: not pid_alive(pid))
    time.sleep(0.3)  # the deploy thread notices; it must not mark the released service failed
    assert _status(manager) == SERVICE_STOPPED


def _never() -> ServiceRow:
    raise AssertionError("the service row went away")


def test_a_prepaid_term_that_ends_stops_the_service(
    manager: ServiceManager,
    tmp_path: Path,
    fake_model: Callable[[Path], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLICA_MODE", "serve")
    manager.deploy(_service(manager, tmp_path, fake_model), expires_at=time.time() + 60)
    _until(lambda: _status(manager) == SERVING)
    manager.expire("svco-1")  # what the term's timer calls
    row = manager.store.service("svco-1")
    assert row is not None
    assert (row.status, row.message) == (
        SERVICE_STOPPED,
        "The service's prepaid term ended, so its replicas were stopped.",
    )


@pytest.mark.parametrize(("raw", "seconds"), [("", 3600.0), ("2.5", 2.5), ("soon", 3600.0), ("-1", 3600.0)])
def test_the_billed_hour_can_be_shortened_for_tests_but_never_made_invalid(
    monkeypatch: pytest.MonkeyPatch, raw: str, seconds: float
) -> None:
    monkeypatch.setenv(HOUR_ENV, raw)
    assert services.hour_seconds() == seconds


def test_a_replica_process_is_handed_the_platforms_credentials_in_its_environment_only(
    manager: ServiceManager,
    tmp_path: Path,
    fake_model: Callable[[Path], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLICA_MODE", "serve")
    manager.deploy(_service(manager, tmp_path, fake_model), expires_at=None)
    _until(lambda: _status(manager) == SERVING)
    pid = manager.store.service("svco-1").replicas[0]["pid"]  # type: ignore[union-attr]
    token = manager.credentials.token
    command = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    environment = Path(f"/proc/{pid}/environ").read_bytes().decode()
    assert token not in command
    assert f"={token}" in environment
    assert "--model" in command.split("\0")
