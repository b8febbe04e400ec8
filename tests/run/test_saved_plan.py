"""``qfrun plan --out FILE`` and ``qfrun run --plan FILE``: the merge runs the plan the pull request showed,
or refuses, creating nothing, once the pipeline, the state or the platform changed since (as ``terraform
apply PLANFILE``). The BOS variant, two clones sharing one state, is in tests/state/test_state_bos.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.commands.plan import MARKDOWN_LIMIT
from runner.render import plan as planformat
from runner.stages.base import Charge
from runner.testing.cli import invoke as qfrun
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import DEMO, write


def _saved(capsys: pytest.CaptureFixture[str], path: Path, out: Path, *extra: str) -> str:
    code, stdout, err = qfrun(capsys, "plan", str(path), "--out", str(out), *extra)
    assert code == 0, err
    return stdout


def _apply(capsys: pytest.CaptureFixture[str], path: Path, plan: Path, *extra: str) -> tuple[int, str]:
    """``qfrun run PATH --plan PLAN``: its exit code and what it printed on stderr."""
    code, _, err = qfrun(capsys, "run", str(path), "--plan", str(plan), *extra)
    return code, err


@pytest.fixture
def planned(tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform) -> Path:
    """The demo pipeline, its plan saved in plan.json beside it, as the pull request's job leaves them."""
    path = write(tmp_path)
    _saved(capsys, path, tmp_path / "plan.json")
    return path


def test_run_with_a_fresh_saved_plan_runs_what_it_planned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform
) -> None:
    path = write(tmp_path)
    shown = _saved(capsys, path, tmp_path / "plan.json")
    assert shown.startswith("Plan for demo on local: 5 run.")
    saved = json.loads((tmp_path / "plan.json").read_text())
    assert saved["qfrun_saved_plan"] == 1
    assert saved["plan"]["summary"]["run"] == 5  # the plan as `--format json` shows it, for people
    code, err = _apply(capsys, path, tmp_path / "plan.json")
    assert code == 0, err
    assert "5 succeeded" in err


def test_a_saved_plan_is_refused_after_another_run_changed_the_state_and_nothing_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform, planned: Path
) -> None:
    path = planned
    assert qfrun(capsys, "run", str(path))[0] == 0  # another merge applied first
    created = len(platform.created)
    code, err = _apply(capsys, path, tmp_path / "plan.json")
    assert code == 2
    assert "is stale: the state" in err
    assert "changed after the plan was made" in err
    assert "Nothing was run" in err
    assert len(platform.created) == created


def test_a_saved_plan_is_refused_once_the_pipeline_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform, planned: Path
) -> None:
    path = planned
    path.write_text(path.read_text().replace("accuracy: true}", "accuracy: true, similarity: true}", 1))
    code, err = _apply(capsys, path, tmp_path / "plan.json")
    assert code == 2
    assert f"{path} changed after the plan was made" in err
    assert not platform.created


def test_a_comment_in_the_pipeline_does_not_make_the_plan_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform, planned: Path
) -> None:
    path = planned
    path.write_text("# reviewed in PR 12\n" + path.read_text())
    assert _apply(capsys, path, tmp_path / "plan.json")[0] == 0


def test_a_saved_plan_runs_its_own_selection_and_refuses_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform
) -> None:
    path = write(tmp_path)
    _saved(capsys, path, tmp_path / "plan.json", "--select", "+base_infer")
    code, err = _apply(capsys, path, tmp_path / "plan.json", "--select", "w4")
    assert code == 2
    assert "drop --select" in err
    code, err = _apply(capsys, path, tmp_path / "plan.json")
    assert code == 0, err
    assert "2 succeeded" in err  # base and base_infer, as planned; not w4 or serve


def test_a_stage_that_would_now_do_otherwise_makes_the_plan_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform, planned: Path
) -> None:
    """The platform's side of staleness: planning again (after refresh) decides stages otherwise."""
    from runner.run import saved_plan
    from runner.run.plan import RUN, UP_TO_DATE, Plan, StagePlan

    saved = saved_plan.load(tmp_path / "plan.json")
    then = {s["id"]: s for s in json.loads((tmp_path / "plan.json").read_text())["plan"]["stages"]}
    now = [
        StagePlan("w4", "compress", UP_TO_DATE, (), "", then["w4"]["fields"], None, ()),
        StagePlan("base_infer", "infer", RUN, (), "", {"changed": True}, None, ()),
        StagePlan("serve", "deploy", RUN, (), "", then["serve"]["fields"], None, ()),
        *(StagePlan(f"extra{n}", "infer", RUN, (), "", {}, None, ()) for n in range(4)),
    ]  # base and base_eval are gone
    with pytest.raises(saved_plan.UsageError) as refused:
        saved_plan.check_plan(saved, Plan("demo", str(planned), "local", "s", tuple(now)))
    message = str(refused.value)
    assert "planning again gives another plan: base is no longer selected; " in message
    assert "base_infer's resolved parameters changed" in message
    assert "w4 would up to date, the plan said run" in message
    assert "extra0 is new; and 3 more" in message


def test_a_deployment_sized_by_an_expression_is_totalled_as_known_only_at_run_time() -> None:
    from runner.stages.deploy import DeployStage, charge_of

    service = {"name": "s", "url_suffix": "s1", "billing": {"payment": "prepaid", "months": 3}}
    stage = DeployStage()

    def planned(replicas: object) -> Charge | None:
        fields = stage.planned_fields("serve", {"model": "m", "service": {**service, "replicas": replicas}})
        return charge_of(fields.service)

    assert planned("${{ vars.replicas }}") is None
    assert planned(2) == Charge("prepaid", 2, 3, "")


# Every field a saved plan has, each well formed but naming nothing: what the damaged variants change.
_FIELDS = {
    "qfrun_saved_plan": 1,
    "pipeline": "demo",
    "pipeline_digest": "",
    "platform": "local",
    "target": "",
    "state": "",
    "state_digest": "",
    "selection": {"select": [], "from": [], "force": []},
    "stages": {},
}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "is not a saved plan"),
        ('{"qfrun_saved_plan": 9}', "is of format 9"),
        ('{"qfrun_saved_plan": 1, "pipeline": "demo"}', "is damaged"),
        (json.dumps({**_FIELDS, "stages": {"a": "ab"}}), "is damaged"),
        (json.dumps({**_FIELDS, "pipeline": 5}), "is damaged"),
        (json.dumps({**_FIELDS, "selection": {"select": "w4", "from": [], "force": []}}), "is damaged"),
    ],
)
def test_a_file_that_is_not_a_saved_plan_is_refused_with_a_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform, content: str, says: str
) -> None:
    path = write(tmp_path)
    (tmp_path / "plan.json").write_text(content)
    code, err = _apply(capsys, path, tmp_path / "plan.json")
    assert code == 2
    assert says in err
    code, err = _apply(capsys, path, tmp_path / "missing.json")
    assert code == 2
    assert "cannot be read" in err


def test_a_saved_plan_of_another_pipeline_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform, planned: Path
) -> None:
    (tmp_path / "other").mkdir()
    other = write(tmp_path / "other", DEMO.replace("name: demo", "name: other", 1))
    code, err = _apply(capsys, other, tmp_path / "plan.json")
    assert code == 2
    assert "is of pipeline 'demo', not 'other'" in err


def test_a_plan_that_cannot_be_saved_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform
) -> None:
    code, _, err = qfrun(capsys, "plan", str(write(tmp_path)), "--out", str(tmp_path / "no" / "plan.json"))
    assert code == 2
    assert "cannot be saved to" in err


def test_the_markdown_limit_and_the_full_plan_link_reach_the_comment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert MARKDOWN_LIMIT == planformat.MARKDOWN_LIMIT
    path = write(tmp_path)
    url = "https://github.com/o/r/actions/runs/1#artifacts"
    args = ("plan", str(path), "--format", "markdown", "--markdown-limit", "2000", "--full-plan-url", url)
    code, out, err = qfrun(capsys, *args)
    assert code == 0, err
    assert len(out) <= 2000
    assert f"see [the full plan]({url})" in out
    assert "`serve`" in out  # the table stays; the resolved parameters gave way
    code, _, err = qfrun(capsys, "plan", str(path), "--full-plan-url", "https://x/a) [b](c")
    assert code == 2
    assert "is not an http(s) URL" in err


def test_a_saved_plan_larger_than_qfrun_writes_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.run import saved_plan

    monkeypatch.setattr(saved_plan, "MAX_BYTES", 10)
    (tmp_path / "plan.json").write_text('{"qfrun_saved_plan": 1}')
    with pytest.raises(saved_plan.UsageError, match="is larger than qfrun writes"):
        saved_plan.load(tmp_path / "plan.json")


def test_a_saved_plan_for_another_platform_or_shared_state_is_refused_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: FakePlatform, planned: Path
) -> None:
    """What a plan made for one target says when applied to another (``--target``): not merely "stale"."""
    import dataclasses

    from runner.pipeline.spec import load_pipeline
    from runner.run import saved_plan
    from runner.state.file import StateFile

    saved = saved_plan.load(tmp_path / "plan.json")
    pipeline = load_pipeline(planned)
    with pytest.raises(
        saved_plan.UsageError, match="made for the platform qianfan, and this run is on local"
    ):
        saved_plan.check_source(dataclasses.replace(saved, platform="qianfan"), pipeline)
    state = StateFile(tmp_path / "s.json", "demo")
    state.label = "bos:/team/prod.state.json"
    other = dataclasses.replace(saved, state="bos:/team/dev.state.json")
    with pytest.raises(
        saved_plan.UsageError, match=r"against the state bos:/team/dev\.state\.json, and this run's"
    ):
        saved_plan.check_state(other, state)
    code, err = _apply(capsys, planned, tmp_path / "plan.json")
    assert code == 0, err
    assert f"Running the saved plan {tmp_path / 'plan.json'} (made 20" in err
