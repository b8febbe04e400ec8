"""``qfrun status``: what the state file records, read without the lock (a run may be going on).

For a deployed service it also says when its prepaid term ends and how many days are left, and with
``--live`` what the platform says of it now (one DescribeService per service): a service stopped, expired
or released outside qfrun shows as such, which the state file cannot know.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from runner.commands.options import PIPELINE, STATE, TARGET
from runner.errors import PlatformNotFound
from runner.pipeline.spec import Pipeline, load_pipeline
from runner.platform.protocol import Platform, TaskKind, TaskRef
from runner.render.lineage import as_text, build_lineage
from runner.stages import STAGE_TYPES
from runner.state.file import StateFile
from runner.state.records import StageRecord


def render_status(
    path: Path,
    state_path: Path | None,
    fmt: str,
    *,
    live: Callable[[Pipeline], Platform] | None = None,
    now: datetime | None = None,
    target: str | None = None,
) -> str:
    pipeline = load_pipeline(path, check_files=False, allow_env=None, target=target)
    from runner.state.connect import open_backend

    state = open_backend(pipeline, state_path, notify=lambda line: click.echo(line, err=True)).read()
    platform = live(pipeline) if live is not None else None
    try:
        rows = _rows(pipeline, state, platform, now or datetime.now(UTC))
    finally:
        close = getattr(platform, "close", None)
        if callable(close):
            close()
    lineage = build_lineage(pipeline, state)
    if fmt == "json":
        runs = [run.to_json() for run in state.runs]
        shown = {"pipeline": pipeline.name, "state": state.label, "stages": rows, "runs": runs}
        return json.dumps({**shown, "lineage": lineage}, indent=2, default=str) + "\n"
    lines = [f"State of {pipeline.name} ({state.label}):"]
    if state.runs:
        last = state.runs[-1]
        lines.append(f"last run {last.run_id}: {last.status}, started {last.started_at}")
    width = max((len(row["id"]) for row in rows), default=5)
    for row in rows:
        task = f" task {row['task']}" if row["task"] else ""
        detail = f"  {row['detail']}" if row["detail"] else ""
        if row.get("service"):
            detail += f"  {_service_text(row['service'])}"
        lines.append(f"  {row['id']:<{width}}  {row['type']:<8}  {row['status']:<10}{task}{detail}")
    if lineage:  # where each model version came from, and what used it
        lines += ["Lineage:", *as_text(lineage)]
    return "\n".join(lines) + "\n"


def _detail(record: dict[str, Any], unit: str = "rows") -> str:
    if record["status"] == "failed":
        return str(record["error"])
    if record["status"] in ("skipped", "waiting"):
        return str(record["reason"])
    if record.get("rows_total"):
        return f"{record.get('rows_done') or 0}/{record['rows_total']} {unit}"
    outputs = record.get("outputs") or {}
    for key in ("metrics", "url_suffix", "version_id", "result_dataset_id"):
        if outputs.get(key):
            value = outputs[key]
            return f"{key} {json.dumps(value) if isinstance(value, dict) else value}"
    return ""


def _service(record: StageRecord | None, platform: Platform | None, now: datetime) -> dict[str, Any] | None:
    """A deployed service's term (expiry, days left) from the state and, with a platform, its live status."""
    if record is None or not record.task or record.task.get("kind") != TaskKind.SERVICE.value:
        return None
    found: dict[str, Any] = {"expires_at": record.outputs.get("expires_at"), "days_left": None}
    if found["expires_at"]:
        try:
            end = datetime.strptime(str(found["expires_at"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            found["days_left"] = max((end - now).days, 0) if end > now else 0
        except ValueError:
            pass
    if platform is not None:
        task = record.task
        ref = TaskRef(TaskKind.SERVICE, task["task_id"], task.get("name", ""), task.get("instance_id", ""))
        try:
            info = platform.describe_task(ref)
            found["live"] = info.status.value + (f" ({info.message})" if info.message else "")
        except PlatformNotFound:
            found["live"] = "gone (the platform no longer knows it)"
    return found


def _service_text(service: dict[str, Any]) -> str:
    parts = []
    if service.get("live"):
        parts.append(f"live: {service['live']}")
    if service.get("expires_at"):
        left = service.get("days_left")
        parts.append(
            f"expires {service['expires_at']}" + (f" ({left} days left)" if left is not None else "")
        )
    else:
        parts.append("no term (postpaid)")
    return ", ".join(parts)


def _rows(
    pipeline: Pipeline, state: StateFile, platform: Platform | None, now: datetime
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for stage_id, stage in pipeline.stages.items():
        record = state.stages.get(stage_id)
        service = _service(record, platform, now) if STAGE_TYPES[stage.type].serves_chat else None
        rows.append(
            {
                "id": stage_id,
                "type": stage.type,
                "status": record.status.value if record else "never run",
                "task": (record.task or {}).get("task_id") if record else None,
                "attempt": record.attempt if record else 0,
                "finished_at": record.finished_at if record else "",
                "detail": _detail(record.to_json(), STAGE_TYPES[stage.type].progress_unit) if record else "",
                "outputs": record.outputs if record else {},
                **({"service": service} if service else {}),
            }
        )
    return rows


@click.command(name="status")
@PIPELINE
@STATE
@TARGET
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--live", is_flag=True, help="Also ask the platform how each deployed service is now (one request each)."
)
def command(pipeline: Path, state_path: Path | None, target: str | None, fmt: str, live: bool) -> None:
    """Show what the state file records for PIPELINE: each stage's status, task, outputs or error; each
    service's term and days left."""

    def platform(loaded: Pipeline) -> Platform:
        from runner.run.connect import open_platform

        return open_platform(
            loaded.platform, notify=lambda line: click.echo(line, err=True), pipeline_file=loaded.path
        )

    click.echo(
        render_status(pipeline, state_path, fmt, live=platform if live else None, target=target), nl=False
    )
