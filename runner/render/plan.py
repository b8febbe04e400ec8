"""A plan as text (the terminal), markdown (a pull-request comment) or JSON (for tools)."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from runner.run.plan import BLOCKED, GATED, INVALID, RERUN, RESUME, RUN, UP_TO_DATE, Plan, StagePlan
from runner.stages.base import Charge

# GitHub refuses comments longer than 65,536 characters; a larger plan is summarised to fit.
MARKDOWN_LIMIT = 65_535
ORDER = (RUN, RERUN, RESUME, UP_TO_DATE, GATED, BLOCKED, INVALID)
MARKS = {RUN: "+", RERUN: "~", RESUME: ">", UP_TO_DATE: "=", GATED: "?", BLOCKED: "x", INVALID: "!"}


def headline(plan: Plan) -> str:
    counts = [f"{plan.count(action)} {action}" for action in ORDER if plan.count(action)]
    where = f"{plan.platform} (target {plan.target})" if plan.target else plan.platform
    return f"Plan for {plan.pipeline} on {where}: " + (", ".join(counts) or "no stages selected") + "."


def as_text(plan: Plan, *, verbose: bool = False) -> str:
    lines = [headline(plan), ""]
    if plan.warnings:
        lines += [f"  ! {_line(warning)}" for warning in plan.warnings] + [""]
    if plan.outside:
        lines += ["Changed outside qfrun (found by refresh):"]
        lines += [f"  ~ {c.stage_id}: {_line(c.change)}; {_line(c.then)}" for c in plan.outside] + [""]
    shown = [stage for stage in plan.stages if verbose or stage.action != UP_TO_DATE]
    for family, group in itertools.groupby(shown, key=lambda stage: stage.family):
        members = list(group)
        pad = "  " if family else ""  # a matrix's members are listed under it
        if family:
            lines.append(f"  {family}: matrix, {_members(plan, family)}")
        for stage in members:
            lines.append(f"  {pad}{MARKS[stage.action]} {stage.stage_id} ({stage.type}): {stage.action}")
            lines.append(f"  {pad}    {_line(stage.summary)}")
            lines.extend(f"  {pad}    because {_line(reason)}" for reason in stage.reasons)
            if stage.cost:
                lines.append(f"  {pad}    cost: {stage.cost}")
    hidden = plan.count(UP_TO_DATE) if not verbose else 0
    if hidden:
        lines.append(f"  = {hidden} stage{'s' if hidden != 1 else ''} up to date (-v lists them)")
    if plan.costs:
        lines += ["", f"{costs_title(plan)}:"] + [f"  {s.stage_id}: {s.cost}" for s in plan.costs]
        lines.append(f"  {cost_total(plan)}")
    if plan.sources:
        lines += ["", f"Sources on target {plan.target}:"] + [f"  {_line(line)}" for line in plan.sources]
    if plan.code:
        lines += ["", "Code from the repository that runs:"] + [f"  {_line(line)}" for line in plan.code]
    if plan.destinations:
        lines += ["", "Where credentials go:"] + [f"  {d.sentence()}" for d in plan.destinations]
    return "\n".join(lines).rstrip() + "\n"


def costs_title(plan: Plan) -> str:
    """The local platform charges nothing, so there the list is what the same plan would buy on Qianfan."""
    if plan.local:
        return "What Qianfan would charge (nothing here: the local platform runs it on this machine)"
    return "Cost-bearing actions"


def cost_total(plan: Plan) -> str:
    """The cost list totalled in Qianfan's units (its documents publish no prices): ``Total: 3 services,
    8 replica-months prepaid, 2 replicas billed by compute time``."""
    charges = [stage.charge for stage in plan.costs]
    known = [charge for charge in charges if charge is not None]
    prepaid = [c for c in known if c.payment == "prepaid"]
    by_compute = [c for c in known if c.payment != "prepaid" and c.charge != "tokens"]
    by_tokens = [c for c in known if c.payment != "prepaid" and c.charge == "tokens"]
    parts = [_count(len(charges), "service")]
    if prepaid:
        parts.append(f"{_count(sum(c.replicas * c.months for c in prepaid), 'replica-month')} prepaid")
    if by_compute:
        parts.append(f"{_count(_replicas(by_compute), 'replica')} billed by compute time while they run")
    if by_tokens:
        parts.append(f"{_count(len(by_tokens), 'service')} billed by the tokens its calls use")
    unknown = len(charges) - len(known)
    if unknown:
        parts.append(f"{_count(unknown, 'service')} sized only at run time")
    return "Total: " + ", ".join(parts) + ("; free on the local platform" if plan.local else "") + "."


def _replicas(charges: list[Charge]) -> int:
    return sum(charge.replicas for charge in charges)


def _count(number: int, word: str) -> str:
    return f"{number:,} {word}{'' if number == 1 else 's'}"


def _members(plan: Plan, family: str) -> str:
    """``4 stages: 2 run, 2 up to date``: what the plan does with a matrix's members."""
    actions = [stage.action for stage in plan.stages if stage.family == family]
    counts = ", ".join(f"{actions.count(action)} {action}" for action in ORDER if action in actions)
    return f"{len(actions)} stage{'s' if len(actions) != 1 else ''}: {counts}"


def as_json(plan: Plan) -> str:
    data: dict[str, Any] = {
        "qfrun_plan": 1,
        "pipeline": plan.pipeline,
        "path": plan.path,
        "platform": plan.platform,
        "target": plan.target,
        "state": plan.state_path,
        "summary": {action: plan.count(action) for action in ORDER},
        "stages": [
            {
                "id": s.stage_id,
                "type": s.type,
                "action": s.action,
                "reasons": list(s.reasons),
                "summary": s.summary,
                "fields": s.fields,
                "cost": s.cost,
                "upstream": list(s.upstream),
                "family": s.family,
            }
            for s in plan.stages
        ],
        "families": {
            family: [s.stage_id for s in plan.stages if s.family == family]
            for family in dict.fromkeys(s.family for s in plan.stages if s.family)
        },
        "warnings": list(plan.warnings),
        "refreshed": plan.refreshed,
        "changed_outside": [{"stage": c.stage_id, "change": c.change, "then": c.then} for c in plan.outside],
        "sources": list(plan.sources),
        "code": list(plan.code),
        "credentials": [
            {"host": d.host, "role": d.role, "credential": d.credential} for d in plan.destinations
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"


def as_markdown(plan: Plan, *, limit: int = MARKDOWN_LIMIT, full_plan_url: str = "") -> str:
    """A pull-request comment; beyond ``limit`` characters, details give way to a summary that fits, which
    links to ``full_plan_url`` (CI's artifact of the whole plan) when there is one."""
    head = [f"### qfrun plan: `{plan.pipeline}`", "", headline(plan), ""]
    if plan.warnings:
        head += ["**Warnings**", ""] + [f"- {_cell(warning)}" for warning in plan.warnings] + [""]
    if plan.outside:
        head += ["**Changed outside qfrun** (found by refresh)", ""]
        head += [f"- `{c.stage_id}`: {_cell(c.change)}; {_cell(c.then)}" for c in plan.outside] + [""]
    total = [f"**{escape_markdown(cost_total(plan))}**", ""] if plan.costs else []
    if plan.costs:
        head += [f"**{escape_markdown(costs_title(plan))}**", ""]
        head += [f"- `{s.stage_id}`: {escape_markdown(s.cost or '')}" for s in plan.costs] + [""] + total
    if plan.sources:
        head += (
            [f"**Sources on target `{plan.target}`**", ""] + [f"- {_cell(s)}" for s in plan.sources] + [""]
        )
    # What leaves the machine and what code runs stay in the comment however large the plan is.
    exposure: list[str] = []
    if plan.code:
        exposure += ["**Code from the repository that runs**", ""] + [f"- {_cell(c)}" for c in plan.code]
        exposure.append("")
    if plan.destinations:
        exposure += ["**Where credentials go**", ""]
        exposure += [f"- {_cell(d.sentence())}" for d in plan.destinations] + [""]
    head += exposure
    rows = ["| | stage | type | action | why |", "|---|---|---|---|---|"]
    changing = [stage for stage in plan.stages if stage.action != UP_TO_DATE]
    for family, group in itertools.groupby(changing, key=lambda stage: stage.family):
        if family:  # a matrix's members under one row that names it
            rows.append(f"| | **{escape_markdown(family)}** | matrix | {_members(plan, family)} | |")
        rows += [_row(stage) for stage in group]
    details = ["", "<details><summary>Resolved parameters</summary>", ""]
    for stage in plan.stages:
        if stage.action != UP_TO_DATE:
            text = json.dumps(stage.fields, indent=2, ensure_ascii=False, default=str)
            fence = _fence(text)
            details += [f"**{stage.stage_id}**: {_cell(stage.summary)}", "", f"{fence}json", text, fence, ""]
    details.append("</details>")
    up_to_date = plan.count(UP_TO_DATE)
    tail = ["", f"{up_to_date} stage{'s' if up_to_date != 1 else ''} up to date."] if up_to_date else []
    full = "\n".join(head + rows + details + tail) + "\n"
    if len(full) <= limit:
        return full
    where = f"[the full plan]({full_plan_url})" if full_plan_url else "`qfrun plan` for all of them"
    dropped = f"\n_The resolved parameters are left out to fit one comment; see {where}._\n"
    without_details = "\n".join(head + rows + tail) + "\n" + dropped
    if len(without_details) <= limit:
        return without_details
    note = (
        f"\n_The plan is too large for one comment ({len(full):,} characters; a comment holds "
        f"{limit:,}): the first stages are listed, see {where}._\n"
    )
    # Summarised: the cost-bearing actions may take half of what is left, the table the rest; the total
    # always stays.
    budget = limit - len("\n".join(head[:4] + exposure + total + tail)) - len(note) - 400
    costs: list[str] = []
    if plan.costs:
        listed = _fit([f"- `{s.stage_id}`: {escape_markdown(s.cost or '')}" for s in plan.costs], budget // 2)
        more = len(plan.costs) - len(listed)
        costs = [f"**{escape_markdown(costs_title(plan))}**", "", *listed]
        costs += [f"- ... and {more} more (`qfrun plan` lists them all)"] if more else []
        costs += ["", *total]
        budget -= len("\n".join(costs)) + 1
    kept = _fit(rows, budget)
    return "\n".join(head[:4] + exposure + costs + kept + tail) + "\n" + note


def _fit(lines: list[str], budget: int) -> list[str]:
    """The first lines whose joined length stays within budget."""
    kept: list[str] = []
    for line in lines:
        if budget - len(line) - 1 < 0:
            break
        kept.append(line)
        budget -= len(line) + 1
    return kept


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in the text, so a field's value cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _row(stage: StagePlan) -> str:
    why = "; ".join(stage.reasons) or stage.summary
    return f"| {MARKS[stage.action]} | `{stage.stage_id}` | {stage.type} | {stage.action} | {_cell(why)} |"


def _line(text: str) -> str:
    """Text on one line: a multi-line expression in a summary would break the layout."""
    return " ".join(text.split())


# What a pipeline's text could use to act in a pull-request comment: HTML tags (<img>, <details>), links and
# images ([..](..), ![..](..)), emphasis, code spans, table cells; "@" would mention (and notify) a person.
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_\[\]<>|~])")


def escape_markdown(text: str) -> str:
    """Text from a pipeline as literal Markdown: active characters escaped, mentions broken."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", text).replace("@", "@\u200b")


def _cell(text: str) -> str:
    text = escape_markdown(_line(text))
    return text if len(text) <= 300 else text[:297] + "..."
