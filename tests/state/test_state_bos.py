"""The BOS state backend against the real local platform over HTTP (127.0.0.1, a free port): two checkouts
share one state, the lock object holds across runners and names its holder, a crashed run's lock is taken
over after its expiry or broken with ``qfrun state unlock --force``, a run that lost its lock never writes
over its successor, and ``qfrun state pull|push|list`` move a local state file into BOS.

The platform's tasks come from the fake platform (the ``platform`` fixture); only the state goes to BOS.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.errors import StateError
from runner.local.app import create_app
from runner.local.credentials import load_or_create
from runner.local.home import Home
from runner.platform.bos import BosClient
from runner.platform.settings import ENV_LOCAL_TOKEN, settings_from_pipeline
from runner.state.bos_backend import BosBackend
from runner.state.bos_lock import BosLock
from runner.state.records import StageRecord, StageStatus
from runner.testing.cli import invoke as qfrun
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import DEMO, write
from runner.testing.serving import serve_app

BUCKET = "qfrun-local"
KEY = "ci/demo.state.json"
WHERE = f"bos:/{BUCKET}/{KEY}"


@pytest.fixture
def local_bos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The local platform served on a free loopback port; its token in the environment, as CI sets it."""
    home = Home(tmp_path / "home")
    with serve_app(create_app(home, None, None)) as url:
        monkeypatch.setenv(ENV_LOCAL_TOKEN, load_or_create(home).token)
        monkeypatch.delenv("QFRUN_STATE", raising=False)
        yield url


def _connect(url: str) -> BosClient:
    return BosClient(settings_from_pipeline({"kind": "local", "url": url}))


@pytest.fixture
def client(local_bos: str) -> Iterator[BosClient]:
    with _connect(local_bos) as opened:
        yield opened


def _checkout(folder: Path, url: str, text: str = DEMO) -> Path:
    """One clone of the repository: the pipeline, on the local platform, with its state in BOS."""
    folder.mkdir(parents=True, exist_ok=True)
    shared = (
        f"platform: {{kind: local, url: '{url}'}}\nstate: {{backend: bos, bucket: {BUCKET}, key: {KEY}}}\n"
    )
    return write(folder, text.replace("vars:\n", shared + "vars:\n", 1))


def _to_run(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> list[str]:
    code, out, err = qfrun(capsys, "plan", str(path), "--format", "json", *extra)
    assert code == 0, err
    plan = json.loads(out)
    return [stage["id"] for stage in plan["stages"] if stage["action"] in ("run", "re-run", "resume")]


def test_a_pull_request_that_changes_one_stage_plans_one_stage_when_the_state_is_shared_in_bos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform, local_bos: str
) -> None:
    main = _checkout(tmp_path / "main", local_bos)
    assert qfrun(capsys, str(main))[0] == 0  # the merge to main ran everything, state saved in BOS

    changed = DEMO.replace(
        "evaluators: [{kind: rule, accuracy: true}]",
        "evaluators: [{kind: rule, accuracy: true, similarity: true}]",
    )
    assert changed != DEMO
    pull_request = _checkout(tmp_path / "pr", local_bos, changed)  # a fresh CI clone: no .qfrun folder
    assert not (tmp_path / "pr" / ".qfrun").exists()
    assert _to_run(capsys, pull_request) == ["base_eval"]
    # The same clone with a state of its own (what CI had before) would plan every stage.
    alone = _to_run(capsys, pull_request, "--state", str(tmp_path / "pr" / "own.state.json"))
    assert alone == ["base", "base_infer", "base_eval", "w4", "serve"]

    assert _to_run(capsys, _checkout(tmp_path / "other", local_bos)) == []  # unchanged file: nothing to run


W8 = DEMO.replace("weight: W4A16C16", "weight: W8A16C16")


def test_the_merge_applies_the_plan_the_pull_request_saved_and_refuses_it_once_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform, local_bos: str
) -> None:
    """The CI loop: main ran; the pull request's job plans with --out; the merge's job, on another clone,
    runs that plan (one stage); the same plan applied again is stale and creates nothing."""
    assert qfrun(capsys, str(_checkout(tmp_path / "main", local_bos)))[0] == 0
    pull_request = _checkout(tmp_path / "pr", local_bos, W8)
    plan = tmp_path / "plan.json"
    assert qfrun(capsys, "plan", str(pull_request), "--out", str(plan))[0] == 0
    merged = _checkout(tmp_path / "merged", local_bos, W8)
    before = len(platform.created)
    code, _, err = qfrun(capsys, "run", str(merged), "--plan", str(plan))
    assert code == 0, err
    assert "2 succeeded, 3 up to date" in err  # w4, and serve after it, as the plan said
    assert len(platform.created) == before + 2
    code, _, err = qfrun(capsys, "run", str(merged), "--plan", str(plan))
    assert code == 2
    assert f"the state {WHERE} changed after the plan was made" in err
    assert len(platform.created) == before + 2


def test_diff_and_the_report_read_the_run_history_kept_in_bos_beside_the_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform, local_bos: str
) -> None:
    """Main ran twice (the second time with W8); a fresh clone, with no .qfrun folder, diffs the two runs."""
    main = _checkout(tmp_path / "main", local_bos)
    assert qfrun(capsys, str(main))[0] == 0
    code, _, err = qfrun(capsys, "diff", str(main))
    assert code == 2
    assert f"the history in bos:/{BUCKET}/ci/demo.state.history.jsonl keeps no earlier run" in err
    _checkout(tmp_path / "main", local_bos, W8)
    assert qfrun(capsys, str(main))[0] == 0
    assert not list((tmp_path / "main" / ".qfrun").glob("*.history.jsonl"))  # nothing machine-local
    with _connect(local_bos) as client:
        kept = client.get_object(BUCKET, "ci/demo.state.history.jsonl").decode().splitlines()
    assert len(kept) == 2
    report = json.loads((tmp_path / "main" / ".qfrun" / "reports" / "demo" / "report.json").read_text())
    assert len(report["history"]["runs"]) == 2

    fresh = _checkout(tmp_path / "fresh", local_bos, W8)
    code, out, err = qfrun(capsys, "diff", str(fresh))
    assert code == 0, err
    assert 'w4 (compress): succeeded\n      because weight: "W4A16C16" -> "W8A16C16"' in out
    first = json.loads(kept[0])["run_id"]
    assert out.startswith(f"Changes in demo from run {first} to run ")


def test_a_second_run_fails_at_once_naming_the_holder_of_the_bos_lock(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    platform: FakePlatform,
    local_bos: str,
    client: BosClient,
) -> None:
    path = _checkout(tmp_path, local_bos)
    other = BosLock(client, BUCKET, KEY + ".lock", command="qfrun other.yaml").acquire()
    try:
        code, _, err = qfrun(capsys, str(path))
    finally:
        other.release()
    assert code == 4
    assert f"Another qfrun run holds the state lock {WHERE}.lock (" in err
    assert f"lock id {other.note.lock_id}" in err
    assert "qfrun other.yaml" in err
    assert "qfrun state unlock PIPELINE --force" in err
    assert qfrun(capsys, str(path))[0] == 0  # released: the next run goes ahead


def test_a_crashed_runs_lock_is_taken_over_once_it_expires_and_named_in_the_output(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    platform: FakePlatform,
    local_bos: str,
    client: BosClient,
) -> None:
    path = _checkout(tmp_path, local_bos)
    crashed = BosLock(client, BUCKET, KEY + ".lock", command="qfrun crashed", ttl_s=60)
    crashed.clock = lambda: 1_000.0  # its expiry lies long in the past
    crashed.acquire()
    crashed._stop.set()  # a crash: no heartbeat, no release
    code, _, err = qfrun(capsys, str(path))
    assert code == 0, err
    assert f"Took over the expired state lock {WHERE}.lock" in err
    assert "qfrun crashed" in err


def test_state_unlock_breaks_a_live_lock_only_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], local_bos: str, client: BosClient
) -> None:
    path = _checkout(tmp_path, local_bos)
    held = BosLock(client, BUCKET, KEY + ".lock", command="qfrun gone").acquire()
    held._stop.set()
    code, _, err = qfrun(capsys, "state", "unlock", str(path))
    assert code == 4
    assert "it has not expired, so break it only if that run is gone" in err
    code, out, _ = qfrun(capsys, "state", "unlock", str(path), "--force")
    assert code == 0
    assert f"Broke the state lock {WHERE}.lock (" in out
    assert "qfrun gone" in out
    assert "is not locked; nothing to unlock" in qfrun(capsys, "state", "unlock", str(path))[1]


def test_a_run_that_lost_its_lock_stops_writing_and_keeps_its_state_for_push(
    tmp_path: Path, local_bos: str, client: BosClient
) -> None:
    backend = BosBackend(
        lambda: _connect(local_bos),
        BUCKET,
        KEY,
        "demo",
        rescue_dir=tmp_path / ".qfrun",
        notify=lambda _: None,
    )
    with contextlib.ExitStack() as stack:
        state = stack.enter_context(backend.hold("qfrun demo"))
        state.record("base", StageRecord(status=StageStatus.SUCCEEDED, fingerprint="f1"))
        successor = client.get_versioned(BUCKET, KEY)
        assert successor is not None
        client.put_object(BUCKET, KEY, successor[0].replace(b'"f1"', b'"f2"'))  # someone broke in
        with pytest.raises(StateError) as stopped:
            state.record("w4", StageRecord(status=StageStatus.SUCCEEDED, fingerprint="f3"))
    rescue = tmp_path / ".qfrun" / "demo.state.unpushed.json"
    assert str(stopped.value) == (
        f"The state {WHERE} was not updated (someone else wrote it while this run held the lock); qfrun "
        f"stopped, and this run's state is kept in {rescue}; check it, then `qfrun state push PIPELINE "
        f"{rescue}` puts it back."
    )
    assert b'"f2"' in client.get_object(BUCKET, KEY)  # the successor's state is untouched
    assert client.get_versioned(BUCKET, KEY + ".lock") is None  # the lock was let go
    assert json.loads(rescue.read_text())["stages"]["w4"]["fingerprint"] == "f3"
    pushed = backend.replace(rescue.read_bytes(), source=str(rescue), force=False)
    assert set(pushed.stages) == {"base", "w4"}
    assert backend.read().stages["w4"].fingerprint == "f3"


def test_state_pull_and_push_move_a_local_state_file_into_bos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform, local_bos: str
) -> None:
    text = DEMO.replace("vars:\n", f"platform: {{kind: local, url: '{local_bos}'}}\nvars:\n", 1)
    path = write(tmp_path, text)
    assert qfrun(capsys, str(path))[0] == 0  # the local file, as before
    local_file = tmp_path / ".qfrun" / "demo.state.json"
    code, pulled, _ = qfrun(capsys, "state", "pull", str(path))
    assert code == 0
    assert json.loads(pulled)["pipeline"] == "demo"

    remote = f"--state={WHERE}"
    code, out, _ = qfrun(capsys, "state", "push", str(path), str(local_file), remote)
    assert code == 0
    assert out.startswith(f"Pushed {local_file} to {WHERE}: generation ")
    assert _to_run(capsys, path, remote) == []  # everything up to date, read from BOS
    code, listed, _ = qfrun(capsys, "state", "list", str(path), remote)
    assert code == 0
    assert listed.startswith(f"# {WHERE}: generation ")
    rows = {line.split()[0]: line.split()[1] for line in listed.splitlines()[1:]}
    assert rows == dict.fromkeys(("base", "base_infer", "base_eval", "w4", "serve"), "succeeded")

    stale = tmp_path / "stale.json"
    stale.write_text(pulled.replace('"generation": ', '"generation": 0, "x": ', 1))
    code, _, err = qfrun(capsys, "state", "push", str(path), str(stale), remote)
    assert code == 4
    assert "has an unknown key 'x'" in err
    older = json.loads(pulled)
    older["generation"] = 0
    stale.write_text(json.dumps(older))
    code, _, err = qfrun(capsys, "state", "push", str(path), str(stale), remote)
    assert code == 4
    assert f"{stale} is generation 0, older than the state's generation" in err
    assert "--force" in err


def test_a_held_lock_is_renewed_by_its_heartbeat_and_knows_when_it_was_taken_over(client: BosClient) -> None:
    lock = BosLock(client, BUCKET, KEY + ".lock", command="qfrun demo", ttl_s=0.6).acquire()
    try:
        first = lock.note.expires
        deadline = time.monotonic() + 10
        while lock.note.expires == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock.note.expires > first  # renewed by the heartbeat (every ttl/3)
        lock.check()
        client.put_object(BUCKET, KEY + ".lock", b'{"lock_id": "other", "holder": "x", "expires": 1e12}')
        while not lock._lost and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(StateError, match="was taken over or broken while this run held it"):
            lock.check()
    finally:
        lock.release()
    assert client.get_versioned(BUCKET, KEY + ".lock") is not None  # the new holder's lock is left alone


def test_each_target_of_a_pipeline_keeps_its_own_object_in_bos(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    platform: FakePlatform,
    local_bos: str,
    client: BosClient,
) -> None:
    targets = (
        f"platforms:\n  dev: {{kind: local, url: '{local_bos}'}}\n  ci: {{kind: local, url: '{local_bos}'}}\n"
        f"default_target: dev\nstate: {{backend: bos, bucket: {BUCKET}, key: {KEY}}}\n"
    )
    path = write(tmp_path, DEMO.replace("vars:\n", targets + "vars:\n", 1))
    assert qfrun(capsys, str(path))[0] == 0
    keys = [found.key for found in client.list_objects(BUCKET, "ci/")]
    assert keys == ["ci/demo.dev.state.history.jsonl", "ci/demo.dev.state.json"]  # the history beside it
    assert _to_run(capsys, path, "--target", "ci") == ["base", "base_infer", "base_eval", "w4", "serve"]
    assert _to_run(capsys, path, "--target", "dev") == []
    # A plan saved for one target is never run on another.
    assert qfrun(capsys, "plan", str(path), "--target", "ci", "--out", str(tmp_path / "ci.json"))[0] == 0
    code, _, err = qfrun(capsys, "run", str(path), "--target", "dev", "--plan", str(tmp_path / "ci.json"))
    assert code == 2
    assert "was made for target ci, and this run is for target dev" in err
