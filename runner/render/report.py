"""``qfrun report``: what a pipeline's runs produced, as JSON, markdown and a self-contained HTML page.

The report is built from the pipeline and its state file only, so it can be made at any time (also while a run
goes on, or on another machine with a copy of the state) and never talks to the platform. JSON is the source;
the markdown fits one pull-request comment; the HTML page (runner.render.report_html) needs no network to
display.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from runner.pipeline import dag
from runner.pipeline.spec import Pipeline
from runner.render.console import console_link
from runner.render.diff import runs_compared
from runner.render.lineage import build_lineage, gains
from runner.render.plan import escape_markdown
from runner.render.report_lineage import lineage_markdown
from runner.render.report_model import Evaluation, Report, StageRow
from runner.render.samples import failures_markdown, sample_tables
from runner.render.training import trainings
from runner.render.units import size_text
from runner.stages import STAGE_TYPES
from runner.stages.base import ReportSection
from runner.state.file import StateFile, atomic_write, utc_now

MARKDOWN_LIMIT = 65_535


def build_report(pipeline: Pipeline, state: StateFile) -> Report:
    stages: list[StageRow] = []
    platform = pipeline.platform_spec.name
    for stage_id in dag.topological(pipeline.graph):
        stage = pipeline.stages[stage_id]
        record = state.stages.get(stage_id)
        task = (record.task or {}) if record else {}
        stages.append(
            {
                "id": stage_id,
                "type": stage.type,
                # where the pipeline file declares the stage, for the HTML report's links to it
                "line": pipeline.document.key_location(("stages", stage_id)).line,
                "status": record.status.value if record else "never run",
                "attempt": record.attempt if record else 0,
                "task_id": task.get("task_id"),
                "console": console_link(platform, task, stage.body),
                "started_at": record.started_at if record else "",
                "finished_at": record.finished_at if record else "",
                "seconds": _seconds(record.started_at, record.finished_at) if record else None,
                "error": record.error if record else "",
                "reason": record.reason if record else "",
                "outputs": (record.outputs or (record.last_success or {}).get("outputs", {}))
                if record
                else {},
                "upstream": list(stage.upstream),
                "family": stage.family,
            }
        )
    by_id = {stage["id"]: stage for stage in stages}
    sections: dict[ReportSection, list[Any]] = {"evaluations": [], "models": [], "services": []}
    for row in stages:
        # each section's rows are the shapes report_model names; a stage type makes them
        for entry in STAGE_TYPES[row["type"]].report_entries(row, by_id):
            sections[entry.section].append(dict(entry.row))
    history, changes = runs_compared(pipeline, state)  # metrics across runs, changes since the previous one
    lineage = build_lineage(pipeline, state)
    return {
        "qfrun_report": 1,
        "pipeline": pipeline.name,
        "path": str(pipeline.path),
        "platform": platform,
        "generated_at": utc_now(),
        "run": state.runs[-1].to_json() if state.runs else None,
        "stages": stages,
        "edges": [list(edge) for edge in pipeline.graph.edges],
        "families": {family: list(members) for family, members in pipeline.families.items()},
        "evaluations": sections["evaluations"],
        "comparison": _comparison(sections["evaluations"]),
        "models": sections["models"],
        "services": sections["services"],
        "history": history,
        "changes": changes,
        "lineage": lineage,
        "gains": gains(pipeline, state, lineage),
        "training": trainings(stages),
        "samples": sample_tables(stages, pipeline.path.parent),
    }


def _seconds(started: str, finished: str) -> float | None:
    if not started or not finished:
        return None
    try:
        begin = datetime.fromisoformat(started.replace("Z", "+00:00"))
        end = datetime.fromisoformat(finished.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (end - begin).total_seconds())


def _comparison(evaluations: list[Evaluation]) -> Evaluation:
    """Every model's metrics side by side across evaluations (the base in one, compressed ones in another)."""
    metrics: dict[str, dict[str, float]] = {}
    samples: dict[str, Any] = {}
    for evaluation in evaluations:
        for name, values in evaluation["metrics"].items():
            metrics.setdefault(name, {}).update(values)
        samples.update(evaluation["samples"])
    return {"stage": "all evaluations", "metrics": metrics, "samples": samples}


def as_markdown(report: Report, *, limit: int = MARKDOWN_LIMIT) -> str:
    run = report.get("run") or {}
    lines = [f"### qfrun report: `{report['pipeline']}`", ""]
    if run:
        lines += [f"Run `{run['run_id']}`: **{run['status']}** (started {run['started_at']}).", ""]
    for evaluation in report["evaluations"]:
        models = sorted({m for values in evaluation["metrics"].values() for m in values})
        lines += [
            f"**{evaluation['stage']}**",
            "",
            "| metric | " + " | ".join(models) + " |",
            "|---|" + "---|" * len(models),
        ]
        for name, values in sorted(evaluation["metrics"].items()):
            cells = [f"{values[m]:.4g}" if m in values else "" for m in models]
            # a custom scorer names its metrics: text from the pipeline's code, literal in the comment
            lines.append(f"| {escape_markdown(name)} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += failures_markdown(report.get("samples") or [], escape_markdown)
    if report["models"]:
        lines += ["| model | version | scheme | size |", "|---|---|---|---|"]
        lines += [
            f"| `{m['stage']}` | {escape_markdown(str(m['version_id']))} | "
            f"{escape_markdown(str(m['scheme'] or ''))} | {size_text(m['size_bytes'])} |"
            for m in report["models"]
        ]
        lines.append("")
    for service in report["services"]:
        where = escape_markdown(str(service["url"] or service["url_suffix"]))
        lines += [f"Service `{service['stage']}` answers at {where}.", ""]
    lines += lineage_markdown(report)
    table = ["| stage | type | status | time | detail |", "|---|---|---|---|---|"]
    families = report.get("families") or {}
    for stage in report["stages"]:
        family = stage.get("family")
        if family and stage["id"] == families.get(family, [None])[0]:  # a matrix's members under its name
            table.append(f"| **{escape_markdown(family)}** | matrix of {len(families[family])} | | | |")
        # errors quote what the platform said: model answers, dataset rows; literal text in the comment
        detail = escape_markdown(" ".join((stage["error"] or stage["reason"]).split())[:200])
        seconds = f"{stage['seconds']:.0f} s" if stage["seconds"] is not None else ""
        table.append(f"| `{stage['id']}` | {stage['type']} | {stage['status']} | {seconds} | {detail} |")
    text = "\n".join(lines + table) + "\n"
    if len(text) <= limit:
        return text
    note = "\n_The report is too large for one comment: see report.html for every stage._\n"
    return text[: limit - len(note)].rsplit("\n", 1)[0] + "\n" + note


def default_report_folder(pipeline: Pipeline, state: StateFile) -> Path:
    # A remote state's working copy is a temporary folder: its reports go beside the pipeline instead.
    kept_beside = state.path.parent if state.label == str(state.path) else pipeline.path.parent / ".qfrun"
    return kept_beside / "reports" / pipeline.state_name


def write_reports(report: Report, folder: Path) -> list[Path]:
    """Write report.json, report.md and report.html into ``folder`` (each replaced atomically)."""
    from runner.render.report_html import as_html

    folder.mkdir(parents=True, exist_ok=True)  # a folder the user names gets no .gitignore of ours
    written = []
    for name, text in (
        ("report.json", json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"),
        ("report.md", as_markdown(report)),
        ("report.html", as_html(report, folder=folder)),
    ):
        path = folder / name
        atomic_write(path, text.encode("utf-8"))
        written.append(path)
    return written
