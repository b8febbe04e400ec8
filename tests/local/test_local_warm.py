"""The warm worker forks engine jobs that behave as the processes the platform started before it existed.

A job forked warm and the same job started as ``python -m runner.local.engine.job`` give the same result,
exit code, log and environment; stopping one ends its whole process group; a platform process killed with
SIGKILL takes its warm worker and every job along; a worker that cannot fork safely (a thread appeared)
and ``QFRUN_LOCAL_WARM=0`` both leave the platform starting jobs as processes of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from runner.local import warm
from runner.local.processes import ChildProcess, pid_alive, terminate_group
from runner.local.warm import WarmChild, WarmUnavailable, WarmWorker, launch
from runner.local.workers import JOB_MODULE, job_env

pytestmark = pytest.mark.slow  # starts a warm worker (imports torch) and job processes

PROBE = "runner.testing.warm_probe"


@pytest.fixture
def own_workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A registry of warm workers of this test's own, ended after it (a refusal retires a worker)."""
    monkeypatch.setattr(warm, "_workers", {})
    yield
    warm.shutdown_all()


def _spec(tmp_path: Path, entry: str, **params: Any) -> Path:
    workdir = tmp_path / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "kind": "probe",
                "entry": f"{PROBE}:{entry}",
                "params": params,
                "workdir": str(workdir),
                "progress_file": "",
            }
        )
    )
    return spec


def _quick(env: dict[str, str] | None = None, warm: Sequence[str] = ()) -> ChildProcess:
    """A short job that needs nothing: ``python -m json.tool --help``."""
    return _start("json.tool", ["--help"], env=env, warm=warm)


def _start(
    module: str,
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    out: int | IO[bytes] = subprocess.DEVNULL,
    warm: Sequence[str] = (),
) -> ChildProcess:
    """``launch`` as the task workers call it: the job's output (stdout and stderr) to ``out``."""
    return launch(
        sys.executable,
        module,
        argv,
        env=env or job_env(),
        worker_env=job_env(),
        stdout=out,
        stderr=out,
        warm=warm,
    )


def _run_job(
    tmp_path: Path, entry: str, env: dict[str, str], **params: Any
) -> tuple[ChildProcess, int, Any, str]:
    spec = _spec(tmp_path, entry, **params)
    log = tmp_path / "job.log"
    with log.open("ab") as sink:
        process = _start(JOB_MODULE, [str(spec)], env=env, out=sink)
    code = process.wait(120)
    result = json.loads((tmp_path / "work" / "result.json").read_text())
    return process, code, result, log.read_text()


def test_a_job_forked_warm_sees_what_a_job_started_as_a_process_sees(
    tmp_path: Path, own_workers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QFRUN_LOCAL_TOKEN", "platform-secret")  # the platform's: never handed to a job
    env = {**job_env(), "WARM_PROBE": "yes"}
    warm_process, warm_code, warm_result, warm_log = _run_job(tmp_path / "warm", "report", env)
    monkeypatch.setenv(warm.ENV_WARM, "0")
    cold_process, cold_code, cold_result, cold_log = _run_job(tmp_path / "cold", "report", env)

    assert isinstance(warm_process, WarmChild)
    assert isinstance(cold_process, subprocess.Popen)
    assert warm_code == cold_code == 0
    cold_draw, warm_draw = cold_result.pop("numpy_draw"), warm_result.pop("numpy_draw")
    cold_spec, warm_spec = str(tmp_path / "cold" / "spec.json"), str(tmp_path / "warm" / "spec.json")
    assert json.loads(json.dumps(warm_result).replace(warm_spec, cold_spec)) == cold_result
    assert warm_result["cmdline"] == [sys.executable, "-m", JOB_MODULE, warm_spec]  # as ps shows it
    assert warm_result["env"] == {
        "QFRUN_LOCAL_TOKEN": None,
        "QFRUN_LOCAL_ACCESS_KEY": None,
        "OMP_WAIT_POLICY": "PASSIVE",  # the engine's thread policy reaches forked jobs too
        "WARM_PROBE": "yes",
    }
    assert warm_result["leads_its_session"]
    assert warm_result["stdin_is_devnull"]
    assert warm_log == cold_log == "probe stdout\nprobe stderr\n"
    assert cold_draw is None  # the job itself never imports numpy; the warm worker did (torch does)
    _, _, again, _ = _run_job(tmp_path / "again", "report", env)
    assert again["numpy_draw"] != warm_draw  # each child reseeds numpy's global generator


def test_a_failing_job_forked_warm_fails_as_a_process_would(
    tmp_path: Path, own_workers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm_process, warm_code, warm_result, warm_log = _run_job(tmp_path / "warm", "fail", job_env())
    monkeypatch.setenv(warm.ENV_WARM, "0")
    _, cold_code, cold_result, cold_log = _run_job(tmp_path / "cold", "fail", job_env())
    assert isinstance(warm_process, WarmChild)
    assert warm_code == cold_code == 1
    assert warm_result == cold_result == {"error": "The probe job failed as asked."}
    assert warm_log.splitlines()[-1] == cold_log.splitlines()[-1] == "The probe job failed as asked."
    assert "Traceback" in warm_log


def _wait_for(path: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not (path.is_file() and path.read_text().endswith("\n")):
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.05)
    return path.read_text()


def _gone(*pids: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_terminating_a_warm_job_ends_its_whole_process_group(tmp_path: Path, own_workers: None) -> None:
    pids_file = tmp_path / "pids"
    spec = _spec(tmp_path, "wait_with_a_child", pids=str(pids_file))
    process = _start(JOB_MODULE, [str(spec)])
    assert isinstance(process, WarmChild)
    job, grandchild = map(int, _wait_for(pids_file).split())
    assert job == process.pid
    terminate_group(process, wait=True)
    assert process.returncode == -signal.SIGTERM
    assert _gone(job, grandchild)


HOST = """
import sys, time
from runner.local.warm import launch
from runner.local.workers import JOB_MODULE, job_env
process = launch(sys.executable, JOB_MODULE, [sys.argv[1]], env=job_env(), worker_env=job_env(),
                 stdout=2, stderr=2)
print(type(process).__name__, flush=True)
time.sleep(120)
"""


def test_a_platform_process_killed_with_sigkill_leaves_no_job_alive(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    spec = _spec(tmp_path, "wait_with_a_child", pids=str(pids_file))
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(spec)],
        stdout=subprocess.PIPE,
        env={**os.environ, warm.ENV_WARM: "1"},
    )
    try:
        assert host.stdout is not None
        assert host.stdout.readline() == b"WarmChild\n"
        job, grandchild = map(int, _wait_for(pids_file).split())
        zygotes = [pid for pid in _children(host.pid) if pid != job]
        assert zygotes, "the host has no warm worker"
        host.kill()
        host.wait()
        assert _gone(job, grandchild, *zygotes), "a job or the warm worker outlived its platform"
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        if host.stdout is not None:
            host.stdout.close()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def test_a_worker_that_gained_a_thread_refuses_and_the_job_starts_as_a_process(
    tmp_path: Path, own_workers: None, caplog: pytest.LogCaptureFixture
) -> None:
    worker = WarmWorker(sys.executable, job_env())
    try:
        with pytest.raises(WarmUnavailable, match="thread"):
            worker.spawn(
                "runner.local.engine.job",
                ["unused"],
                env=job_env(),
                stdout=2,
                stderr=2,
                warm=["runner.testing.warm_thread"],
            )
        assert not worker.accepting
    finally:
        worker.close()
    # Through launch: the refusal is a warning, and the job runs all the same, as a process.
    spec = _spec(tmp_path, "report")
    with (tmp_path / "job.log").open("ab") as sink:
        process = _start(JOB_MODULE, [str(spec)], out=sink, warm=["runner.testing.warm_thread"])
    assert isinstance(process, subprocess.Popen)
    assert process.wait(120) == 0
    assert json.loads((tmp_path / "work" / "result.json").read_text())["leads_its_session"]
    later = _quick()
    assert isinstance(later, subprocess.Popen)  # a worker that refused once is not asked again
    later.wait(60)


def test_warm_off_in_the_platforms_environment_starts_processes(
    own_workers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(warm.ENV_WARM, "0")
    process = _quick()
    assert isinstance(process, subprocess.Popen)
    assert process.wait(60) == 0
    assert warm._workers == {}  # none was started


def test_a_job_whose_load_time_environment_differs_starts_as_a_process(own_workers: None) -> None:
    env = {**job_env(), "OMP_NUM_THREADS": "7"}  # OpenMP read it when the worker loaded torch
    process = _quick(env=env)
    assert isinstance(process, subprocess.Popen)
    assert process.wait(60) == 0


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_replica_forked_warm_reports_its_port_and_answers_a_chat_through_the_platform(
    platform_api: Any, platform_home: Any, adder_dir: Path
) -> None:
    from runner.local.store import Store

    model = platform_api.call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(adder_dir)})
    body = {
        "modelSetId": model["modelSetId"],
        "modelId": model["modelId"],
        "name": "warm-svc",
        "urlSuffix": "warm",
        "resourceConfig": {"type": "GPU-1-1", "region": "bj", "replicasCount": 1},
        "billing": {
            "paymentTiming": "Prepaid",
            "reservation": {"reservationTimeUnit": "Month", "reservationLength": 1},
        },
    }
    created = platform_api.call("service", "CreateService", body)
    service_id = created["serviceId"]

    def settled() -> Any:
        service = platform_api.call("service", "DescribeService", {"serviceId": service_id})
        return None if service["runStatus"] == "Deploying" else service

    service = platform_api.wait(settled, timeout=120)
    assert service["runStatus"] == "Serving", service["failedReason"]
    store = Store(platform_home.db_path)
    try:
        (replica,) = store.service(service_id).replicas
    finally:
        store.close()
    pid = int(replica["pid"])
    assert _parent(pid) != os.getpid()  # forked by the warm worker, which this process started
    assert _parent(_parent(pid)) == os.getpid()
    command = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    assert command[:3] == [sys.executable.encode(), b"-m", b"runner.local.engine.serve"]
    response = platform_api.post(
        "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/warm", {"messages": [{"role": "user", "content": "2+3=?"}]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"].strip() == "5"
    release = {"serviceId": service_id, "instanceId": created["instanceId"]}
    assert platform_api.call("serviceresources", "ReleaseComputeUnit", release) is True
    assert _gone(pid)


def test_a_process_forked_from_a_platform_process_starts_its_own_warm_worker(own_workers: None) -> None:
    first = _quick()
    assert isinstance(first, WarmChild)
    assert first.wait(60) == 0
    (worker,) = warm._workers.values()
    pid = os.fork()
    if pid == 0:  # the inherited worker has no reader here, and its socket must not keep it alive
        os._exit(0 if warm._workers == {} and worker.control.fileno() == -1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert worker.accepting  # the parent's worker is untouched
    again = _quick()
    assert isinstance(again, WarmChild)
    assert again.wait(60) == 0


def test_every_kinds_warm_modules_leave_the_worker_able_to_fork(own_workers: None) -> None:
    """llmcompressor starts a jemalloc thread and numpy an OpenBLAS pool: both are fork-safe, and a kind
    whose warm modules made the worker refuse would quietly lose what the worker is for."""
    from runner.local.kinds import LOCAL_KINDS
    from runner.local.services import SERVE_WARM

    for modules in [*(kind.warm for kind in LOCAL_KINDS.values()), SERVE_WARM]:
        child = _quick(warm=modules)
        assert isinstance(child, WarmChild), modules
        assert child.wait(60) == 0


def test_orphan_recovery_recognises_a_warm_job_by_its_command_line_and_spares_the_worker(
    tmp_path: Path, own_workers: None
) -> None:
    from runner.local.processes import kill_orphan

    pids_file = tmp_path / "pids"
    spec = _spec(tmp_path / "ame-orphan", "wait_with_a_child", pids=str(pids_file))
    process = _start(JOB_MODULE, [str(spec)])
    assert isinstance(process, WarmChild)
    job, grandchild = map(int, _wait_for(pids_file).split())
    (worker,) = warm._workers.values()
    kill_orphan(worker.process.pid, JOB_MODULE)  # a recorded pid that is now the worker: not a job
    kill_orphan(job, JOB_MODULE, "ame-other")  # another task's record
    assert pid_alive(worker.process.pid)
    assert pid_alive(job)
    kill_orphan(job, JOB_MODULE, "ame-orphan")  # what TaskRunner.recover passes for this task
    assert _gone(job, grandchild)
    assert pid_alive(worker.process.pid)
