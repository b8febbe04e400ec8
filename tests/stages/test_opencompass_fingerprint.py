"""A benchmark's content is part of its evaluate stage's fingerprint, built-in and repository benchmarks
alike: a qfrun upgrade that changes a shipped benchmark, or an edit to the repository's, re-runs the stage,
and ``qfrun plan`` says which benchmark changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import runner.benchmarks
from runner.benchmarks import BUILT_IN_DIR, built_in_sha256, built_in_text
from runner.cli import main
from runner.pipeline.spec import load_pipeline
from runner.run.plan import RERUN, UP_TO_DATE, Plan, default_state_path, make_plan
from runner.state.file import StateFile
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import BENCH, run, write

PIPELINE = BENCH.format(platform="local", benchmarks="[arith_mc, mine.json]")


def plan_of(path: Path) -> Plan:
    pipeline = load_pipeline(path)
    return make_plan(pipeline, StateFile.load(default_state_path(pipeline), pipeline.name))


def stage_plan(plan: Plan) -> tuple[str, tuple[str, ...]]:
    found = next(stage for stage in plan.stages if stage.stage_id == "bench")
    return found.action, found.reasons


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the built-in benchmarks that the test can change, as a new qfrun version would."""
    folder = tmp_path / "shipped"
    shutil.copytree(BUILT_IN_DIR, folder)
    monkeypatch.setattr(runner.benchmarks, "BUILT_IN_DIR", folder)
    return folder


@pytest.fixture
def pipeline(tmp_path: Path, shipped: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "mine.json").write_text(built_in_text("arith_gen").replace('"arith_gen"', '"mine"'))
    path = write(repo, PIPELINE)
    run(path, FakePlatform())
    assert stage_plan(plan_of(path)) == (UP_TO_DATE, ())
    return path


def test_a_changed_built_in_benchmark_re_runs_the_stage_and_the_plan_names_it(
    pipeline: Path, shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = built_in_sha256("arith_mc")
    benchmark = shipped / "arith_mc.json"
    benchmark.write_text(benchmark.read_text().replace("Q: ", "Question: "))
    assert built_in_sha256("arith_mc") != before
    assert stage_plan(plan_of(pipeline)) == (RERUN, ("the content of built-in benchmark arith_mc changed",))
    main(["plan", str(pipeline)])  # returns: exit code 0
    assert "because the content of built-in benchmark arith_mc changed" in capsys.readouterr().out


def test_a_changed_repository_benchmark_re_runs_the_stage_and_the_plan_names_it(pipeline: Path) -> None:
    mine = pipeline.parent / "mine.json"
    mine.write_text(mine.read_text().replace("Q: ", "Question: "))
    assert stage_plan(plan_of(pipeline)) == (RERUN, ("the content of benchmark mine.json changed",))


def test_a_built_in_benchmark_that_is_not_shipped_has_no_content_hash(shipped: Path) -> None:
    assert built_in_sha256("mmlu") is None
    assert built_in_sha256("arith_gen") is not None


def test_after_an_upgrade_that_starts_fingerprinting_built_ins_the_plan_says_so(tmp_path: Path) -> None:
    from runner.stages.evaluate import EvaluateStage

    (tmp_path / "mine.json").write_text(built_in_text("arith_gen").replace('"arith_gen"', '"mine"'))
    path = write(tmp_path, PIPELINE)
    with pytest.MonkeyPatch.context() as older:  # a qfrun that did not hash built-in benchmarks
        older.setattr(EvaluateStage, "packaged_inputs", lambda self, spec: iter(()))
        run(path, FakePlatform())
        assert stage_plan(plan_of(path)) == (UP_TO_DATE, ())
    assert stage_plan(plan_of(path)) == (
        RERUN,
        ("built-in benchmark arith_mc was not in the last fingerprint",),
    )
