"""The console API's task kinds: routes, actions, id and name fields, list fields and status words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.platform.protocol import (
    TaskKind,
    TaskStatus,
)
from runner.platform.wire.fields import WireError, req_str


@dataclass(frozen=True)
class KindApi:
    """The actions, field names and status words of one task kind."""

    route: str
    create: str
    describe: str
    list: str
    cancel: str
    request_id_field: str  # names the task in describe and cancel requests
    result_id_field: str  # names the task in describe results and list items
    name_field: str  # the task's name, in create requests and list items
    list_field: str  # the array of a list result
    list_filter: str | None  # the request field that narrows a list by name (fuzzy), if any
    list_fixed: Mapping[str, Any]  # fields a list request must carry
    status_field: str
    status_words: Mapping[str, TaskStatus]  # every documented word, spelt as documented

    def status_word(self, status: TaskStatus) -> str:
        """The first documented word for ``status`` (what the local platform answers)."""
        return next(word for word, value in self.status_words.items() if value is status)


_P, _R, _W, _S, _F, _X = (
    TaskStatus.PENDING,
    TaskStatus.RUNNING,
    TaskStatus.AWAITING_SCORES,
    TaskStatus.SUCCEEDED,
    TaskStatus.FAILED,
    TaskStatus.STOPPED,
)

KIND_API: Mapping[TaskKind, KindApi] = {
    # [B2][B4][B6][B7]: `Expired` is a run that passed its completion window, so it failed.
    TaskKind.BATCH_INFERENCE: KindApi(
        route="batchinference",
        create="CreateBatchInferenceTask",
        describe="DescribeBatchInferenceTask",
        list="DescribeBatchInferenceTasks",
        cancel="StopBatchInferenceTask",
        request_id_field="taskId",
        result_id_field="taskId",
        name_field="name",
        list_field="taskList",
        list_filter=None,  # no name filter is documented: page through everything [B6]
        list_fixed={},
        status_field="runStatus",
        status_words={
            "Queuing": _P,
            "Running": _R,
            "Stopping": _R,
            "Done": _S,
            "Failed": _F,
            "Expired": _F,
            "Stopped": _X,
        },
    ),
    # [E1][E2][E3][E5]: `Successed` is Qianfan's spelling; `Failed` means some or all sub-tasks failed.
    TaskKind.EVALUATION: KindApi(
        route="eval",
        create="CreateEvalTask",
        describe="DescribeEvalTask",
        list="DescribeEvalTasks",
        cancel="StopEvalTask",
        request_id_field="taskId",
        result_id_field="taskId",
        name_field="taskName",
        list_field="evalTaskList",  # [E3] (ai.baidu.com/ai-doc/WENXINWORKSHOP/pm17hb7di, result table)
        list_filter="keyFilter",  # fuzzy on name and id [E3]
        list_fixed={"evalType": "auto"},  # required [E3]; a lookup also asks for `manual` (EVAL_TYPES)
        status_field="state",
        status_words={
            "Queued": _P,
            "Running": _R,
            "RunningWithManualBegin": _W,  # manual labelling open: people score, nothing moves until then
            "RunningWithMetricsCalculating": _R,
            "Stopping": _R,
            "Successed": _S,
            "Failed": _F,
            "Stopped": _X,
        },
    ),
    # [C1][C2][C3][C4]
    TaskKind.COMPRESSION: KindApi(
        route="model",
        create="CreateModelCompTask",
        describe="DescribeModelCompTask",
        list="DescribeModelCompTasks",
        cancel="CancelModelCompTask",
        request_id_field="modelCompTaskId",
        result_id_field="id",
        name_field="name",
        list_field="modelCompTaskList",
        list_filter=None,  # only sourceModelId narrows the list [C3]
        list_fixed={},
        status_field="status",
        status_words={
            "creating": _P,
            "running": _R,
            "stopping": _R,
            "succeeded": _S,
            "failed": _F,
            "stopped": _X,
        },
    ),
    # A service is released, not deleted: ``cancel`` goes to SERVICE_RELEASE_ROUTE (see release_body). The
    # list field is not captured in Qianfan's pages; ``serviceList`` is what the SDK reads (service_items).
    TaskKind.SERVICE: KindApi(
        route="service",
        create="CreateService",
        describe="DescribeService",
        list="DescribeServices",
        cancel="ReleaseComputeUnit",
        request_id_field="serviceId",
        result_id_field="serviceId",
        name_field="name",
        list_field="serviceList",
        list_filter="name",
        list_fixed={},
        status_field="runStatus",
        status_words={
            "New": _P,
            "Deploying": _R,
            "Serving": _S,
            "Failed": _F,
            "Stopped": _X,
        },
    ),
}
EVAL_REPORT_ACTION = "DescribeEvalTaskReport"
EVAL_TYPES = ("auto", "manual")  # DescribeEvalTasks lists one evalType at a time [E3]
# Local-only actions on /v2/eval (Qianfan has people score in its console, not through the API): the
# answers of an open manual evaluation, and the scores for them.
EVAL_MANUAL_SAMPLES_ACTION = "DescribeEvalManualSamples"
EVAL_MANUAL_SCORES_ACTION = "SubmitEvalManualScores"


def status_of(kind: TaskKind, data: Mapping[str, Any]) -> TaskStatus:
    """The status a describe result names, from the kind's documented words (matched case-insensitively)."""
    api = KIND_API[kind]
    word = req_str(data, api.status_field)
    for known, status in api.status_words.items():
        if known.lower() == word.lower():
            return status
    words = ", ".join(api.status_words)
    raise WireError(f"the field 'result.{api.status_field}' has the unknown status {word!r} (known: {words})")
