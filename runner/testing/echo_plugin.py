"""A stage type and a task kind that live in this one file: ``echo``, which asks the platform to say a text
back in capitals.

It is the worked example of docs/adding-a-stage-type.md and the proof that a stage type and a task kind are
complete plugins: everything qfrun and the local platform need (the task kind's wire entry, its console
actions and engine job on the local platform, the stage's schema, checks, local inputs, plan line, run and
report rows) is here, and ``installed()`` registers it all without any other module knowing about it
(tests/test_plugins.py). Nothing registers on import, so the job process that imports ``run_job`` and a test
that never installs the plugin see qfrun as it ships.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from runner.errors import Issue
from runner.local.api_common import Body, Context
from runner.local.engine.job import progress_writer, require
from runner.local.home import Home
from runner.local.jobspec import Prepared, job_spec
from runner.local.kinds import registry as local_kinds
from runner.local.kinds.common import create_task, failure, listing, stop, task_of
from runner.local.rows import TaskRow
from runner.local.store import Store
from runner.pipeline.expr import contains_expression
from runner.platform.protocol import TaskKind, TaskRequest, TaskStatus
from runner.platform.wire import kinds as wire_kinds
from runner.platform.wire.fields import req_str
from runner.platform.wire.statuses import FAILED, PENDING, RUNNING, STOPPED, SUCCEEDED
from runner.stages import registry as stage_types
from runner.stages.base import (
    CheckContext,
    LocalInput,
    PlanDetail,
    ReportEntry,
    StageContext,
    StageType,
)

ECHO = TaskKind.define("echo")


# -- the client's half of the task kind: one wire entry ------------------------------------------------------
def _create_body(request: TaskRequest, model_set_id: str, local: bool) -> dict[str, Any]:
    return {"name": request.name, "text": request.params["text"]}


def _outcome(data: Mapping[str, Any], status: TaskStatus, report: Any) -> dict[str, Any]:
    return {"echo": req_str(data, "output")} if status is TaskStatus.SUCCEEDED else {}


WIRE = wire_kinds.KindApi(
    kind=ECHO,
    route="echo",
    create="CreateEchoTask",
    describe="DescribeEchoTask",
    list="DescribeEchoTasks",
    cancel="StopEchoTask",
    request_id_field="taskId",
    result_id_field="taskId",
    name_field="name",
    list_field="echoTaskList",
    list_filter=None,
    list_fixed={},
    status_field="status",
    status_words={
        "Queued": PENDING,
        "Running": RUNNING,
        "Done": SUCCEEDED,
        "Failed": FAILED,
        "Stopped": STOPPED,
    },
    create_body=_create_body,
    outcome=_outcome,
)


# -- the local platform's half: console actions, the job, the engine entry -----------------------------------
def _render(task: TaskRow) -> dict[str, Any]:
    return {
        "taskId": task.id,
        "name": task.name,
        "status": local_kinds.wire_status(task),
        "output": task.result.get("output", ""),
        "failedReason": failure(task),
    }


def create_echo(ctx: Context, body: Body) -> dict[str, Any]:
    text = body.text("text")
    return {"taskId": create_task(ctx, LOCAL, body.text("name"), lambda: {"text": text}).id}


def describe_echo(ctx: Context, body: Body) -> dict[str, Any]:
    return _render(task_of(ctx, LOCAL, body.text("taskId")))


def list_echo(ctx: Context, body: Body) -> Any:
    return listing(ctx, LOCAL, body, lambda task: True, _render)


def stop_echo(ctx: Context, body: Body) -> dict[str, Any]:
    stop(ctx, LOCAL, body)
    return {}


def prepare(home: Home, store: Store, task: TaskRow, workdir: Path) -> Prepared:
    return Prepared(job_spec(LOCAL.store_kind, LOCAL.engine, workdir, {"text": task.params["text"]}))


def run_job(params: dict[str, Any], progress: Path | None) -> dict[str, Any]:
    """The engine side, run in the job process: the text in capitals."""
    report = progress_writer(progress)
    report(0, 1)
    output = str(require(params, "text", "echo")).upper()
    report(1, 1)
    return {"output": output}


LOCAL = local_kinds.LocalKind(
    api=WIRE,
    id_prefix="echo",
    noun="echo task",
    actions={
        "CreateEchoTask": create_echo,
        "DescribeEchoTask": describe_echo,
        "DescribeEchoTasks": list_echo,
        "StopEchoTask": stop_echo,
    },
    prepare=prepare,
    engine=f"{__name__}:run_job",
)


# -- the stage type ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EchoFields:
    """The fields, as its ``schema`` gives them (runner.stages.fields builds them for plan and run)."""

    text: str
    from_file: str | None = None


class EchoStage(StageType[EchoFields, EchoFields]):
    """``{type: echo, text: ..., from_file?: ...}``: outputs ``echo``, the text in capitals."""

    name = "echo"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "text"],
        "properties": {
            "text": {"type": "string", "minLength": 1},
            "from_file": {
                "type": "string",
                "description": "A file whose content is part of the fingerprint.",
            },
        },
    }

    def checks(self, ctx: CheckContext, stage_id: str, body: Mapping[str, Any]) -> Iterator[Issue]:
        if not ctx.local:
            yield ctx.stage_issue(stage_id, "an echo stage runs on the local platform only.")

    def local_inputs(self, stage_id: str, spec: Mapping[str, Any], *, local: bool) -> Iterator[LocalInput]:
        written = spec.get("from_file")
        if isinstance(written, str) and not contains_expression(written):
            yield LocalInput(("from_file",), "file", written, f"echo file {written}")

    def plan(self, spec: EchoFields) -> PlanDetail:
        return PlanDetail(f"echo {spec.text!r}")

    def run(self, ctx: StageContext, spec: EchoFields) -> dict[str, Any]:
        info = ctx.run_task(ECHO, {"text": spec.text})
        ctx.log(f"the platform said {info.result['echo']!r}")
        return {"task_id": info.ref.task_id, "echo": info.result["echo"]}

    def report_entries(
        self, stage: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]
    ) -> Iterator[ReportEntry]:
        echo = stage["outputs"].get("echo")
        if echo:
            yield ReportEntry("evaluations", {"stage": stage["id"], "metrics": {}, "samples": {"echo": 1}})


@contextmanager
def installed() -> Iterator[None]:
    """The plugin registered (stage type, wire entry, local kind) until the block ends."""
    stage_types.register(ECHO_STAGE)
    wire_kinds.register(WIRE)
    local_kinds.register(LOCAL)
    try:
        yield
    finally:
        local_kinds.unregister(ECHO)
        wire_kinds.unregister(ECHO)
        stage_types.unregister(EchoStage.name)


ECHO_STAGE = EchoStage()
