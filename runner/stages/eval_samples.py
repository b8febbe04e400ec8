"""An evaluate stage's per-sample records, kept in the run's results folder for review and the report:
``.qfrun/results/<pipeline>/<stage>/samples.jsonl``, one JSON object per sample and model.

The file is bounded (``MAX_RECORDS`` records, each text cut at ``MAX_TEXT_CHARS`` and marked ``truncated``)
so that a large dataset cannot fill the disk or the HTML report, and replaced whole, never half-written.
Records are a help to the reviewer, not a result of the stage: when the platform cannot hand them back,
the stage says so and keeps its metrics.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.atomic import replace_file
from runner.errors import PlatformError
from runner.platform.protocol import SampleRecord, TaskRef
from runner.stages.base import StageContext

MAX_RECORDS = 50_000  # 10,000 samples of each of Qianfan's at most 5 models [E1]
MAX_TEXT_CHARS = 4_000
SAMPLES_FILE = "samples.jsonl"


def samples_path(pipeline: str, stage_id: str) -> str:
    """Where a stage's records go, relative to the pipeline's folder."""
    return f".qfrun/results/{pipeline}/{stage_id}/{SAMPLES_FILE}"


def keep_samples(ctx: StageContext, ref: TaskRef, labels: Mapping[str, str]) -> str | None:
    """Write the task's records (``labels``: model version id -> the stage the user wrote) and return the
    file's path relative to the pipeline's folder; None when the platform hands none back."""
    try:
        records = ctx.platform.eval_samples(ref, MAX_RECORDS)
    except PlatformError as error:
        ctx.log(f"kept no per-sample records: {error}")
        return None
    if records is None:
        return None
    written = samples_path(ctx.pipeline, ctx.stage_id)
    target = Path(ctx.local_path(written))
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = (json.dumps(_row(record, labels), ensure_ascii=False) + "\n" for record in records)
    replace_file(target, "".join(lines).encode("utf-8"))
    failed = sum(1 for record in records if record.passed is False)
    ctx.log(f"kept {len(records)} per-sample records ({failed} failed) in {written}")
    return written


def _row(record: SampleRecord, labels: Mapping[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": labels.get(record.version_id, record.version_id),
        "version_id": record.version_id,
        "index": record.index,
        "passed": record.passed,
        "metrics": dict(record.metrics),
    }
    cut = False
    for key, text in (
        ("input", record.input),
        ("expected", record.expected),
        ("output", record.output),
        ("reason", record.reason),
    ):
        row[key] = text[:MAX_TEXT_CHARS]
        cut = cut or len(text) > MAX_TEXT_CHARS
    if cut:
        row["truncated"] = True
    return row
