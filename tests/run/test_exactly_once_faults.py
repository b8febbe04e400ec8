"""Exactly-once when a create's answer is lost and the lookup that should resolve it fails too.

The client resolves a lost answer by looking the task up by name (tests/platform/test_platform_exactly_once).
When that lookup fails as well, the stage fails without knowing whether a task exists. Every later attempt
then keeps the same name and looks it up before creating anything, so the platform ends with one task per
stage whatever happened: measured here for every task kind and for deploy, over many seeds, and once on the
real local platform with the faults on the wire.
"""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from runner.platform.protocol import TaskKind
from runner.run.executor import FAILED, SUCCEEDED
from runner.testing.fake_platform import FakePlatform, Script
from runner.testing.pipelines import outcomes, run, write

KINDS = {
    "base_infer": TaskKind.BATCH_INFERENCE,
    "base_eval": TaskKind.EVALUATION,
    "w4": TaskKind.COMPRESSION,
    "serve": TaskKind.SERVICE,
}
SEEDS = range(48)


def one_task_per_stage(platform: FakePlatform) -> None:
    for stage in KINDS:
        assert len(platform.created_for(stage)) <= 1, f"{stage}: {platform.created_for(stage)}"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_lost_answer_and_a_failed_lookup_make_no_second_task_and_one_rerun_finishes(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    stage = rng.choice(sorted(KINDS))
    acted = rng.random() < 0.5
    scripts = {name: Script(polls=rng.randint(0, 2)) for name in KINDS}
    scripts[stage].lost_answer = acted
    platform = FakePlatform(scripts=scripts)
    path = write(tmp_path)

    first, state, _ = run(path, platform, keep_going=True)
    assert outcomes(first)[stage] == FAILED
    assert state.stages[stage].intent
    assert not state.stages[stage].task
    one_task_per_stage(platform)

    second, state, _ = run(path, platform)
    assert set(outcomes(second).values()) <= {SUCCEEDED, "up to date"}, outcomes(second)
    one_task_per_stage(platform)
    assert len(platform.created_for(stage)) == 1
    assert state.stages[stage].attempt == 2
    assert platform.tasks[state.stages[stage].task["task_id"]]["name"] == state.stages[stage].intent["name"]


@pytest.mark.parametrize("seed", range(12))
def test_lookups_that_keep_failing_never_let_a_later_attempt_create_under_a_new_name(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    stage = rng.choice(sorted(KINDS))
    scripts = {name: Script() for name in KINDS}
    scripts[stage].lost_answer = rng.random() < 0.5
    platform = FakePlatform(scripts=scripts)
    path = write(tmp_path)

    run(path, platform, keep_going=True)
    names = set()
    for _ in range(rng.randint(1, 3)):  # runs during which the platform cannot be asked
        platform.failing_lookups = 1
        summary, state, _ = run(path, platform, keep_going=True)
        assert outcomes(summary)[stage] == FAILED
        names.add(state.stages[stage].intent["name"])
        one_task_per_stage(platform)
    summary, state, _ = run(path, platform)
    assert outcomes(summary)[stage] == SUCCEEDED
    assert len(names) == 1
    assert state.stages[stage].intent["name"] in names
    one_task_per_stage(platform)


def test_changed_inputs_after_a_lost_answer_start_under_a_new_name(tmp_path: Path) -> None:
    scripts = {"base_infer": Script(lost_answer=True)}
    platform = FakePlatform(scripts=scripts)
    path = write(tmp_path)
    _, before, _ = run(path, platform, keep_going=True)
    path.write_text(path.read_text().replace("temperature: 0.1", "temperature: 0.2"))
    _, after, _ = run(path, platform)
    assert after.stages["base_infer"].intent["name"] != before.stages["base_infer"].intent["name"]


REPO = Path(__file__).resolve().parents[2]
REAL = """\
version: 1
name: lost
datasets:
  sums: {path: sums.jsonl}
stages:
  adder:
    type: model
    import: adder
  answers:
    type: infer
    model: adder
    dataset: sums
    params: {max_output_tokens: 4}
"""


@pytest.mark.slow
def test_on_the_real_local_platform_a_lost_create_answer_and_lookup_leave_one_task(tmp_path: Path) -> None:
    import secrets
    import shutil

    from runner.local.app import create_app
    from runner.local.home import Home
    from runner.platform.client import PlatformClient
    from runner.platform.settings import settings_from_pipeline
    from runner.testing.faults import FaultyTransport, action
    from runner.testing.serving import serve_app

    shutil.copytree(REPO / "models" / "tiny-adder", tmp_path / "adder")
    shutil.copy(REPO / "data" / "addition" / "smoke.jsonl", tmp_path / "sums.jsonl")
    path = write(tmp_path, REAL)
    token = secrets.token_hex(16)
    with serve_app(create_app(Home(tmp_path / "home"), token)) as url:
        settings = settings_from_pipeline("local", environ={"QFRUN_LOCAL_TOKEN": token}, local_base_url=url)
        faulty = FaultyTransport(httpx.HTTPTransport())
        faulty.lose_answer(action("CreateBatchInferenceTask"))
        faulty.refuse(action("DescribeBatchInferenceTasks"), times=settings.max_retries + 1)
        with PlatformClient(settings, transport=faulty) as client:
            first, _, _ = run(path, client)
        assert outcomes(first)["answers"] == FAILED
        assert [line.split(":")[0] for line in faulty.log][:2] == ["lost answer", "refused"]
        with PlatformClient(settings) as client:
            second, state, _ = run(path, client)
        assert outcomes(second)["answers"] == SUCCEEDED
        name = state.stages["answers"].intent["name"]
        assert state.stages["answers"].task["name"] == name
        listed = httpx.post(
            f"{url}/v2/batchinference",
            params={"Action": "DescribeBatchInferenceTasks"},
            json={"maxKeys": 100},
            headers={"Authorization": f"Bearer {token}"},
        ).json()["result"]["taskList"]
    assert [task["name"] for task in listed] == [name]
