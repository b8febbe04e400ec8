"""``DescribeEvalResults`` (local extension, runner.local.api_eval_results): a finished evaluation's
per-sample records, paged as Qianfan's v1 result list is (``pageNo``, ``pageSize``) [E15], each record named
as Qianfan's result export names its content (``prompt``, ``prediction``, ``completion``, ``metrics``) [E14].
``modelId``, ``index``, ``judgeReason``, ``passed`` and ``benchmark`` (an OpenCompass benchmark item's
benchmark, its ``index`` counted within it) are local."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.platform.protocol import SampleRecord
from runner.platform.wire.evaluation import METRIC_WIRE_NAMES, metric_name
from runner.platform.wire.fields import WireError, obj, opt_str, req_str

EVAL_RESULTS_ACTION = "DescribeEvalResults"
EVAL_RESULTS_PAGE_SIZE = 1000  # the most the local platform answers at once


def eval_results_body(task_id: str, page_no: int) -> dict[str, Any]:
    return {"taskId": task_id, "pageNo": page_no, "pageSize": EVAL_RESULTS_PAGE_SIZE}


def result_record(
    version_id: str, record: Mapping[str, Any], metrics: Mapping[str, float], passed: bool | None
) -> dict[str, Any]:
    """One record as the local platform answers it (from the engine's record, qfrun's metric names)."""
    entry: dict[str, Any] = {
        "modelId": version_id,
        "index": record["index"],
        "prompt": record.get("input", ""),
        "prediction": record.get("output", ""),
        "completion": record.get("expected", ""),
        "metrics": {METRIC_WIRE_NAMES.get(name, name): value for name, value in metrics.items()},
        "passed": passed,
    }
    if record.get("reason"):
        entry["judgeReason"] = record["reason"]
    if record.get("benchmark"):
        entry["benchmark"] = record["benchmark"]
    return entry


def eval_results(result: Any) -> tuple[list[SampleRecord], int]:
    """The page's records and how many the task has in all."""
    data = obj(result, "result")
    items = data.get("results")
    total = data.get("totalCount")
    if not isinstance(items, list):
        raise WireError("the field 'result.results' should be an array")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise WireError("the field 'result.totalCount' should be a whole number")
    return [_record(item, f"result.results[{n}]") for n, item in enumerate(items)], total


def _record(item: Any, where: str) -> SampleRecord:
    entry = obj(item, where)
    index = entry.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or index < 1:
        raise WireError(f"the field '{where}.index' should be a whole number from 1")
    metrics: dict[str, float] = {}
    given = entry.get("metrics")
    for name, value in obj({} if given is None else given, f"{where}.metrics").items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics[metric_name(str(name))] = float(value)
    passed = entry.get("passed")
    if passed is not None and not isinstance(passed, bool):
        raise WireError(f"the field '{where}.passed' should be true, false or null")
    return SampleRecord(
        version_id=req_str(entry, "modelId", where),
        index=index,
        input=opt_str(entry, "prompt", where),
        expected=opt_str(entry, "completion", where),
        output=opt_str(entry, "prediction", where),
        metrics=metrics,
        reason=opt_str(entry, "judgeReason", where),
        passed=passed,
        benchmark=opt_str(entry, "benchmark", where),
    )
