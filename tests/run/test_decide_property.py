"""The plan is the run: for random pipelines, states and selections, what ``qfrun plan`` says each stage
will do is what the executor then does against the fake platform.

A state is built from a history: maybe a finished run of an earlier version of the pipeline (other vars), then
maybe a run (with its own selection and --force) stopped at one of the points where the crash driver
(runner/testing/crash_driver.py) kills qfrun: after any state write, or after a task was created and before
it was recorded. What a kill there leaves is taken as it was at that point, state and platform alike. Then
maybe services the state records are released or forgotten and model versions deleted outside qfrun: plan
and run both decide on what a refresh then finds.

The executor's action is read from what it did, not from its decision: the note it started a stage with, the
outcome it settled it with, and the tasks the platform saw created. A plan's action that waited on the
outputs of a stage that runs first (``waits_on``) can only turn into a few others, which the test bounds.

``QFRUN_DECIDE_EXAMPLES`` sets the number of cases (default 100, about 10 s); try 2000 before a release.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from runner.pipeline.spec import Pipeline, load_pipeline
from runner.run.decide import Action
from runner.run.executor import Executor, RunOptions
from runner.run.plan import make_plan
from runner.run.refresh import SERVICE, Drift, recorded, refresh
from runner.state.file import StageRecord, StateFile
from runner.testing.crash_driver import Transitions
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import FAST, Recorder

EXAMPLES = int(os.environ.get("QFRUN_DECIDE_EXAMPLES", "100"))
NAME = "prop"
TASK_TYPES = ("infer", "evaluate", "compress", "deploy")


@dataclass(frozen=True)
class Selection:
    select: tuple[str, ...] = ()
    from_stages: tuple[str, ...] = ()
    force: tuple[str, ...] = ()


@st.composite
def stages(draw: st.DrawFn) -> dict[str, Any]:
    """Up to six stages, each naming only earlier ones: instant (model) and task stages, with needs:, if:
    (on vars, on an upstream's outputs, or one that cannot evaluate) and fields read from vars or outputs."""
    result: dict[str, Any] = {}
    for index in range(draw(st.integers(1, 6))):
        producers = [s for s, v in result.items() if v["type"] in ("model", "compress")]
        infers = [s for s, v in result.items() if v["type"] == "infer"]
        evaluates = [s for s, v in result.items() if v["type"] == "evaluate"]
        kinds = ["model"] + (["infer", "compress", "deploy", "evaluate"] if producers else [])
        kind = draw(st.sampled_from(kinds))
        stage: dict[str, Any] = {"type": kind}
        if kind == "model":
            stage["version_id"] = f"amv-{index}"
        elif kind == "infer":
            stage.update(model=draw(st.sampled_from(producers)), dataset="qa")
            stage["params"] = {
                "temperature": draw(
                    st.sampled_from([0.1, "${{ vars.t }}", "${{ vars.t }}", "${{ vars.v + 1 }}"])
                )
            }
            if draw(st.booleans()):  # a field whose value is an upstream's output
                stage["params"]["seed"] = (
                    f"${{{{ stages.{draw(st.sampled_from(producers))}.outputs.size_bytes }}}}"
                )
        elif kind == "evaluate" and infers and draw(st.booleans()):
            stage.update(
                infer=[draw(st.sampled_from(infers))], evaluators=[{"kind": "rule", "accuracy": True}]
            )
        elif kind == "evaluate":
            stage.update(models=[draw(st.sampled_from(producers))], dataset="qa")
            stage["evaluators"] = [{"kind": "rule", "accuracy": True}]
        elif kind == "compress":
            stage.update(model=draw(st.sampled_from(producers)), strategy="quantization", weight="W4A16C16")
        else:
            stage["model"] = draw(st.sampled_from(producers))
            stage["service"] = {
                "name": f"svc{index}",
                "url_suffix": f"s{index}",
                "billing": {"payment": "postpaid", "charge": "tokens"},
            }
            if draw(st.booleans()):
                stage["smoke_test"] = [
                    {"messages": [{"role": "user", "content": "2+3=?"}], "expect": {"contains": "5"}}
                ]
        gates = [None, None, None, None, "${{ vars.flag }}", "${{ vars.flag }}", "${{ vars.v + 1 > 0 }}"]
        gates += [f"${{{{ stages.{e}.outputs.metrics.accuracy >= vars.min }}}}" for e in evaluates]
        gate = draw(st.sampled_from(gates))
        if gate is not None:
            stage["if"] = gate
        if result and draw(st.integers(0, 3)) == 0:
            stage["needs"] = [draw(st.sampled_from(sorted(result)))]
        result[f"s{index}"] = stage
    return result


variables = st.fixed_dictionaries(
    {
        "flag": st.booleans(),
        "min": st.sampled_from([0.5, 0.95]),
        "t": st.sampled_from([0.1, 0.2]),
        "v": st.just("text"),
    }
)


def selections(stage_ids: list[str]) -> st.SearchStrategy[Selection]:
    some = st.lists(st.sampled_from(stage_ids), max_size=2, unique=True).map(tuple)
    none: st.SearchStrategy[tuple[str, ...]] = st.just(())
    return st.builds(
        Selection, st.one_of(none, none, some), st.one_of(none, none, none, some), st.one_of(none, none, some)
    )


class Observed(Recorder):
    """What the executor did with each stage, told by its observer."""

    def __init__(self) -> None:
        super().__init__()
        self.notes: dict[str, str] = {}

    def stage_started(self, stage_id: str, note: str) -> None:
        super().stage_started(stage_id, note)
        self.notes[stage_id] = note

    def action(self, stage_id: str) -> Action | None:
        """The action the run took; None for a stage it did not reach (stopped after a failure)."""
        if stage_id in self.notes:
            return {"running": Action.RUN, "re-running": Action.RERUN, "resuming": Action.RESUME}[
                self.notes[stage_id]
            ]
        if stage_id not in self.finished:
            return None
        outcome, message = self.finished[stage_id]
        if outcome == "up to date":
            return Action.UP_TO_DATE
        if outcome == "skipped":
            return Action.GATED if message.startswith("gated: ") else Action.BLOCKED
        assert outcome == "failed", (stage_id, outcome, message)
        return Action.INVALID


def write_pipeline(folder: Path, stage_specs: Mapping[str, Any], variables: Mapping[str, Any]) -> Pipeline:
    document = {
        "version": 1,
        "name": NAME,
        "vars": dict(variables),
        "datasets": {"qa": {"path": "qa.jsonl"}},
        "stages": dict(stage_specs),
    }
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load_pipeline(path)


def state_of(pipeline: Pipeline) -> StateFile:
    return StateFile.load(pipeline.path.parent / ".qfrun" / f"{NAME}.state.json", NAME, sync=False)


def execute(
    pipeline: Pipeline,
    platform: FakePlatform,
    selection: Selection,
    observer: Recorder,
    drift: Mapping[str, Drift] | None = None,
    **options: Any,
) -> StateFile:
    state = state_of(pipeline)
    run_options = RunOptions(
        select=selection.select,
        from_stages=selection.from_stages,
        force=selection.force,
        poll=FAST,
        **options,
    )
    Executor(pipeline, platform, state, run_options, observer, drift).run()
    return state


def change_outside(pipeline: Pipeline, platform: FakePlatform, draw: st.DrawFn) -> None:
    """Maybe release, forget or fail services and delete model versions the state records, as a console (or
    the platform itself) would."""
    state = state_of(pipeline)
    for resource in recorded(pipeline, state):
        if resource.what == SERVICE:
            fate = draw(st.sampled_from(["kept", "released", "gone", "failed"]), label=f"{resource.stage_id}")
            if fate == "failed":
                platform.fail_outside(resource.resource_id, "a replica exited")
            elif fate != "kept":
                platform.release_outside(resource.resource_id, forget=fate == "gone")
        elif draw(st.booleans(), label=f"{resource.stage_id} deleted"):
            platform.delete_version_outside(resource.resource_id)
    state.close()


def stopped_run(pipeline: Pipeline, platform: FakePlatform, selection: Selection, draw: st.DrawFn) -> None:
    """Run, keeping the state and the platform as they were at every crash point; go back to one of them."""
    points: list[tuple[str, str]] = []
    state = state_of(pipeline)

    def keep(_: int) -> None:
        stages = {stage_id: record.to_json() for stage_id, record in state.stages.items()}
        points.append((json.dumps(stages), json.dumps(platform.data)))

    transitions = Transitions(keep)
    transitions.watch(state)
    platform.on_create = transitions.passed
    options = RunOptions(
        select=selection.select,
        from_stages=selection.from_stages,
        force=selection.force,
        poll=FAST,
        max_parallel=1,
    )
    Executor(pipeline, platform, state, options, Recorder()).run()
    state.close()
    platform.on_create = None
    if not points:
        return
    stages, data = points[draw(st.integers(0, len(points) - 1), label="crash point")]
    for leftover in (state.path, state.journal_path):
        leftover.unlink(missing_ok=True)
    killed = StateFile(state.path, NAME, sync=False)
    killed.stages = {s: StageRecord.from_json(r, where=f"stages.{s}") for s, r in json.loads(stages).items()}
    killed.close()
    platform.data = json.loads(data)


# How a plan's action that waited on an upstream's outputs may still turn out: gated or invalid by those
# outputs, blocked when that upstream turned out so, resumed when an attempt of the same inputs is in flight,
# and up to date when a re-run upstream gave the same outputs.
def possible(planned: Action) -> set[Action]:
    turns = {planned, Action.GATED, Action.INVALID, Action.BLOCKED}
    if planned in (Action.RUN, Action.RERUN):
        turns.add(Action.RESUME)
    if planned is Action.RERUN:
        turns.add(Action.UP_TO_DATE)
    return turns


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_the_plan_for_every_stage_is_what_the_run_then_does(data: st.DataObject) -> None:
    draw = data.draw
    specs = draw(stages(), label="stages")
    ids = sorted(specs)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        (folder / "qa.jsonl").write_text('{"prompt": "2+3=?", "response": "5"}\n')
        platform = FakePlatform()
        if draw(st.booleans(), label="an earlier run finished"):
            earlier = write_pipeline(folder, specs, draw(variables, label="vars then"))
            execute(earlier, platform, draw(selections(ids)), Recorder()).close()
        if draw(st.booleans(), label="a run was stopped"):
            stopped = write_pipeline(folder, specs, draw(variables, label="vars when stopped"))
            stopped_run(stopped, platform, draw(selections(ids), label="its selection"), draw)
        pipeline = write_pipeline(folder, specs, draw(variables, label="vars now"))
        change_outside(pipeline, platform, draw)
        selection = draw(selections(ids), label="selection now")
        before = state_of(pipeline)
        drift = refresh(pipeline, before, platform)  # what plan and run both decide on
        for stage_id in drift:
            event(f"changed outside qfrun: {specs[stage_id]['type']}")
        plan = make_plan(
            pipeline,
            before,
            select=selection.select,
            from_stages=selection.from_stages,
            force=selection.force,
            drift=drift,
        )
        created = {stage_id: len(platform.created_for(stage_id)) for stage_id in ids}
        # Stages whose task exists already, recorded or not: a resume must find it, not create another.
        existing = {s for s, record in before.stages.items() if record.task or _exists(platform, record)}
        observed = Observed()
        keep_going = draw(st.booleans(), label="keep going")
        max_parallel = draw(st.integers(1, 3), label="max parallel")
        execute(
            pipeline, platform, selection, observed, drift, keep_going=keep_going, max_parallel=max_parallel
        ).close()

    failed = any(outcome == "failed" for outcome, _ in observed.finished.values())
    for stage in plan.stages:
        did = observed.action(stage.stage_id)
        if did is None:
            assert failed, f"{stage.stage_id} was neither started nor settled"
            assert not keep_going, f"{stage.stage_id} not reached with --keep-going"
            event("a stage not reached after a failure")
            continue
        if stage.waits_on is None:
            event(f"definite: {stage.action}")
            assert did is stage.action, (stage.stage_id, stage.action, stage.reasons, did, observed.finished)
        else:
            event(f"waits on an upstream: {stage.action} -> {did}")
            assert did in possible(stage.action), (stage.stage_id, stage.action, stage.reasons, did)
        new = len(platform.created_for(stage.stage_id)) - created[stage.stage_id]
        if did in (Action.RUN, Action.RERUN) and specs[stage.stage_id]["type"] in TASK_TYPES:
            assert new == 1, (stage.stage_id, did, new)
        elif did is Action.RESUME:
            assert new <= 1, (stage.stage_id, new)
            if stage.stage_id in existing:
                assert new == 0, f"{stage.stage_id}: a task in flight was created again"
        else:
            assert new == 0, (stage.stage_id, did, new)
    assert len(platform.created) == len(set(platform.created)), "a task name was created twice"


def _exists(platform: FakePlatform, record: StageRecord) -> bool:
    name = (record.intent or {}).get("name")
    return name is not None and any(task["name"] == name for task in platform.tasks.values())
