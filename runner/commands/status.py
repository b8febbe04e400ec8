"""``qfrun status``: what the state file records, read without the lock (a run may be going on)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.plan import default_state_path
from runner.spec import load_pipeline
from runner.state import StateFile


def render_status(path: Path, state_path: Path | None, fmt: str) -> str:
    pipeline = load_pipeline(path, check_files=False, allow_env=None)
    state = StateFile.load(state_path or default_state_path(pipeline), pipeline.name)
    rows: list[dict[str, Any]] = []
    for stage_id, stage in pipeline.stages.items():
        record = state.stages.get(stage_id)
        rows.append(
            {
                "id": stage_id,
                "type": stage.type,
                "status": record.status.value if record else "never run",
                "task": (record.task or {}).get("task_id") if record else None,
                "attempt": record.attempt if record else 0,
                "finished_at": record.finished_at if record else "",
                "detail": _detail(record.to_json()) if record else "",
                "outputs": record.outputs if record else {},
            }
        )
    if fmt == "json":
        runs = [run.to_json() for run in state.runs]
        return (
            json.dumps(
                {"pipeline": pipeline.name, "state": str(state.path), "stages": rows, "runs": runs},
                indent=2,
                default=str,
            )
            + "\n"
        )
    lines = [f"State of {pipeline.name} ({state.path}):"]
    if state.runs:
        last = state.runs[-1]
        lines.append(f"last run {last.run_id}: {last.status}, started {last.started_at}")
    width = max((len(row["id"]) for row in rows), default=5)
    for row in rows:
        task = f" task {row['task']}" if row["task"] else ""
        detail = f"  {row['detail']}" if row["detail"] else ""
        lines.append(f"  {row['id']:<{width}}  {row['type']:<8}  {row['status']:<10}{task}{detail}")
    return "\n".join(lines) + "\n"


def _detail(record: dict[str, Any]) -> str:
    if record["status"] == "failed":
        return str(record["error"])
    if record["status"] == "skipped":
        return str(record["reason"])
    if record.get("rows_total"):
        return f"{record.get('rows_done') or 0}/{record['rows_total']} rows"
    outputs = record.get("outputs") or {}
    for key in ("metrics", "endpoint", "version_id", "result_dataset_id"):
        if outputs.get(key):
            value = outputs[key]
            return f"{key} {json.dumps(value) if isinstance(value, dict) else value}"
    return ""
