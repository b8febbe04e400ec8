"""``DescribeEvalResults`` on ``/v2/eval``: a finished evaluation's per-sample records, a page at a time.

A local extension. Qianfan hands per-sample results out as a file: ``CreateEvalResultExportTask`` (``evalId``,
``storageType``, ``exportContent`` of ``prompt``, ``prediction``, ``completion``, ``metrics``) and
``DescribeEvalResultExportTask`` (``state``, ``downloadUrl``) [E7][E14]; its v1 API also lists them page by
page (``eval/result/list`` with ``pageNo``/``pageSize``) [E15]. The local platform answers that list in one
action, with the export's field names for what a record holds (docs/platform-api.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.local.api_common import Body, Context, found, invalid
from runner.local.engine.sample_records import deciding, scaled_pass
from runner.local.jobspec import read_rows
from runner.local.rows import SUCCEEDED, TaskRow
from runner.platform import wire
from runner.platform.protocol import TaskKind

MAX_PAGE_SIZE = 1000


def describe_results(ctx: Context, body: Body) -> dict[str, Any]:
    task = ctx.store.task(body.text("taskId"))
    task = found(
        task if task is not None and task.kind == TaskKind.EVALUATION.value else None,
        "evaluation task",
        body.text("taskId"),
    )
    if task.status != SUCCEEDED:
        raise invalid(
            f"{body.where}: the evaluation task {task.id!r} is {task.status}; its results come once it "
            "has succeeded."
        )
    page_no = body.opt_integer("pageNo", 1, low=1) or 1
    page_size = body.opt_integer("pageSize", 100, low=1, high=MAX_PAGE_SIZE) or 100
    records = _records(task)
    start = (page_no - 1) * page_size
    return {
        "taskId": task.id,
        "pageNo": page_no,
        "pageSize": page_size,
        "totalCount": len(records),
        "results": records[start : start + page_size],
    }


def _records(task: TaskRow) -> list[dict[str, Any]]:
    """Every model's records in the task's model order, with people's scores where there are some."""
    manual: Mapping[str, Any] = task.params.get("manual") or {}
    low, high = (int(v) for v in manual.get("range") or (0, 1))
    scores: Mapping[str, Mapping[str, int]] = task.result.get("manual_scores") or {}
    records: list[dict[str, Any]] = []
    for version_id, entry in (task.result.get("models") or {}).items():
        path = entry.get("records_path")
        if not isinstance(path, str) or not Path(path).is_file():
            raise invalid(f"The records of evaluation task {task.id!r} for {version_id} are gone.")
        for line in read_rows(Path(path)):
            record = json.loads(line)
            # people score the dataset's samples, not benchmark items (numbered within their benchmark)
            key = "" if record.get("benchmark") else f"{version_id}#{record['index']}"
            given = scores.get(key) or {}
            metrics = {**record["metrics"], **{name: float(value) for name, value in given.items()}}
            values = deciding(record)
            if wire.SATISFACTION_WIRE in given:  # people decide too, their score scaled by its range
                values.append((given[wire.SATISFACTION_WIRE] - low) / (high - low))
            records.append(wire.result_record(version_id, record, metrics, scaled_pass(values)))
    return records
