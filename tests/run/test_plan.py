"""``qfrun plan``: run / up to date / re-run because / gated / blocked / resume; changes nothing."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runner.cli import main
from runner.pipeline.spec import load_pipeline
from runner.render.plan import as_json, as_markdown, as_text
from runner.run.fingerprint import changes
from runner.run.plan import (
    BLOCKED,
    GATED,
    RERUN,
    RESUME,
    RUN,
    UP_TO_DATE,
    Plan,
    default_state_path,
    make_plan,
)
from runner.state.file import StageStatus, StateFile
from runner.testing.fake_platform import ClosingFake, FakePlatform
from runner.testing.pipelines import DEMO, LOCAL_COST, run, write

# DEMO plus a stage that waits for the deployment.
WITH_AFTER = DEMO + "  after:\n    type: model\n    version_id: amv-after\n    needs: [serve]\n"


def plan_of(path: Path, **options: tuple[str, ...]) -> Plan:
    pipeline = load_pipeline(path)
    return make_plan(pipeline, StateFile.load(default_state_path(pipeline), pipeline.name), **options)


def actions(plan: Plan) -> dict[str, str]:
    return {stage.stage_id: stage.action for stage in plan.stages}


def reasons(plan: Plan, stage_id: str) -> tuple[str, ...]:
    return next(stage.reasons for stage in plan.stages if stage.stage_id == stage_id)


def exit_code(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def cli_plan(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert exit_code("plan", *args) == 0
    return capsys.readouterr().out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_on_a_fresh_state_every_stage_runs(tmp_path: Path) -> None:
    plan = plan_of(write(tmp_path))
    assert set(actions(plan).values()) == {RUN}
    assert reasons(plan, "base") == ("it has not run yet",)


def test_after_a_run_every_stage_is_up_to_date(tmp_path: Path) -> None:
    path = write(tmp_path)
    run(path, FakePlatform())
    plan = plan_of(path)
    assert set(actions(plan).values()) == {UP_TO_DATE}
    assert plan.costs == []


def test_a_changed_field_reruns_with_the_field_and_its_old_and_new_values(tmp_path: Path) -> None:
    path = write(tmp_path)
    run(path, FakePlatform())
    write(tmp_path, DEMO.replace("weight: W4A16C16", "weight: W8A16C16"))
    plan = plan_of(path)
    assert actions(plan)["w4"] == RERUN
    assert reasons(plan, "w4") == ('weight: "W4A16C16" -> "W8A16C16"',)
    assert actions(plan)["base"] == UP_TO_DATE


def test_a_stage_downstream_of_a_rerun_stage_reruns_because_upstream_runs_first(tmp_path: Path) -> None:
    path = write(tmp_path)
    run(path, FakePlatform())
    write(tmp_path, DEMO.replace("temperature: 0.1", "temperature: 0.7"))
    plan = plan_of(path)
    assert actions(plan)["base_infer"] == RERUN
    assert reasons(plan, "base_infer") == ("params.temperature: 0.1 -> 0.7",)
    assert actions(plan)["base_eval"] == RERUN
    assert reasons(plan, "base_eval") == ("upstream stage base_infer will run first",)


def test_a_false_gate_with_known_outputs_is_gated_and_its_dependents_blocked(tmp_path: Path) -> None:
    path = write(tmp_path, WITH_AFTER)
    run(path, FakePlatform())
    write(tmp_path, WITH_AFTER.replace("min_accuracy: 0.5", "min_accuracy: 0.95"))
    plan = plan_of(path)
    assert actions(plan)["serve"] == GATED
    assert reasons(plan, "serve")[0].startswith("its if: ${{ stages.base_eval.outputs.metrics.accuracy")
    assert actions(plan)["after"] == BLOCKED
    assert reasons(plan, "after") == ("upstream stage serve is gated",)


def test_a_deployment_shows_what_it_buys_and_that_it_is_free_locally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    plan = plan_of(path)
    assert [(s.stage_id, s.cost) for s in plan.costs] == [("serve", LOCAL_COST)]
    out = cli_plan(capsys, str(path))
    assert f"serve: {LOCAL_COST}" in out


@pytest.mark.parametrize(
    ("service", "cost"),
    [
        (
            "{name: demo, url_suffix: demo, replicas: 2, billing: {payment: prepaid, months: 3}, "
            "resource_type: GPU-1-1, region: bj}",
            "2 replicas of GPU-1-1 in bj, prepaid 3 months (6 replica-months)",
        ),
        (
            "{name: demo, url_suffix: demo, billing: {payment: prepaid, months: 1}, resource_type: GPU-1-8}",
            "1 replica of GPU-1-8, prepaid 1 month (1 replica-month)",
        ),
        (
            "{name: demo, url_suffix: demo, billing: {payment: postpaid, charge: computing_unit}, "
            "resource_type: CPU-1-1}",
            "postpaid by compute unit: 1 replica of CPU-1-1, billed for its compute time while it runs",
        ),
        (
            "{name: demo, url_suffix: demo, billing: {payment: postpaid, charge: tokens}}",
            "postpaid by tokens: billed for the tokens its calls use",
        ),
    ],
)
def test_on_qianfan_the_plan_names_the_purchase_without_inventing_prices(
    tmp_path: Path, service: str, cost: str
) -> None:
    text = (
        DEMO.replace("name: demo\n", "name: demo\nplatform: qianfan\n", 1)
        .replace("qa: {path: qa.jsonl}", "qa: {qianfan_dataset_id: ds-qa}")
        .replace(
            "    params: {temperature: 0.1}",
            "    params: {temperature: 0.1}\n    input_bos_uri: bos:/b/in/\n    output_bos_uri: bos:/b/out/",
        )
    )
    start = text.index("    service:\n")
    end = text.index("    smoke_test:")
    path = write(tmp_path, text[:start] + f"    service: {service}\n" + text[end:])
    assert [(s.stage_id, s.cost) for s in plan_of(path).costs] == [("serve", cost)]


def test_a_stage_with_a_task_in_flight_resumes(tmp_path: Path) -> None:
    path = write(tmp_path)

    class Crash(BaseException):
        pass

    def crash_after_create(request: object) -> None:
        raise Crash

    with pytest.raises(Crash):
        run(path, FakePlatform(on_create=crash_after_create), select=("+w4",), max_parallel=1)
    plan = plan_of(path)
    assert actions(plan)["w4"] == RESUME
    assert "in flight; the run re-attaches to it" in reasons(plan, "w4")[0]
    assert actions(plan)["base"] == UP_TO_DATE


def test_forced_and_from_stages_rerun_even_when_up_to_date(tmp_path: Path) -> None:
    path = write(tmp_path)
    run(path, FakePlatform())
    assert actions(plan_of(path, force=("w4",)))["w4"] == RERUN
    plan = plan_of(path, from_stages=("base_infer",))
    assert {s for s, a in actions(plan).items() if a == RERUN} == {"base_infer", "base_eval"}
    # serve reads base_eval only in its if:, so, as in the executor, it stays up to date while that is open
    (serve,) = [stage for stage in plan.stages if stage.stage_id == "serve"]
    assert serve.action == UP_TO_DATE
    assert serve.reasons == ("if its if: is still true after base_eval runs",)


def test_select_plans_only_the_selected_stages(tmp_path: Path) -> None:
    plan = plan_of(write(tmp_path), select=("+w4",))
    assert actions(plan) == {"base": RUN, "w4": RUN}


def test_plan_creates_no_file_when_there_is_no_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path)
    before = snapshot(tmp_path)
    for fmt in ("text", "markdown", "json"):
        cli_plan(capsys, str(path), "--format", fmt)
    assert snapshot(tmp_path) == before
    assert not (tmp_path / ".qfrun").exists()


def test_plan_leaves_an_existing_state_byte_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: ClosingFake
) -> None:
    path = write(tmp_path)
    run(path, platform)
    write(tmp_path, DEMO.replace("temperature: 0.1", "temperature: 0.7"))
    before = snapshot(tmp_path)
    for fmt in ("text", "markdown", "json"):
        cli_plan(capsys, str(path), "--format", fmt)
    assert snapshot(tmp_path) == before


def test_plan_honours_the_state_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: ClosingFake
) -> None:
    path = write(tmp_path)
    run(path, platform)
    moved = tmp_path / "elsewhere.state.json"
    default = default_state_path(load_pipeline(path))
    out = json.loads(cli_plan(capsys, str(path), "--format", "json", "--state", str(moved)))
    assert out["state"] == str(moved)
    assert out["summary"]["run"] == 5
    out = json.loads(cli_plan(capsys, str(path), "--format", "json"))
    assert out["state"] == str(default)
    assert out["summary"]["up to date"] == 5


def test_text_plan_hides_up_to_date_stages_unless_verbose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], platform: ClosingFake
) -> None:
    path = write(tmp_path)
    run(path, platform)
    write(tmp_path, DEMO.replace("weight: W4A16C16", "weight: W8A16C16"))
    out = cli_plan(capsys, str(path))
    assert "Plan for demo on local: 2 re-run, 3 up to date." in out
    assert "3 stages up to date (-v lists them)" in out
    assert "base_infer" not in out
    assert exit_code("-v", "plan", str(path)) == 0
    assert "base_infer (infer): up to date" in capsys.readouterr().out


def test_invalid_pipeline_plan_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, DEMO.replace("model: base\n    dataset", "model: bsae\n    dataset"))
    with pytest.raises(SystemExit) as caught:
        main(["plan", str(path)])
    assert caught.value.code == 3
    assert "did you mean 'base'?" in capsys.readouterr().err


def test_changed_dataset_content_is_named_as_the_reason(tmp_path: Path) -> None:
    path = write(tmp_path)
    run(path, FakePlatform())
    (tmp_path / "qa.jsonl").write_text('{"prompt": "1+1=?", "response": "2"}\n')
    plan = plan_of(path)
    assert reasons(plan, "base_infer") == ("the content of dataset qa changed",)
    assert actions(plan)["w4"] == UP_TO_DATE


def test_an_added_field_shows_unset_as_its_old_value(tmp_path: Path) -> None:
    path = write(tmp_path)
    run(path, FakePlatform())
    write(tmp_path, DEMO.replace("params: {temperature: 0.1}", "params: {temperature: 0.1, top_p: 0.5}"))
    assert reasons(plan_of(path), "base_infer") == ("params.top_p: (unset) -> 0.5",)


def test_changes_lists_at_most_five_and_counts_the_rest() -> None:
    old = {"fields": {f"k{i}": i for i in range(8)}}
    new = {"fields": {f"k{i}": i + 1 for i in range(8)}}
    found = changes(old, new)
    assert found[:2] == ["k0: 0 -> 1", "k1: 1 -> 2"]
    assert found[-1] == "and 3 more"
    assert len(found) == 6


def test_changes_shortens_long_values() -> None:
    found = changes({"fields": {"prompt": "x" * 100}}, {"fields": {"prompt": "y" * 100}})
    assert found == [f'prompt: "{"x" * 36}... -> "{"y" * 36}...']


def test_a_selected_stage_fed_by_an_unselected_never_run_stage_is_blocked_saying_why(tmp_path: Path) -> None:
    plan = plan_of(write(tmp_path), select=("w4",))
    assert actions(plan) == {"w4": BLOCKED}
    assert reasons(plan, "w4") == ("upstream stage base is not selected and has never succeeded",)


def test_an_unselected_stage_that_succeeded_before_feeds_the_selection(tmp_path: Path) -> None:
    path = write(tmp_path)
    run(path, FakePlatform(), select=("base",))
    plan = plan_of(path, select=("w4",))
    assert actions(plan) == {"w4": RUN}


def test_values_read_from_env_never_appear_in_any_plan_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_TOKEN", "s3cr3t-value-42")
    monkeypatch.setenv("QFRUN_ALLOW_ENV", "MY_TOKEN")
    path = write(
        tmp_path,
        "version: 1\nname: sec\nenv: [MY_TOKEN]\nstages:\n"
        "  base: {type: model, version_id: 'amv-${{ env.MY_TOKEN }}'}\n"
        "  bad: {type: model, version_id: '${{ env.MY_TOKEN + 1 }}'}\n"
        # filters, slices and joins change the value, so matching it exactly would miss them; taint does not
        "  up: {type: model, version_id: '${{ env.MY_TOKEN | upper }}'}\n"
        "  cut: {type: model, version_id: '${{ env.MY_TOKEN[1:] }}'}\n"
        "  spread: {type: model, version_id: \"${{ env.MY_TOKEN | list | join('-') }}\"}\n"
        "  whole: {type: model, version_id: '${{ env | tojson }}'}\n",
    )
    leaks = ("s3cr3t", "S3CR3T", "3cr3t", "s-3-c-r")
    for fmt in ("text", "markdown", "json"):
        out = cli_plan(capsys, str(path), "--format", fmt)
        assert "(sensitive)" in out
        for leak in leaks:
            assert leak not in out, (fmt, leak)


def test_the_plan_warns_when_a_prepaid_service_ends_soon_or_has_ended(tmp_path: Path) -> None:
    path = write(tmp_path, DEMO)
    _, state, _ = run(path, FakePlatform())
    pipeline = load_pipeline(path)
    record = state.stages["serve"]
    outputs = {**record.outputs, "service_id": "svco-1", "expires_at": "2026-12-10T00:00:00Z"}
    state.record("serve", dataclasses.replace(record, outputs=outputs))
    soon = make_plan(pipeline, state, now=datetime(2026, 12, 7, tzinfo=UTC))
    assert soon.warnings == (
        "serve: service svco-1 expires at 2026-12-10T00:00:00Z, in 3 days; renew it or plan a new one",
    )
    assert "  ! serve: service svco-1 expires" in as_text(soon)
    assert "**Warnings**" in as_markdown(soon)
    assert json.loads(as_json(soon))["warnings"] == list(soon.warnings)
    assert make_plan(pipeline, state, now=datetime(2026, 12, 1, tzinfo=UTC)).warnings == ()
    assert make_plan(pipeline, state, expiry_days=30, now=datetime(2026, 12, 1, tzinfo=UTC)).warnings
    ended = make_plan(pipeline, state, now=datetime(2027, 1, 1, tzinfo=UTC)).warnings
    assert ended == (
        "serve: service svco-1 expired at 2026-12-10T00:00:00Z; `qfrun destroy --select serve` and a run "
        "deploy it anew",
    )
    assert record.status is StageStatus.SUCCEEDED


def test_the_plan_says_which_host_receives_which_credential_in_every_format_never_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "QIANFAN_ACCESS_KEY": "ak-value-1234",
        "QIANFAN_SECRET_KEY": "sk-value-5678",
        "QFRUN_LOCAL_TOKEN": "local-token-9012",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("QIANFAN_CONSOLE_API_BASE_URL", "https://console.example:8443")
    (tmp_path / "local").mkdir()
    local = write(tmp_path / "local", DEMO)
    qianfan_text = DEMO.replace("name: demo\n", "name: demo\nplatform:\n  kind: qianfan\n")
    qianfan_text = qianfan_text.replace(
        "  kind: qianfan\n",
        "  kind: qianfan\n  bos: {endpoint: 'https://bj.bcebos.com', bucket: my-bucket}\n",
    )
    (tmp_path / "qianfan").mkdir()
    qianfan = write(tmp_path / "qianfan", qianfan_text)

    def formats(path: Path) -> tuple[str, str, dict[str, Any]]:
        pipeline = load_pipeline(path)
        plan = make_plan(pipeline, StateFile.load(tmp_path / f"{path.parent.name}.json", pipeline.name))
        return as_text(plan), as_markdown(plan), json.loads(as_json(plan))

    text, markdown, data = formats(local)
    assert data["credentials"] == [
        {
            "host": "127.0.0.1:PORT",
            "role": "the local platform on this machine, its port chosen at start: console, chat and BOS",
            "credential": (
                "the local platform's bearer token (QFRUN_LOCAL_TOKEN, else the one in QFRUN_HOME's "
                "credentials.json)"
            ),
        }
    ]
    assert "Where credentials go:\n  127.0.0.1:PORT (the local platform on this machine" in text
    assert "**Where credentials go**\n\n- 127.0.0.1:PORT (the local platform" in markdown

    text, markdown, data = formats(qianfan)
    signature = (
        "the access key QIANFAN_ACCESS_KEY and a bce-auth-v1 signature made with QIANFAN_SECRET_KEY "
        "(never the secret key)"
    )
    assert [(d["host"], d["role"], d["credential"]) for d in data["credentials"]] == [
        ("console.example:8443", "Qianfan's console API, from QIANFAN_CONSOLE_API_BASE_URL", signature),
        ("aip.baidubce.com", "chat with deployed services", signature),
        ("bj.bcebos.com", "BOS, from platform.bos.endpoint; uploaded dataset files go there", signature),
    ]
    for line in ("console.example:8443 (Qianfan's console API", "bj.bcebos.com (BOS, from platform.bos"):
        assert line in text
        assert line in markdown
    for value in secrets.values():
        for shown in (text, markdown, json.dumps(data)):
            assert value not in shown
