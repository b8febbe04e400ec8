"""The report's model: what ``build_report`` makes and every renderer (Markdown, HTML, charts) reads.

TypedDicts rather than classes because the report *is* its JSON (report.json, kept and shared): the same
dictionaries go to ``json.dumps`` and to the templates, and a type checker holds both to these shapes.
Stage types add rows to ``evaluations``, ``models`` and ``services`` (``StageType.report_entries``).
"""

from __future__ import annotations

from typing import Any, TypedDict

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
    samples: list[SampleTable]  # each evaluate stage's per-sample records (runner.render.samples)
