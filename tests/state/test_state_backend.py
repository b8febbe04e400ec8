"""Where the state is: ``--state`` over ``QFRUN_STATE`` over the pipeline's ``state:`` over the default file,
each a path or ``bos:/bucket/key``; and the local file backend's answers to ``qfrun state``."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import StateError
from runner.state.backend import ENV_STATE, BosLocation, state_location, with_target
from runner.state.file import StateFile
from runner.state.lock import RunLock
from runner.state.records import StageRecord, StageStatus
from runner.testing.cli import invoke as qfrun
from runner.testing.pipelines import write

PIPELINE = Path("/repo/pipes/p.yaml")
DECLARED = {
    "backend": "bos",
    "bucket": "team-state",
    "key": "p.state.json",
    "endpoint": "https://bj.bcebos.com",
}


def test_the_state_option_wins_over_the_environment_and_the_pipeline() -> None:
    env = {ENV_STATE: "bos:/from-env/p.json"}
    assert state_location("p", PIPELINE, DECLARED, Path("s.json"), env) == Path("s.json")
    assert state_location("p", PIPELINE, DECLARED, "bos://opt/a/b.json", env) == BosLocation(
        "opt", "a/b.json"
    )


def test_the_environment_wins_over_the_pipelines_state_mapping() -> None:
    env = {ENV_STATE: "bos:/from-env/p.json"}
    assert state_location("p", PIPELINE, DECLARED, None, env) == BosLocation("from-env", "p.json")


def test_the_pipelines_state_mapping_names_bucket_key_and_endpoint_or_a_local_path() -> None:
    found = state_location("p", PIPELINE, DECLARED, None, {})
    assert found == BosLocation("team-state", "p.state.json", "https://bj.bcebos.com")
    default_key = state_location("p", PIPELINE, {"backend": "bos", "bucket": "b-1"}, None, {})
    assert default_key == BosLocation("b-1", "qfrun/state/p.state.json")
    local = state_location("p", PIPELINE, {"backend": "local", "path": "st/p.json"}, None, {})
    assert local == Path("/repo/pipes/st/p.json")


def test_without_any_setting_the_state_is_the_file_beside_the_pipeline() -> None:
    assert state_location("p", PIPELINE, None, None, {}) == Path("/repo/pipes/.qfrun/p.state.json")


def test_each_named_target_keeps_its_own_state_wherever_it_is_kept_but_at_an_explicit_state_option() -> None:
    assert state_location("p", PIPELINE, None, None, {}, "prod") == Path(
        "/repo/pipes/.qfrun/p.prod.state.json"
    )
    assert state_location("p", PIPELINE, DECLARED, None, {}, "prod") == BosLocation(
        "team-state", "p.prod.state.json", "https://bj.bcebos.com"
    )
    default_key = state_location("p", PIPELINE, {"backend": "bos", "bucket": "b-1"}, None, {}, "dev")
    assert default_key == BosLocation("b-1", "qfrun/state/p.dev.state.json")
    local = state_location("p", PIPELINE, {"backend": "local", "path": "st/p.json"}, None, {}, "dev")
    assert local == Path("/repo/pipes/st/p.dev.json")
    # CI sets QFRUN_STATE once for every job: dev's and prod's jobs still never share one state.
    env = {ENV_STATE: "bos:/from-env/ci/p.state.json"}
    assert state_location("p", PIPELINE, None, None, env, "prod") == BosLocation(
        "from-env", "ci/p.prod.state.json"
    )
    assert state_location("p", PIPELINE, None, Path("exact.json"), env, "prod") == Path("exact.json")


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("a/p.state.json", "a/p.prod.state.json"),
        ("a/p.json", "a/p.prod.json"),
        ("a/state", "a/state.prod"),
        (".state.json", ".state.prod.json"),
        ("bos:/b/k/p.state.json", "bos:/b/k/p.prod.state.json"),
    ],
)
def test_the_target_goes_into_the_last_name_of_a_state_location(written: str, expected: str) -> None:
    assert with_target(written, "prod") == expected
    assert with_target(written, None) == written


def test_a_bos_location_without_a_key_is_refused_naming_where_it_was_given() -> None:
    with pytest.raises(StateError) as caught:
        state_location("p", PIPELINE, None, None, {ENV_STATE: "bos:/only-bucket"})
    assert str(caught.value) == (
        "QFRUN_STATE: 'bos:/only-bucket' is not a BOS object; write bos:/bucket/path/name.state.json."
    )


def test_state_unlock_of_a_held_local_file_names_the_holder_and_says_to_stop_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_STATE, raising=False)
    path = write(tmp_path)
    with RunLock(tmp_path / ".qfrun" / "demo.state.json", command="qfrun busy.yaml", pipeline="demo"):
        code, _, err = qfrun(capsys, "state", "unlock", str(path), "--force")
    assert code == 4
    assert "Another qfrun run holds the state of pipeline 'demo' (pid " in err
    assert "qfrun busy.yaml" in err
    assert "it ends with the process that holds it, so stop that process rather than break the lock." in err
    code, out, _ = qfrun(capsys, "state", "unlock", str(path))
    assert code == 0
    assert (
        out == f"The state file {tmp_path / '.qfrun' / 'demo.state.json'} is not locked; nothing to unlock.\n"
    )


def test_state_push_into_a_local_file_writes_the_next_generation_and_list_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_STATE, raising=False)
    path = write(tmp_path)
    pulled = StateFile(tmp_path / "elsewhere.json", "demo")
    pulled.stages["base"] = StageRecord(
        status=StageStatus.SUCCEEDED, fingerprint="abc", task={"kind": "x", "task_id": "t-1", "name": "n"}
    )
    pulled.generation = 7
    snapshot = tmp_path / "pulled.json"
    snapshot.write_bytes(pulled.snapshot())
    code, out, _ = qfrun(capsys, "state", "push", str(path), str(snapshot))
    assert code == 0
    local = tmp_path / ".qfrun" / "demo.state.json"
    assert out == f"Pushed {snapshot} to {local}: generation 8, 1 stage.\n"
    assert StateFile.load(local, "demo").stages["base"].fingerprint == "abc"
    code, out, _ = qfrun(capsys, "state", "list", str(path))
    assert out.splitlines() == [f"# {local}: generation 8, 1 stage", "base  succeeded  abc           t-1"]
