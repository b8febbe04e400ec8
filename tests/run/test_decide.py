"""One decision for plan and run: the two cases where the plan once said one thing and the run did another."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import main
from runner.pipeline.spec import load_pipeline
from runner.run.decide import Action
from runner.run.executor import Executor, RunOptions
from runner.run.plan import Plan, make_plan
from runner.state.file import StageStatus, StateFile
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import DEMO, FAST, Recorder, outcomes, run, state_path, write


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it is written (qfrun's own handlers catch Exception only)."""


class KilledAtStart(Recorder):
    """Kills the run when ``stage`` starts: after its pending record, before its task intent."""

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.stage = stage

    def stage_started(self, stage_id: str, note: str) -> None:
        if stage_id == self.stage:
            raise Killed


def plan_of(path: Path) -> Plan:
    pipeline = load_pipeline(path)
    return make_plan(pipeline, StateFile.load(state_path(pipeline), pipeline.name))


def test_a_forced_rerun_killed_before_its_task_intent_is_planned_as_resumed_and_the_run_does_that(
    tmp_path: Path,
) -> None:
    path = write(tmp_path)
    platform = FakePlatform()
    run(path, platform)
    pipeline = load_pipeline(path)
    state = StateFile.load(state_path(pipeline), pipeline.name)
    options = RunOptions(force=("base_infer",), max_parallel=1, poll=FAST)
    with pytest.raises(Killed):
        Executor(pipeline, platform, state, options, KilledAtStart("base_infer")).run()
    state.close()
    record = StateFile.load(state_path(pipeline), pipeline.name).stages["base_infer"]
    assert record.status is StageStatus.PENDING
    assert record.intent is None

    plan = plan_of(path)
    planned = {stage.stage_id: stage.action for stage in plan.stages}
    why = {stage.stage_id: stage.reasons for stage in plan.stages}
    # Once the plan said all up to date here, and the run then created two tasks.
    assert planned["base_infer"] is Action.RESUME
    assert planned["base_eval"] is Action.RERUN
    assert why["base_infer"] == (
        "its attempt 2 stopped before its task was created; the run goes on with it",
    )
    created = len(platform.created)
    summary, _, recorder = run(path, platform)
    assert recorder.started == ["base_infer", "base_eval"]
    assert [stage for stage, action in planned.items() if action.will_run] == recorder.started
    assert len(platform.created) == created + 2
    assert set(outcomes(summary).values()) <= {"succeeded", "up to date"}


CLOSED_GATE = DEMO.replace("min_accuracy: 0.5", "min_accuracy: 0.5\n  flag: false\n  v: text").replace(
    "    params: {temperature: 0.1}",
    "    if: ${{ vars.flag }}\n    params: {temperature: '${{ vars.v + 1 }}'}",
)


def test_a_closed_gate_over_a_field_that_cannot_evaluate_is_gated_in_plan_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, CLOSED_GATE)
    plan = plan_of(path)
    (infer,) = [stage for stage in plan.stages if stage.stage_id == "base_infer"]
    # Once the plan said invalid (and --detailed-exitcode exited 1) while the run skipped it as gated.
    assert infer.action is Action.GATED
    assert infer.reasons == ("its if: ${{ vars.flag }} is false",)
    with pytest.raises(SystemExit) as exit_code:
        main(["plan", str(path), "--detailed-exitcode"])
    assert exit_code.value.code == 2  # the other stages would run; nothing is invalid
    capsys.readouterr()
    summary, state, _ = run(path, FakePlatform())
    assert outcomes(summary)["base_infer"] == "skipped"
    assert state.stages["base_infer"].reason == "gated: its if: ${{ vars.flag }} is false"
    assert outcomes(summary)["base_eval"] == "skipped"
    assert {stage.stage_id for stage in plan.stages if stage.action is Action.BLOCKED} == {
        "base_eval",
        "serve",
    }
