"""The executor against the in-memory fake platform: order, resume, failure policy, gates, exactly-once."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Never, cast

import pytest

from runner.errors import PlatformServerError
from runner.pipeline.spec import load_pipeline
from runner.platform.protocol import TaskKind, TaskStatus
from runner.run.executor import Executor, RunOptions
from runner.stages.base import StageContext
from runner.stages.builtin_fields import JudgeEvaluator
from runner.stages.evaluate import resolve_evaluator
from runner.state.file import StageRecord, StageStatus, StateFile
from runner.testing.fake_platform import FakePlatform, Script
from runner.testing.pipelines import DEMO, FAST, Recorder, outcomes, run, state_path, write


def test_stages_run_in_dependency_order_and_record_outputs(tmp_path: Path) -> None:
    platform = FakePlatform()
    summary, state, _ = run(write(tmp_path), platform)
    assert set(outcomes(summary).values()) == {"succeeded"}
    created = [stage for kind, stage in platform.events if kind == "create"]
    assert created.index("base_infer") < created.index("base_eval")
    assert created.index("w4") < created.index("serve")
    serve = state.stages["serve"]
    assert serve.status is StageStatus.SUCCEEDED
    assert serve.outputs == {
        "service_id": "svc-4",
        "url_suffix": "demo_w4",
        "url": "http://fake/chat/demo_w4",
        "replicas": 2,
        "resource_type": "GPU-1-1",
        "billing": {"payment": "prepaid", "months": 3},
        "expires_at": "2030-01-01T00:00:00Z",
        "smoke_test": {"passed": 1, "total": 1},
    }
    # The compute instance a release needs is kept with the task, so it survives a restart of qfrun.
    assert serve.task == {
        "kind": "service",
        "task_id": "service-4",
        "name": serve.task["name"],
        "instance_id": "unit-service-4",
    }
    assert state.stages["base_eval"].outputs["metrics"] == {"accuracy": 0.9}
    assert state.stages["w4"].outputs["source_version_id"] == "amv-base"


def test_second_run_is_up_to_date_and_creates_no_task(tmp_path: Path) -> None:
    path = write(tmp_path)
    platform = FakePlatform()
    run(path, platform)
    before = platform.created
    summary, _, _ = run(path, platform)
    assert set(outcomes(summary).values()) == {"up to date"}
    assert platform.created == before


def test_changed_field_reruns_the_stage_and_everything_downstream(tmp_path: Path) -> None:
    path = write(tmp_path)
    platform = FakePlatform()
    run(path, platform)
    write(tmp_path, DEMO.replace("temperature: 0.1", "temperature: 0.7"))
    summary, _, _ = run(path, platform)
    assert outcomes(summary) == {
        "base": "up to date",
        "base_infer": "succeeded",
        "base_eval": "succeeded",
        "w4": "up to date",
        "serve": "up to date",  # its inputs (w4's version, the gate's value) did not change
    }


def test_changed_dataset_content_reruns_the_stages_that_read_it(tmp_path: Path) -> None:
    path = write(tmp_path)
    platform = FakePlatform()
    run(path, platform)
    (tmp_path / "qa.jsonl").write_text('{"prompt": "1+1=?", "response": "2"}\n')
    summary, _, _ = run(path, platform)
    assert outcomes(summary)["base_infer"] == "succeeded"
    assert outcomes(summary)["w4"] == "up to date"


def test_failed_task_fails_the_stage_and_skips_its_dependents_with_the_reason(tmp_path: Path) -> None:
    platform = FakePlatform(scripts={"w4": Script(outcome=TaskStatus.FAILED, message="out of memory")})
    summary, state, _ = run(write(tmp_path), platform, keep_going=True)
    assert outcomes(summary)["w4"] == "failed"
    assert "out of memory" in state.stages["w4"].error
    assert outcomes(summary)["serve"] == "skipped"
    assert state.stages["serve"].reason == "upstream stage w4 failed"
    assert outcomes(summary)["base_eval"] == "succeeded"  # an independent branch finished (--keep-going)


def test_without_keep_going_no_new_stage_starts_after_a_failure(tmp_path: Path) -> None:
    platform = FakePlatform(scripts={"base_infer": Script(outcome=TaskStatus.FAILED)})
    summary, state, _ = run(write(tmp_path), platform, max_parallel=1)
    result = outcomes(summary)
    assert result["base_infer"] == "failed"
    assert result["base_eval"] == "skipped"
    assert result["w4"] == "not started"
    assert "w4" not in state.stages


def test_a_failed_stage_retries_on_the_next_run_with_a_new_task(tmp_path: Path) -> None:
    path = write(tmp_path)
    platform = FakePlatform(scripts={"w4": Script(outcome=TaskStatus.FAILED)})
    run(path, platform)
    platform.scripts.clear()
    summary, state, _ = run(path, platform)
    assert outcomes(summary)["w4"] == "succeeded"
    first, second = platform.created_for("w4")
    assert first != second
    assert state.stages["w4"].attempt == 2
    described = {task["name"]: task["params"]["description"] for task in platform.data["tasks"].values()}
    assert described[second].endswith("attempt 2")
    assert described[first].endswith("attempt 1")
    assert all(2 <= len(name) <= 20 for name in (first, second))  # Qianfan's name limit [B2][S1]


def test_resume_reattaches_to_the_recorded_task_instead_of_creating_one(tmp_path: Path) -> None:
    path = write(tmp_path)
    platform = FakePlatform(scripts={"w4": Script(polls=10_000)})
    stopper = threading.Timer(
        0.3, lambda: signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
    )
    stopper.start()
    summary, state, _ = run(path, platform)
    assert summary.interrupted
    assert state.stages["w4"].status in (StageStatus.SUBMITTED, StageStatus.RUNNING)
    platform.scripts.clear()
    summary, state, recorder = run(path, platform)
    assert outcomes(summary)["w4"] == "succeeded"
    assert len(platform.created_for("w4")) == 1
    assert ("w4", f"re-attaching to task {state.stages['w4'].task['task_id']}") in recorder.logs  # type: ignore[index]


def test_a_task_created_before_a_crash_is_found_by_its_name_not_created_again(tmp_path: Path) -> None:
    path = write(tmp_path)

    class Crash(BaseException):
        pass

    def crash_after_create(request: object) -> None:
        raise Crash  # the task exists on the platform, the state has only the intent

    platform = FakePlatform(on_create=crash_after_create)
    with pytest.raises(Crash):
        run(path, platform, select=("+w4",), max_parallel=1)  # base creates no task; w4's create crashes
    platform.on_create = None
    summary, _state, recorder = run(path, platform)
    assert outcomes(summary)["w4"] == "succeeded"
    assert len(platform.created_for("w4")) == 1
    assert any("found task" in message for stage, message in recorder.logs if stage == "w4")


def test_a_false_gate_skips_the_stage_with_its_reason(tmp_path: Path) -> None:
    path = write(tmp_path, DEMO.replace("min_accuracy: 0.5", "min_accuracy: 0.95"))
    platform = FakePlatform()
    summary, state, _ = run(path, platform)
    assert outcomes(summary)["serve"] == "skipped"
    assert state.stages["serve"].reason.startswith(
        "gated: its if: ${{ stages.base_eval.outputs.metrics.accuracy"
    )
    assert not platform.created_for("serve")


def test_an_expression_type_error_fails_the_stage_with_the_expression_location(tmp_path: Path) -> None:
    path = write(tmp_path, DEMO.replace("min_accuracy: 0.5", "min_accuracy: high"))
    summary, state, _ = run(path, FakePlatform())
    assert outcomes(summary)["serve"] == "failed"
    error = state.stages["serve"].error
    assert error.startswith(f"{path}:28:9: ")
    assert "stages.serve.if" in error
    assert "not supported between" in error


@pytest.mark.parametrize(("max_parallel", "overlap"), [(2, True), (1, False)])
def test_independent_stages_run_concurrently_up_to_max_parallel(
    tmp_path: Path, max_parallel: int, overlap: bool
) -> None:
    platform = FakePlatform(scripts={"base_infer": Script(polls=30)})
    run(write(tmp_path), platform, max_parallel=max_parallel)
    events = platform.events
    started_w4 = events.index(("create", "w4"))
    infer_done = events.index(("done", "base_infer"))
    assert (started_w4 < infer_done) is overlap


def test_select_runs_only_the_selected_stages_reading_upstream_last_success(tmp_path: Path) -> None:
    path = write(tmp_path)
    platform = FakePlatform()
    run(path, platform)
    summary, _, _ = run(path, platform, select=("w4+",), force=("w4",))
    assert outcomes(summary) == {"w4": "succeeded", "serve": "succeeded"}


def test_from_reruns_the_stage_and_everything_downstream_even_when_up_to_date(tmp_path: Path) -> None:
    path = write(tmp_path)
    platform = FakePlatform()
    run(path, platform)
    summary, _, _ = run(path, platform, from_stages=("base_infer",))
    assert outcomes(summary) == {"base_infer": "succeeded", "base_eval": "succeeded", "serve": "up to date"}
    assert len(platform.created_for("serve")) == 1
    assert len(platform.created_for("base_infer")) == 2


def test_a_failed_smoke_test_keeps_the_service_and_the_retry_reuses_it(tmp_path: Path) -> None:
    path = write(tmp_path)
    platform = FakePlatform(replies={"demo_w4": "I do not know"})
    summary, state, _ = run(path, platform)
    assert outcomes(summary)["serve"] == "failed"
    assert "smoke test 1 of 1 failed" in state.stages["serve"].error
    platform.replies["demo_w4"] = "5"
    summary, _, _ = run(path, platform)
    assert outcomes(summary)["serve"] == "succeeded"
    assert len(platform.created_for("serve")) == 1  # a prepaid service is never created twice


def test_a_task_past_its_timeout_is_cancelled_and_the_stage_fails(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        DEMO.replace("    strategy: quantization", "    timeout_minutes: 1\n    strategy: quantization"),
    )
    platform = FakePlatform(scripts={"w4": Script(polls=10_000)})
    import runner.run.context as context

    original = context.time.monotonic
    start = original()
    context.time.monotonic = lambda: original() + (0 if original() - start < 0.2 else 120)  # type: ignore[attr-defined]
    try:
        summary, state, _ = run(path, platform, keep_going=True)
    finally:
        context.time.monotonic = original  # type: ignore[attr-defined]
    assert outcomes(summary)["w4"] == "failed"
    assert "did not finish within timeout_minutes (1)" in state.stages["w4"].error
    assert any(task.get("cancelled") for task in platform.tasks.values())


def test_a_platform_error_on_create_fails_the_stage_and_is_marked_as_a_platform_problem(
    tmp_path: Path,
) -> None:
    error = PlatformServerError(
        "the platform is busy", platform="fake", method="POST", path="/v2/model", status=503
    )
    platform = FakePlatform(scripts={"w4": Script(create_error=error)})
    summary, state, _ = run(write(tmp_path), platform)
    assert summary.outcomes["w4"].platform_error
    assert "the platform is busy" in state.stages["w4"].error
    assert state.stages["w4"].intent == {
        "kind": TaskKind.COMPRESSION.value,
        "name": state.stages["w4"].intent["name"],
    }  # type: ignore[index]


def test_infer_passes_bos_locations_to_the_task_and_reports_where_the_results_went(tmp_path: Path) -> None:
    text = DEMO.replace(
        "    params: {temperature: 0.1}",
        "    params: {temperature: 0.1}\n    input_bos_uri: bos:/b/in/\n    output_bos_uri: bos:/b/out/",
    )
    result = {"output_bos_uri": "bos:/b/out/task-1/", "rows": 10}
    platform = FakePlatform(scripts={"base_infer": Script(result=result)})
    _, state, _ = run(write(tmp_path, text), platform, select=("+base_infer",))
    (task,) = [t for t in platform.tasks.values() if t["kind"] == "batch_inference"]
    assert (task["params"]["input_bos_uri"], task["params"]["output_bos_uri"]) == (
        "bos:/b/in/",
        "bos:/b/out/",
    )
    outputs = state.stages["base_infer"].outputs
    assert outputs["output_bos_uri"] == "bos:/b/out/task-1/"
    assert outputs["result_dataset_id"] is None


@pytest.mark.parametrize("outputs", [{"url_suffix": "judge"}, {"endpoint": "judge"}])
def test_a_deployed_judge_is_called_by_its_url_suffix_also_from_an_older_state(
    outputs: dict[str, str],
) -> None:
    context = cast(
        StageContext, SimpleNamespace(upstream_outputs=lambda stage_id: {"service_id": "s", **outputs})
    )
    evaluator = JudgeEvaluator[Never]("llm_judge", "serve", prompt="Score it.")
    assert resolve_evaluator(context, evaluator) == {
        "kind": "llm_judge",
        "prompt": "Score it.",
        "judge_endpoint": "judge",
    }


def test_a_finished_tasks_count_is_saved_with_the_stage_end_not_on_a_line_of_its_own(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path))
    state = StateFile.load(state_path(pipeline), pipeline.name, sync=False)
    saved: list[tuple[str, StageRecord]] = []
    original = state.record

    def record(stage_id: str, rec: StageRecord, *, durable: bool = True) -> None:
        saved.append((stage_id, rec))
        original(stage_id, rec, durable=durable)

    state.record = record  # type: ignore[method-assign]
    platform = FakePlatform(scripts={"base_infer": Script(polls=2, rows=10)})
    Executor(pipeline, platform, state, RunOptions(poll=FAST), Recorder()).run()
    state.close()
    infer = [
        (rec.status, rec.rows_done, rec.rows_total) for stage_id, rec in saved if stage_id == "base_infer"
    ]
    # The running task's progress is saved as it comes (1 of 3, 2 of 3); its final count only with the end.
    assert [(done, total) for status, done, total in infer if status is StageStatus.RUNNING] == [
        (None, None),
        (1, 3),
        (2, 3),
    ]
    assert infer[-1] == (StageStatus.SUCCEEDED, 10, 10)
    assert [entry for entry in infer if entry[1] == 10] == [infer[-1]]
    reloaded = StateFile.load(state_path(pipeline), pipeline.name)
    assert (reloaded.stages["base_infer"].rows_done, reloaded.stages["base_infer"].rows_total) == (10, 10)
