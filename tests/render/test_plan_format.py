"""Plan renderings: markdown fits one pull-request comment (summarised when larger), JSON feeds tools."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runner.pipeline.spec import load_pipeline
from runner.render import plan as planformat
from runner.run.plan import RUN, Plan, StagePlan, default_state_path, make_plan
from runner.stages.base import Charge
from runner.state.file import StateFile
from runner.testing.pipelines import LOCAL_COST, write


def generated(folder: Path, count: int) -> Path:
    """A pipeline of ``count`` stages: models, each compressed, in a long chain of needs."""
    lines = ["version: 1", "name: big", "stages:"]
    for index in range(count // 2):
        lines += [f"  m{index}:", "    type: model", f"    version_id: amv-{index}"]
        if index:
            lines.append(f"    needs: [c{index - 1}]")
        lines += [f"  c{index}:", "    type: compress", f"    model: m{index}", "    strategy: quantization"]
        lines.append("    weight: W4A16C16")
    path = folder / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def plan_of(path: Path) -> Plan:
    pipeline = load_pipeline(path)
    return make_plan(pipeline, StateFile.load(default_state_path(pipeline), pipeline.name))


@pytest.fixture(scope="module")
def big_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return plan_of(generated(tmp_path_factory.mktemp("big"), 5_000))


def test_markdown_of_5000_stages_fits_one_comment_and_says_it_was_summarised(big_plan: Plan) -> None:
    assert len(big_plan.stages) == 5_000
    markdown = planformat.as_markdown(big_plan)
    assert len(markdown) <= planformat.MARKDOWN_LIMIT
    assert "too large for one comment" in markdown
    assert "5000 run" in markdown  # the headline still counts every stage
    assert "`m0`" in markdown  # the first stages are listed


def test_markdown_within_the_limit_lists_every_stage_with_its_parameters(tmp_path: Path) -> None:
    plan = plan_of(write(tmp_path))
    markdown = planformat.as_markdown(plan)
    assert "too large" not in markdown
    for stage_id in ("base", "base_infer", "base_eval", "w4", "serve"):
        assert f"`{stage_id}`" in markdown
    assert "<details><summary>Resolved parameters</summary>" in markdown
    assert '"weight": "W4A16C16"' in markdown
    assert f"- `serve`: {LOCAL_COST}" in markdown


def test_markdown_drops_details_first_when_only_they_do_not_fit(tmp_path: Path) -> None:
    plan = plan_of(write(tmp_path))
    full = planformat.as_markdown(plan)
    without = planformat.as_markdown(plan, limit=full.index("<details>") + 200)
    assert "<details>" not in without
    assert "`serve`" in without
    assert "too large" not in without


def test_markdown_escapes_pipes_in_table_cells() -> None:
    stage = StagePlan("s", "model", RUN, ("a | b",), "x", {}, None, ())
    markdown = planformat.as_markdown(Plan("p", "p.yaml", "local", "s.json", (stage,)))
    assert "a \\| b" in markdown


def test_json_parses_and_has_every_per_stage_field(tmp_path: Path) -> None:
    plan = plan_of(write(tmp_path))
    data = json.loads(planformat.as_json(plan))
    assert data["qfrun_plan"] == 1
    assert data["pipeline"] == "demo"
    assert data["summary"]["run"] == 5
    assert [s["id"] for s in data["stages"]] == ["base", "base_infer", "base_eval", "w4", "serve"]
    for stage in data["stages"]:
        assert set(stage) == {
            "id",
            "type",
            "action",
            "reasons",
            "summary",
            "fields",
            "cost",
            "upstream",
            "family",
        }
    serve = data["stages"][-1]
    assert serve["cost"] == LOCAL_COST
    assert serve["upstream"] == ["base_eval", "w4"]
    assert serve["fields"]["service"]["replicas"] == 2


def test_json_of_5000_stages_parses(big_plan: Plan) -> None:
    assert len(json.loads(planformat.as_json(big_plan))["stages"]) == 5_000


def test_text_headline_counts_actions_in_order(tmp_path: Path) -> None:
    text = planformat.as_text(plan_of(write(tmp_path)))
    assert text.startswith("Plan for demo on local: 5 run.\n")
    assert "  + serve (deploy): run" in text
    assert f"cost: {LOCAL_COST}" in text


def test_markdown_of_5000_deployments_fits_although_every_one_bears_a_cost() -> None:
    cost = "2 replicas of GPU-1-1, prepaid 3 months (6 replica-months)"
    stages = tuple(
        StagePlan(f"deploy_{index}", "deploy", RUN, ("it has not run yet",), "deploy", {}, cost, ())
        for index in range(5_000)
    )
    markdown = planformat.as_markdown(Plan("p", "p.yaml", "qianfan", "s.json", stages))
    assert len(markdown) <= planformat.MARKDOWN_LIMIT
    assert f"- `deploy_0`: {cost}" in markdown
    assert "more (`qfrun plan` lists them all)" in markdown
    assert "| + | `deploy_0` | deploy | run |" in markdown
    assert "too large for one comment" in markdown


def test_a_field_holding_backticks_cannot_close_the_code_block() -> None:
    fields = {"prompt": "say ```rm -rf``` now"}
    stage = StagePlan("s", "infer", RUN, (), "x", fields, None, ())
    markdown = planformat.as_markdown(Plan("p", "p.yaml", "local", "s.json", (stage,)))
    assert "````json\n" in markdown
    block = markdown.split("````json\n", 1)[1].split("\n````\n", 1)[0]
    assert json.loads(block) == fields


def test_a_multi_line_summary_is_shown_on_one_line() -> None:
    summary = "deploy ${{ 'a'\n      if x else 'b' }}"
    stage = StagePlan("s", "deploy", RUN, ("because\n   of this",), summary, {}, None, ())
    plan = Plan("p", "p.yaml", "local", "s.json", (stage,))
    assert "      deploy ${{ 'a' if x else 'b' }}\n      because because of this\n" in planformat.as_text(
        plan
    )
    markdown = planformat.as_markdown(plan)
    assert "| because of this |" in markdown
    assert "**s**: deploy ${{ 'a' if x else 'b' }}" in markdown


def test_text_from_a_pipeline_cannot_act_in_the_pull_request_comment() -> None:
    hostile = (
        "<img src=x onerror=alert(1)> [click](https://evil.example) ![i](https://t.example/p.png) @org/all"
    )
    shown = planformat.escape_markdown(hostile + " | `x` *y* ~~z~~")
    unescaped = re.findall(r"(?<!\\)[<>\[\]|`*~]", shown)
    assert unescaped == []  # no tag, link, image, cell break, code span or emphasis is left active
    assert "@org" not in shown  # no mention: a zero-width space follows the @
    assert (
        shown.replace("\\", "").replace("\u200b", "") == hostile + " | `x` *y* ~~z~~"
    )  # the text reads the same


def _deploys(*charges: Charge | None) -> tuple[StagePlan, ...]:
    return tuple(
        StagePlan(f"d{index}", "deploy", RUN, (), "deploy", {}, "what it buys", (), charge=charge)
        for index, charge in enumerate(charges)
    )


def test_the_cost_list_is_totalled_in_qianfans_units() -> None:
    stages = _deploys(
        Charge("prepaid", 2, 3),
        Charge("prepaid", 1, 12),
        Charge("postpaid", 3, charge="computing_unit"),
        Charge("postpaid", 1, charge="tokens"),
        None,  # a replica count still an expression: known at run time
    )
    plan = Plan("p", "p.yaml", "qianfan", "s.json", stages)
    expected = (
        "Total: 5 services, 18 replica-months prepaid, 3 replicas billed by compute time while they run, "
        "1 service billed by the tokens its calls use, 1 service sized only at run time."
    )
    assert planformat.cost_total(plan) == expected
    markdown = planformat.as_markdown(plan)
    assert "**Cost-bearing actions**" in markdown
    assert f"**{expected}**" in markdown
    assert f"  {expected}" in planformat.as_text(plan)


def test_the_local_platform_lists_what_qianfan_would_charge_and_never_says_cost_bearing(
    tmp_path: Path,
) -> None:
    plan = plan_of(write(tmp_path))
    assert plan.local
    for shown in (planformat.as_markdown(plan), planformat.as_text(plan)):
        assert "cost-bearing" not in shown.lower()
        assert "What Qianfan would charge (nothing here" in shown
        assert "Total: 1 service, 6 replica-months prepaid; free on the local platform." in shown


def test_a_summarised_comment_keeps_the_total_of_every_cost() -> None:
    stages = _deploys(*[Charge("prepaid", 2, 3)] * 5_000)
    markdown = planformat.as_markdown(Plan("p", "p.yaml", "qianfan", "s.json", stages))
    assert len(markdown) <= planformat.MARKDOWN_LIMIT
    assert "- ... and" in markdown
    assert "**Total: 5,000 services, 30,000 replica-months prepaid.**" in markdown
