"""The report's model: what ``build_report`` makes and every renderer (Markdown, HTML, charts) reads.

TypedDicts rather than classes because the report *is* its JSON (report.json, kept and shared): the same
dictionaries go to ``json.dumps`` and to the templates, and a type checker holds both to these shapes.
Stage types add rows to ``evaluations``, ``models`` and ``services`` (``StageType.report_entries``).
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from runner.render.samples import SampleTable


class StageRow(TypedDict):
    id: str
    type: str
    line: int  # where the pipeline file declares the stage
    status: str
    attempt: int
    task_id: str | None
    console: str | None  # the platform console's page of its task (Qianfan only)
    started_at: str
    finished_at: str
    seconds: float | None
    error: str
    reason: str
    outputs: dict[str, Any]
    upstream: list[str]
    family: str | None  # the matrix it is a member of


class Evaluation(TypedDict):
    stage: str
    metrics: dict[str, dict[str, float]]  # metric -> model stage -> value
    samples: dict[str, Any]  # model stage -> sample count


class ModelRow(TypedDict):
    stage: str
    version_id: str
    size_bytes: int | None
    scheme: str | None
    source: str | None  # the model stage it was made from


class ServiceRow(TypedDict):
    stage: str
    url_suffix: str
    url: str
    replicas: int | None
    resource_type: str | None
    billing: str
    smoke_test: dict[str, Any] | None
    curl: str


class MetricHistory(TypedDict):
    """The metrics of every run the history keeps (runner.state.history), oldest first."""

    runs: list[str]  # run ids
    metrics: dict[str, dict[str, list[float | None]]]  # evaluation stage -> "metric of model" -> one per run


# Lineage (runner.render.lineage) and training curves (runner.render.training).


class Scored(TypedDict):
    """One evaluation of a model version: the evaluate stage and the model's metrics in it."""

    stage: str
    series: str  # the stage scored: the model stage itself, or an infer stage that ran it
    metrics: dict[str, float]


class Served(TypedDict):
    stage: str
    url_suffix: str


class LineageNode(TypedDict):
    stage: str
    type: str
    version_id: str
    source: str | None  # the model stage it was made from; None for a root (imported, named)
    made_by: str  # the stage's plan line: "fine-tune base on train (full, epochs=7)"
    task: str | None  # "finetuning task task-0tgmn4a7h4i6"
    inputs: dict[str, str]  # what it read, by the fingerprint's names: {"dataset train": sha256}
    evaluations: list[Scored]
    services: list[Served]


class Gain(TypedDict):
    """A metric of a model version beside the same metric of its source, in comparable evaluations."""

    model: str
    source: str
    evaluation: str  # "scores", or "base_eval → tuned_eval" when two stages scored the same dataset alike
    metric: str
    before: float
    after: float
    delta: float


class CurveSummary(TypedDict):
    first: float
    last: float
    min: float
    min_step: float


class Training(TypedDict):
    stage: str
    steps: float  # the last step logged
    curves: dict[str, list[list[float]]]  # "loss" / "eval_loss" -> [[step, value], ...] in step order
    summary: dict[str, CurveSummary]  # per curve


class Report(TypedDict):
    qfrun_report: int  # the format's version
    pipeline: str
    path: str
    platform: str
    generated_at: str
    run: dict[str, Any] | None
    stages: list[StageRow]
    edges: list[list[str]]
    families: dict[str, list[str]]
    evaluations: list[Evaluation]
    comparison: Evaluation
    models: list[ModelRow]
    services: list[ServiceRow]
    history: MetricHistory
    changes: dict[str, Any] | None  # since the previous run, as ``qfrun diff --format json`` writes it
    # absent from reports of earlier qfrun versions (a report.json kept from before)
    lineage: NotRequired[
        list[LineageNode]
    ]  # every model version: source, task, inputs, evaluations, services
    gains: NotRequired[list[Gain]]  # each derived model's metrics beside its source's
    training: NotRequired[list[Training]]  # the loss curves of stages that trained
    samples: NotRequired[
        list[SampleTable]
    ]  # each evaluate stage's per-sample records (runner.render.samples)
