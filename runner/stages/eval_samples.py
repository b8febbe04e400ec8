"""An evaluate stage's per-sample records, kept in the run's results folder for review and the report:
``.qfrun/results/<pipeline>/<stage>/samples.jsonl``, one JSON object per sample and model.

The file is bounded (at most ``MAX_RECORDS`` records and ``MAX_FILE_BYTES``, each text cut at
``MAX_TEXT_CHARS`` and marked ``truncated``; the stage's ``samples_truncated`` says when records were left
out) so that a large dataset cannot fill the disk or the HTML report, and replaced whole, never half-written.
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
MAX_FILE_BYTES = 64 * 1024 * 1024  # what the report reads back (runner.render.samples)
SAMPLES_FILE = "samples.jsonl"


def samples_path(pipeline: str, stage_id: str) -> str:
    """Where a stage's records go, relative to the pipeline's folder."""
    return f".qfrun/results/{pipeline}/{stage_id}/{SAMPLES_FILE}"


def keep_samples(ctx: StageContext, ref: TaskRef, labels: Mapping[str, str]) -> dict[str, Any]:
    """Write the task's records (``labels``: model version id -> the stage the user wrote); the stage's
    outputs that name the file (relative to the pipeline's folder), none when the platform hands none back."""
    try:
        records = ctx.platform.eval_samples(ref, MAX_RECORDS + 1)  # one more says that some were left out
    except PlatformError as error:
        ctx.log(f"kept no per-sample records: {error}")
        return {}
    if records is None:
        return {}
    lines: list[bytes] = []
    size = 0
    for record in records[:MAX_RECORDS]:
        line = (json.dumps(_row(record, labels), ensure_ascii=False) + "\n").encode("utf-8")
        if size + len(line) > MAX_FILE_BYTES:
            break
        lines.append(line)
        size += len(line)
    written = samples_path(ctx.pipeline, ctx.stage_id)
    target = Path(ctx.local_path(written))
    target.parent.mkdir(parents=True, exist_ok=True)
    replace_file(target, b"".join(lines))
    kept = records[: len(lines)]
    failed = sum(1 for record in kept if record.passed is False)
    left_out = len(records) > len(lines)
    more = f", the first of more than {len(lines)}" if left_out else ""
    ctx.log(f"kept {len(lines)} per-sample records ({failed} failed{more}) in {written}")
    return {"samples_file": written, "samples_truncated": True} if left_out else {"samples_file": written}


def _row(record: SampleRecord, labels: Mapping[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": labels.get(record.version_id, record.version_id),
        "version_id": record.version_id,
        "index": record.index,
        "passed": record.passed,
        "metrics": dict(record.metrics),
    }
    if record.benchmark:  # a benchmark's item, numbered within it (runner.local.engine.sample_records)
        row["benchmark"] = record.benchmark
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
