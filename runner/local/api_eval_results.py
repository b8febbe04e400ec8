"""``CreateEvalResultExportTask`` and ``DescribeEvalResultExportTask`` on ``/v2/eval`` [E7][E14], and the
download their ``downloadUrl`` points at.

The bodies are Qianfan's: create ``{evalId, storageType (sysStorage | BOS, default sysStorage), bucket (BOS),
exportContent}`` answers ``{taskId: "amemt-…"}``; describe ``{taskId}`` answers ``{taskId, evalId,
exportContent, state, storageType, storagePath, downloadUrl}`` (``storagePath`` for BOS, ``downloadUrl`` for
sysStorage). Choices where the pages are silent (docs/platform-api.md §Per-sample results): the export is
written when it is created, so it is ``Succeeded`` at once (an evaluation's records are already files); the
file is a zip holding ``data.jsonl``, one JSON object per sample and model, with the export's content names
(``prompt``, ``prediction``, ``completion``, ``metrics``, ``system``: only those asked for) and the local
columns ``modelId``, ``index``, ``judgeReason``, ``passed`` and ``benchmark`` (an OpenCompass item's
benchmark, ``index`` then counted within it). A sysStorage export lives in the platform's home and is
served at ``DOWNLOAD_PATH`` behind the same gate as the console (token or signature, loopback
Host); a BOS export is an object in the platform's BOS (``<bucket>/qianfan-eval-exports/<evalId>/<id>.zip``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from runner.atomic import replace_file
from runner.local.api_common import ApiError, Body, Context, found, invalid, not_found
from runner.local.bos_store import BosError
from runner.local.compat.datasets import archive
from runner.local.engine.sample_records import deciding, scaled_pass
from runner.local.jobspec import read_rows
from runner.local.rows import SUCCEEDED, TaskRow, new_id
from runner.platform import wire
from runner.platform.protocol import TaskKind
from runner.platform.wire import eval_results as export_wire

DOWNLOAD_PATH = "/_exports/eval-results/"  # "_" is no BOS bucket name's first character: never a BOS path
EXPORT_FILE = "data.jsonl"  # the member name the official SDK reads from Qianfan's zip [E18]
BOS_FOLDER = "qianfan-eval-exports"
_EXPORT_ID = re.compile(rf"^{export_wire.EXPORT_PREFIX}-[0-9a-z]{{1,40}}$")  # never a path
Authenticate = Callable[[Request], Awaitable[None]]


def exports_dir(ctx: Context) -> Path:
    return ctx.home.root / "eval-exports"


def create_export(ctx: Context, body: Body) -> dict[str, Any]:
    eval_id = body.text("evalId")
    task = ctx.store.task(eval_id)
    task = found(
        task if task is not None and task.kind == TaskKind.EVALUATION.value else None,
        "evaluation task",
        eval_id,
    )
    if task.status != SUCCEEDED:
        raise invalid(
            f"{body.where}: the evaluation task {task.id!r} is {task.status}; its results can be exported "
            "once it has succeeded."
        )
    storage = body.choice("storageType", export_wire.STORAGE_TYPES, required=False) or export_wire.SYS_STORAGE
    content = body.texts("exportContent", required=True)
    unknown = sorted(set(content) - export_wire.EXPORT_CONTENT_ALLOWED)
    if not content or unknown:
        allowed = ", ".join(sorted(export_wire.EXPORT_CONTENT_ALLOWED))
        raise invalid(f"{body.where}: exportContent takes {allowed}, not {', '.join(unknown) or 'nothing'}.")
    bucket = body.opt_text("bucket")
    if storage == export_wire.BOS_STORAGE and not bucket:
        raise invalid(f"{body.where}: storageType BOS needs the field 'bucket'.")
    export_id = new_id(export_wire.EXPORT_PREFIX)
    data = archive({EXPORT_FILE: _export_lines(task, content)})
    path = ""
    if storage == export_wire.BOS_STORAGE:
        assert bucket is not None
        key = f"{BOS_FOLDER}/{task.id}/{export_id}.zip"
        try:
            ctx.objects.put(bucket, key, data, content_type="application/zip")
        except BosError as error:
            raise ApiError(error.status, error.code, f"{body.where}: {error.message}") from None
        path = f"bos:/{bucket}/{key}"
    else:
        exports_dir(ctx).mkdir(mode=0o700, parents=True, exist_ok=True)
        replace_file(exports_dir(ctx) / f"{export_id}.zip", data)
    meta = {
        "taskId": export_id,
        "evalId": task.id,
        "exportContent": content,
        "state": export_wire.EXPORT_SUCCEEDED,
        "storageType": storage,
        "storagePath": path,
    }
    exports_dir(ctx).mkdir(mode=0o700, parents=True, exist_ok=True)
    replace_file(exports_dir(ctx) / f"{export_id}.json", json.dumps(meta).encode("utf-8"))
    return {"taskId": export_id}


def describe_export(ctx: Context, body: Body) -> dict[str, Any]:
    export_id = body.text("taskId")
    meta = _meta(ctx, export_id)
    if meta is None:
        raise not_found(f"The result export task {export_id!r} does not exist on this platform.")
    answer = dict(meta)
    if meta["storageType"] == export_wire.SYS_STORAGE:
        answer["downloadUrl"] = f"{ctx.base_url}{DOWNLOAD_PATH}{export_id}.zip"
    return answer


def _meta(ctx: Context, export_id: str) -> Mapping[str, Any] | None:
    if not _EXPORT_ID.match(export_id):  # an id is never a path
        return None
    path = exports_dir(ctx) / f"{export_id}.json"
    if not path.is_file():
        return None
    meta: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return meta


def routes(ctx: Context, authenticate: Authenticate) -> list[Route]:
    """The download of a sysStorage export, behind the console's own gate."""

    async def download(request: Request) -> Response:
        try:
            await authenticate(request)
        except ApiError as error:
            return Response(error.message, status_code=error.status)
        name = str(request.path_params["name"])
        export_id = name.removesuffix(".zip")
        meta = await run_in_threadpool(_meta, ctx, export_id)
        path = exports_dir(ctx) / f"{export_id}.zip"
        if meta is None or not name.endswith(".zip") or not path.is_file():
            return Response(f"No result export {name} on this platform.", status_code=404)
        return FileResponse(path, media_type="application/zip", filename=name)

    return [Route(DOWNLOAD_PATH + "{name}", download, methods=["GET"])]


def _export_lines(task: TaskRow, content: list[str]) -> bytes:
    wanted = set(content)
    dropped = {"prompt", "prediction", "completion", "metrics"} - wanted
    lines = []
    for record in _records(task):
        row = {name: value for name, value in record.items() if name not in dropped}
        if "metrics" not in wanted:
            row.pop("judgeReason", None)  # the judge's reply goes with its score
        if "system" in wanted:
            row["system"] = ""  # local datasets carry no persona
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    return "".join(lines).encode("utf-8")


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
