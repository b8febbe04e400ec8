"""The BOS state lock and backend at their edges, against the real local platform over HTTP: a note that is
not qfrun's, a lock released between a put and a read, an answer lost after the put landed, a platform that
cannot be reached, a publish that repeats the last snapshot, and a rescue copy that cannot be written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner.errors import PlatformError, PlatformUnavailable, StateError, StateLockedError
from runner.local.app import create_app
from runner.local.credentials import load_or_create
from runner.local.home import Home
from runner.platform.bos import BosClient
from runner.platform.settings import ENV_LOCAL_TOKEN, settings_from_pipeline
from runner.state import bos_lock
from runner.state.bos_backend import BosBackend
from runner.state.bos_lock import BosLock, LockNote
from runner.state.records import StageRecord, StageStatus
from runner.testing.serving import serve_app

BUCKET = "qfrun-local"
KEY = "ci/edges.state.json"


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    home = Home(tmp_path / "home")
    with serve_app(create_app(home, None, None)) as served:
        monkeypatch.setenv(ENV_LOCAL_TOKEN, load_or_create(home).token)
        yield served


def _connect(url: str, retries: int | None = None) -> BosClient:
    settings = settings_from_pipeline({"kind": "local", "url": url})
    return BosClient(settings if retries is None else replace(settings, max_retries=retries))


NOWHERE = "http://127.0.0.1:9"  # nothing listens there: each try is refused at once


@pytest.fixture
def client(url: str) -> Iterator[BosClient]:
    with _connect(url) as opened:
        yield opened


def _lock(client: BosClient, command: str = "qfrun run a.yaml", **options: Any) -> BosLock:
    return BosLock(client, BUCKET, KEY + ".lock", command=command, notify=lambda _: None, **options)


# -- the note --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"not json", b"[]", b'{"holder": "x"}', b'{"lock_id": "a", "holder": "b", "expires": "soon"}', b"\xff"],
    ids=["garbage", "list", "no-id", "bad-expiry", "not-utf8"],
)
def test_a_note_that_is_not_qfruns_reads_as_none(data: bytes) -> None:
    assert LockNote.parse(data) is None


def test_a_note_round_trips_and_describes_its_holder() -> None:
    note = LockNote("id1", "me@host pid 1", "qfrun run a.yaml", "2026-01-01T00:00:00Z", 1_800_000_000.0)
    assert LockNote.parse(note.to_bytes()) == note
    assert note.describe() == (
        "me@host pid 1, started 2026-01-01T00:00:00Z, lock id id1, expires 2027-01-15T08:00:00Z: "
        "qfrun run a.yaml"
    )
    assert json.loads(note.to_bytes())["expires_at"] == "2027-01-15T08:00:00Z"


def test_a_user_name_that_cannot_be_found_is_a_question_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    def nobody() -> str:
        raise KeyError("uid 12345 has no name")

    monkeypatch.setattr(bos_lock.getpass, "getuser", nobody)
    assert bos_lock._user() == "?"


# -- taking the lock -------------------------------------------------------------------------------------


def test_a_lock_object_that_is_not_a_note_is_taken_over_as_long_expired(client: BosClient) -> None:
    client.put_object(BUCKET, KEY + ".lock", b"written by hand", content_type="text/plain")
    told: list[str] = []
    lock = BosLock(client, BUCKET, KEY + ".lock", command="qfrun run a.yaml", notify=told.append).acquire()
    try:
        assert told == [
            f"Took over the expired state lock bos:/{BUCKET}/{KEY}.lock (a note qfrun cannot read)."
        ]
        found = lock.read()
        assert found is not None
        assert found[0] is not None
        assert found[0].lock_id == lock.note.lock_id
    finally:
        lock.release()
    assert lock.read() is None


def test_a_live_lock_names_its_holder_to_the_second_run(client: BosClient) -> None:
    first = _lock(client, "qfrun run first.yaml").acquire()
    try:
        with pytest.raises(StateLockedError) as caught:
            _lock(client, "qfrun run second.yaml").acquire()
        assert "qfrun run first.yaml" in str(caught.value)
        assert "`qfrun state unlock PIPELINE --force`" in str(caught.value)
    finally:
        first.release()


def test_a_lock_released_between_the_put_and_the_read_is_taken_on_the_second_try(
    client: BosClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = _lock(client, "qfrun run other.yaml").acquire()
    lock = _lock(client)
    real_read = BosLock.read

    def read_after_release(self: BosLock) -> Any:
        if self is lock:
            other.release()  # the holder ends just after our create-only put was refused
        return real_read(self)

    monkeypatch.setattr(BosLock, "read", read_after_release)
    lock.acquire()
    monkeypatch.undo()
    try:
        found = lock.read()
        assert found is not None
        assert found[0] is not None
        assert found[0].lock_id == lock.note.lock_id
    finally:
        lock.release()


def test_a_put_whose_answer_was_lost_is_recognised_as_this_runs_own(
    client: BosClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = _lock(client)
    real_put = BosClient.put_object
    calls: list[str] = []

    def landed_then_refused(self: BosClient, bucket: str, key: str, data: bytes, **options: Any) -> str:
        calls.append(options.get("if_none_match", "") or options.get("if_match", ""))
        if len(calls) == 1:
            real_put(self, bucket, key, data, **options)  # it landed, but the answer was lost and the retry
            raise PlatformError("precondition failed", status=412)  # met its own object
        return real_put(self, bucket, key, data, **options)

    monkeypatch.setattr(BosClient, "put_object", landed_then_refused)
    lock.acquire()
    monkeypatch.undo()
    try:
        assert calls == ["*"]  # no takeover put: the note read back was this run's own
        found = lock.read()
        assert found is not None
        assert found[1] == lock._etag
    finally:
        lock.release()


def test_an_unreachable_platform_is_a_state_error_naming_the_lock(tmp_path: Path) -> None:
    with _connect(NOWHERE, retries=0) as client, pytest.raises(StateError) as caught:
        BosLock(client, BUCKET, KEY + ".lock", command="qfrun run a.yaml").acquire()
    assert str(caught.value).startswith(f"The state lock bos:/{BUCKET}/{KEY}.lock cannot be taken: ")
    assert not isinstance(caught.value, StateLockedError)


def test_a_renewal_that_fails_for_an_outage_is_retried_and_not_a_lost_lock(
    client: BosClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = _lock(client).acquire()
    try:

        def outage(*args: Any, **kwargs: Any) -> str:
            raise PlatformUnavailable("connection refused")

        monkeypatch.setattr(client, "put_object", outage)
        with pytest.raises(PlatformUnavailable):
            lock.renew()
        monkeypatch.undo()
        lock.check()  # not lost: the next beat renews it
        lock.renew()
        lock.check()
    finally:
        lock.release()


def test_a_release_after_a_takeover_leaves_the_new_holders_lock(client: BosClient) -> None:
    clock = [1000.0]
    first = _lock(client, ttl_s=60.0, clock=lambda: clock[0]).acquire()
    first._stop.set()  # its heartbeat is gone, as in a crashed run
    clock[0] += 120
    second = _lock(client, "qfrun run second.yaml", ttl_s=60.0, clock=lambda: clock[0]).acquire()
    try:
        first.release()
        found = second.read()
        assert found is not None
        assert found[0] is not None
        assert found[0].lock_id == second.note.lock_id
        first.renew()
        with pytest.raises(StateError, match="was taken over or broken while this run held it"):
            first.check()
    finally:
        second.release()


# -- the backend -----------------------------------------------------------------------------------------


def _backend(url: str, rescue: Path) -> BosBackend:
    return BosBackend(lambda: _connect(url), BUCKET, KEY, "edges", rescue_dir=rescue, notify=lambda _: None)


def test_a_state_that_cannot_be_read_is_a_state_error_naming_where(tmp_path: Path) -> None:
    backend = BosBackend(lambda: _connect(NOWHERE, retries=0), BUCKET, KEY, "edges", rescue_dir=tmp_path)
    with pytest.raises(StateError) as caught:
        backend.read()
    assert str(caught.value).startswith(f"The state bos:/{BUCKET}/{KEY} cannot be read: ")


def test_no_lock_note_is_no_holder_and_a_held_lock_is_named(
    url: str, client: BosClient, tmp_path: Path
) -> None:
    backend = _backend(url, tmp_path)
    assert backend.lock_note() is None
    with backend.hold("qfrun run edges.yaml"):
        note = backend.lock_note()
        assert note is not None
        assert note.command == "qfrun run edges.yaml"
    assert backend.lock_note() is None


def test_unlocking_a_state_nobody_locked_says_so(url: str, tmp_path: Path) -> None:
    assert (
        _backend(url, tmp_path).unlock(force=False)
        == f"The state bos:/{BUCKET}/{KEY} is not locked; nothing to unlock."
    )


def test_a_lock_whose_note_cannot_be_read_is_broken_without_force(
    url: str, client: BosClient, tmp_path: Path
) -> None:
    client.put_object(BUCKET, KEY + ".lock", b"{}", content_type="application/json")
    said = _backend(url, tmp_path).unlock(force=False)
    assert said == f"Broke the state lock bos:/{BUCKET}/{KEY}.lock (a note qfrun cannot read)."
    assert client.head_object(BUCKET, KEY + ".lock") is None


def test_a_snapshot_published_twice_is_put_once(
    url: str, client: BosClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _backend(url, tmp_path)
    puts: list[str] = []
    real_put = BosClient.put_object

    def counted(self: BosClient, bucket: str, key: str, data: bytes, **options: Any) -> str:
        if key == KEY:
            puts.append(key)
        return real_put(self, bucket, key, data, **options)

    monkeypatch.setattr(BosClient, "put_object", counted)
    with backend.hold("qfrun run edges.yaml") as state:
        state.record("a", StageRecord(StageStatus.SUCCEEDED, "f1", "r1"))
        assert state.on_saved is not None
        state.on_saved(state.snapshot())  # published now, if the record's own save had not yet
        published = len(puts)
        state.on_saved(state.snapshot())  # the same bytes again: nothing to publish
        state.on_saved(state.snapshot())
        assert len(puts) == published
    assert backend.read().stages["a"].fingerprint == "f1"


def test_a_state_that_cannot_be_published_nor_rescued_says_both(
    url: str, client: BosClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("in the way of the rescue folder")
    backend = _backend(url, blocked / "rescue")
    with backend.hold("qfrun run edges.yaml") as state:
        client.put_object(BUCKET, KEY, b"{}", content_type="application/json")  # someone else wrote it
        with pytest.raises(StateError) as caught:
            state.record("a", StageRecord(StageStatus.SUCCEEDED, "f1", "r1"))
    message = str(caught.value)
    assert "was not updated (someone else wrote it while this run held the lock)" in message
    assert "this run's state could not be kept locally either" in message
