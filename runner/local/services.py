"""Deployed services: each replica is one ``runner.local.engine.serve`` process on a loopback port.

Why processes behind the platform: a replica loads its own model runtime, so the server stays light and a
crashing replica cannot take it down; the platform answers the chat paths and forwards round-robin. Status
tells the truth in Qianfan's words [S2]: ``Deploying`` until every replica answers ``/healthz``, ``Serving``
after, ``Failed`` with the replica's own last error lines, ``Stopped`` when the prepaid term ends (a timer
stops the replicas) or the compute is released. A replica's port is as reachable as the platform's, so it
requires the platform's own credentials (handed over in its environment, never its command line), and the
platform sends its token with every request it forwards. A postpaid service has no term. A billed month is
``MONTH_HOURS`` hours; ``QFRUN_LOCAL_HOUR_SECONDS`` shortens an hour for tests.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx

from runner.local.credentials import LocalCredentials, load_or_create
from runner.local.home import Home
from runner.local.processes import ChildProcess, kill_orphan, terminate_group
from runner.local.rows import (
    DEPLOYING,
    LIVE_SERVICE_STATUSES,
    SERVICE_FAILED,
    SERVICE_STOPPED,
    SERVING,
    ServiceRow,
)
from runner.local.store import Store
from runner.local.warm import PIPE, launch
from runner.local.workers import job_env
from runner.platform.settings import ENV_LOCAL_ACCESS_KEY, ENV_LOCAL_SECRET_KEY, ENV_LOCAL_TOKEN

log = logging.getLogger(__name__)

SERVE_MODULE = "runner.local.engine.serve"
SERVE_WARM = (SERVE_MODULE,)  # imported into the warm worker before it forks a replica (runner.local.zygote)
HOUR_ENV = "QFRUN_LOCAL_HOUR_SECONDS"
MONTH_HOURS = 30 * 24  # Qianfan bills prepaid services by the month; the docs do not say how long one is
START_TIMEOUT = 120.0
WATCH_SECONDS = 1.0
_LISTENING = re.compile(r"listening\s+(http://127\.0\.0\.1:\d+)")


def hour_seconds() -> float:
    """Seconds in a billed hour: 3600, or ``$QFRUN_LOCAL_HOUR_SECONDS`` (a test hook)."""
    raw = os.environ.get(HOUR_ENV, "").strip()
    try:
        value = float(raw) if raw else 3600.0
    except ValueError:
        value = 3600.0
    return value if value > 0 else 3600.0


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


@dataclass
class _Deployment:
    processes: list[ChildProcess] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    turn: itertools.count[int] = field(default_factory=itertools.count)
    ready: threading.Event = field(default_factory=threading.Event)
    timer: threading.Timer | None = None
    stopping: threading.Event = field(default_factory=threading.Event)


class ServiceManager:
    """Starts, watches, times out and stops the replicas of every live service."""

    def __init__(
        self,
        home: Home,
        store: Store,
        *,
        python: str | None = None,
        credentials: LocalCredentials | None = None,
    ) -> None:
        self.home = home
        self.store = store
        self.python = python or sys.executable
        self.credentials = credentials or load_or_create(home)
        self._live: dict[str, _Deployment] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._watcher: threading.Thread | None = None
        self._starting: list[threading.Thread] = []  # deploy threads, joined at shutdown

    # -- life cycle ----------------------------------------------------------------------------------------
    def deploy(self, service: ServiceRow, *, expires_at: float | None) -> None:
        """Start deploying a service in the background; its replicas stop at ``expires_at`` (epoch) if set."""
        deployment = _Deployment()
        with self._lock:
            if self._closing.is_set() or service.id in self._live:
                return
            self._live[service.id] = deployment
        if expires_at is not None:
            delay = max(0.0, expires_at - time.time())
            deployment.timer = threading.Timer(delay, self.expire, (service.id,))
            deployment.timer.daemon = True
            deployment.timer.start()
        with self._lock:
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="service-watch", daemon=True)
                self._watcher.start()
        starter = threading.Thread(
            target=self._start, args=(service, deployment), name=f"deploy-{service.id}"
        )
        with self._lock:
            self._starting = [thread for thread in self._starting if thread.is_alive()] + [starter]
        starter.start()

    def delete(self, service_id: str) -> None:
        """Release the compute: stop the replicas; the service reads ``Stopped`` (a terminal one stays)."""
        self._stop(service_id)
        self.store.update_service(
            service_id,
            only_if=LIVE_SERVICE_STATUSES,
            status=SERVICE_STOPPED,
            replicas=[],
            message="The service's compute was released, so its replicas were stopped.",
        )

    def redeploy(self, service_id: str, model_version_id: str) -> bool:
        """Serve another model version (ModifyService): stop the replicas and start new ones, same term.

        False when the service is no longer live (a stopped or failed service keeps its model).
        """
        self._stop(service_id)
        if not self.store.update_service(
            service_id,
            only_if=LIVE_SERVICE_STATUSES,
            model_version_id=model_version_id,
            status=DEPLOYING,
            replicas=[],
            message="",
        ):
            return False
        service = self.store.service(service_id)
        assert service is not None
        self.deploy(service, expires_at=parse_iso(service.expires_at) if service.expires_at else None)
        return True

    def expire(self, service_id: str) -> None:
        self._stop(service_id)
        self.store.update_service(
            service_id,
            only_if=LIVE_SERVICE_STATUSES,
            status=SERVICE_STOPPED,
            replicas=[],
            message="The service's prepaid term ended, so its replicas were stopped.",
        )

    def recover(self) -> None:
        """Bring back the live services of a previous platform process (or expire those whose term ended)."""
        for service in self.store.services(LIVE_SERVICE_STATUSES):
            for replica in service.replicas:
                kill_orphan(int(replica.get("pid", 0)), SERVE_MODULE)
            expires = parse_iso(service.expires_at) if service.expires_at else None  # None: postpaid
            if expires is not None and expires <= time.time():
                self.store.update_service(service.id, replicas=[])
                self.expire(service.id)
                continue
            self.store.update_service(
                service.id, status=DEPLOYING, replicas=[], message="Redeploying after a platform restart."
            )
            self.deploy(service, expires_at=expires)

    def shutdown(self) -> None:
        """Stop every replica (the platform is going away); live services are redeployed by ``recover``."""
        self._closing.set()
        with self._lock:
            ids = list(self._live)
        for service_id in ids:
            self._stop(service_id)
        # A deploy thread still starting writes to the store when it stops; the store closes after this.
        with self._lock:
            starting = list(self._starting)
        for thread in starting:
            thread.join(START_TIMEOUT)

    def next_url(self, service_id: str) -> str | None:
        """A replica's base URL, round-robin, or None when the service has no started replica here."""
        with self._lock:
            deployment = self._live.get(service_id)
            if deployment is None or not deployment.urls:
                return None
            return deployment.urls[next(deployment.turn) % len(deployment.urls)]

    def replica_headers(self) -> dict[str, str]:
        """What the platform sends with each request it forwards to a replica."""
        return {"Authorization": f"Bearer {self.credentials.token}"}

    # -- internals -----------------------------------------------------------------------------------------
    def _stop(self, service_id: str) -> None:
        with self._lock:
            deployment = self._live.pop(service_id, None)
        if deployment is None:
            return
        deployment.stopping.set()
        if deployment.timer is not None:
            deployment.timer.cancel()
        for process in deployment.processes:
            terminate_group(process, wait=True)

    def _start(self, service: ServiceRow, deployment: _Deployment) -> None:
        version = self.store.version(service.model_version_id)
        folder = self.home.service_dir(service.id)
        folder.mkdir(parents=True, exist_ok=True)
        replicas = int(service.params.get("replicas", 1))
        try:
            if version is None:
                raise _DeployError(f"model version {service.model_version_id} no longer exists")
            logs = deployment.logs = [folder / f"replica-{index}.log" for index in range(replicas)]
            starts = [self._spawn(Path(version.path), log_path, deployment) for log_path in logs]
            self.store.update_service(
                service.id, replicas=[{"pid": process.pid, "url": ""} for process in deployment.processes]
            )
            for (process, first), log_path in zip(starts, logs, strict=True):
                deployment.urls.append(_listening_url(process, first, log_path, deployment.stopping))
            for url in deployment.urls:
                _wait_healthy(url, deployment.stopping)
        except _DeployError as exc:
            if not deployment.stopping.is_set():
                self._stop(service.id)
                self.store.update_service(
                    service.id,
                    only_if=(DEPLOYING,),
                    status=SERVICE_FAILED,
                    replicas=[],
                    message=f"Deploying service {service.name} failed: {exc}.",
                )
            return
        record = [
            {"pid": process.pid, "url": url}
            for process, url in zip(deployment.processes, deployment.urls, strict=True)
        ]
        if self.store.update_service(
            service.id, only_if=(DEPLOYING,), status=SERVING, replicas=record, message=""
        ):
            deployment.ready.set()

    def _watch(self) -> None:
        """Fail a serving service whose replica exited, with that replica's last log lines as the reason."""
        while not self._closing.wait(WATCH_SECONDS):
            with self._lock:
                live = list(self._live.items())
            for service_id, deployment in live:
                if not deployment.ready.is_set() or deployment.stopping.is_set():
                    continue
                for index, process in enumerate(deployment.processes):
                    if process.poll() is None:
                        continue
                    self._stop(service_id)
                    self.store.update_service(
                        service_id,
                        only_if=(SERVING,),
                        status=SERVICE_FAILED,
                        replicas=[],
                        message=f"Replica {index} of service {service_id} exited with status "
                        f"{process.returncode}: {_tail(deployment.logs[index])}",
                    )
                    break

    def _replica_secrets(self) -> dict[str, str]:
        return {
            ENV_LOCAL_TOKEN: self.credentials.token,
            ENV_LOCAL_ACCESS_KEY: self.credentials.keys.access_key,
            ENV_LOCAL_SECRET_KEY: self.credentials.keys.secret_key,
        }

    def _spawn(
        self, model_dir: Path, log_path: Path, deployment: _Deployment
    ) -> tuple[ChildProcess, list[bytes]]:
        """Start one replica; its first stdout line (the port) arrives in the returned list."""
        argv = ["--model", str(model_dir), "--host", "127.0.0.1", "--port", "0"]
        with log_path.open("ab") as stderr:
            process = launch(
                self.python,
                SERVE_MODULE,
                argv,
                env={**job_env(), **self._replica_secrets()},
                worker_env=job_env(),
                stdout=PIPE,
                stderr=stderr,
                warm=SERVE_WARM,
            )
        deployment.processes.append(process)
        if deployment.stopping.is_set():  # stopped (deleted, expired) while this replica was being spawned
            terminate_group(process, wait=True)
        assert process.stdout is not None
        first: list[bytes] = []
        threading.Thread(target=_drain, args=(process.stdout, log_path, first), daemon=True).start()
        return process, first


def _listening_url(
    process: ChildProcess, first: list[bytes], log_path: Path, stopping: threading.Event
) -> str:
    """Wait for a replica's ``listening http://127.0.0.1:PORT`` line and return its base URL."""
    deadline = time.monotonic() + START_TIMEOUT
    while not first and process.poll() is None and time.monotonic() < deadline:
        if stopping.is_set():
            raise _DeployError("it was stopped while starting")
        time.sleep(0.05)
    match = _LISTENING.search(first[0].decode(errors="replace")) if first else None
    if match is not None:
        return match.group(1)
    if process.poll() is None:
        raise _DeployError(f"a replica did not report its port within {START_TIMEOUT:.0f} s")
    process.wait(5)  # let the replica's last stderr lines reach its log
    time.sleep(0.1)
    raise _DeployError(f"a replica exited with status {process.returncode}: {_tail(log_path)}")


class _DeployError(Exception):
    pass


def _drain(stream: IO[bytes], log_path: Path, first: list[bytes]) -> None:
    """Hand the first stdout line over, then copy the rest to the replica's log so the pipe never fills."""
    with stream, contextlib.suppress(ValueError, OSError):
        line = stream.readline()
        first.append(line or b"")
        with log_path.open("ab") as sink:
            for chunk in iter(stream.readline, b""):
                sink.write(chunk)
                sink.flush()


def _wait_healthy(url: str, stopping: threading.Event) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and not stopping.is_set():
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200:
                return
        time.sleep(0.1)
    if not stopping.is_set():
        raise _DeployError(f"the replica at {url} did not answer /healthz within {START_TIMEOUT:.0f} s")


def _tail(log_path: Path, lines: int = 5) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept) if kept else "(no output)"
