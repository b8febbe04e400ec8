"""Where each model version came from: the lineage that ``qfrun report`` and ``qfrun status`` show.

Derived from the stage graph and the state only, through the stage-type registry, so no stage type is named
here: a stage whose type ``produces_model`` and that recorded a ``version_id`` is a node; its source is the
model-producing stage its fields name (``StageType.stage_refs``); how it was made is the stage's own plan line
(``StageType.plan`` of the fields it ran with); the task and the fingerprints of the files it read (a training
dataset, an imported folder) come from its record (``last_success.inputs``: the fingerprint material the
executor kept). The evaluations and services that used a version are the report rows of the stages that name
it (``StageType.report_entries``). So a fine-tuned model reads: base → fine-tuning task and dataset
fingerprint → version → compression → evaluations → service, and a plugin's model stage takes part unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from runner.errors import StageError
from runner.pipeline import dag
from runner.pipeline.spec import Pipeline, StageSpec
from runner.render.report_model import Gain, LineageNode, Scored, Served
from runner.stages import STAGE_TYPES
from runner.state.file import StateFile
from runner.state.records import StageRecord

SHORT_SHA = 12  # hex digits of a fingerprint shown to people (the JSON keeps all 64)


def build_lineage(pipeline: Pipeline, state: StateFile) -> list[LineageNode]:
    """Every model version the state records, in pipeline order, with its source and what used it."""
    order = dag.topological(pipeline.graph)
    records = {stage_id: state.stages.get(stage_id) for stage_id in order}
    rows = {stage_id: _row(pipeline.stages[stage_id], records[stage_id]) for stage_id in order}
    models = {
        stage_id: row
        for stage_id, row in rows.items()
        if STAGE_TYPES[row["type"]].produces_model and row["outputs"].get("version_id")
    }
    behind = {
        stage_id: _model_refs(pipeline.stages[stage_id], records[stage_id], models) for stage_id in order
    }
    evaluations: dict[str, list[Scored]] = {stage_id: [] for stage_id in models}
    services: dict[str, list[Served]] = {stage_id: [] for stage_id in models}
    for stage_id, row in rows.items():
        for entry in STAGE_TYPES[row["type"]].report_entries(row, rows):
            if entry.section == "evaluations":
                for series, metrics in _per_series(entry.row).items():
                    model = series if series in models else next(iter(behind.get(series, [])), None)
                    if model is not None:
                        evaluations[model].append({"stage": stage_id, "series": series, "metrics": metrics})
            elif entry.section == "services":
                for model in behind[stage_id][:1]:
                    services[model].append({"stage": stage_id, "url_suffix": str(entry.row["url_suffix"])})
    nodes: list[LineageNode] = []
    for stage_id, row in models.items():
        record = records[stage_id]
        inputs = _inputs(record)
        # the task that made the recorded version: the last success's (a new attempt may be under way)
        task = ((record.last_success or {}).get("task") or record.task or {}) if record else {}
        nodes.append(
            {
                "stage": stage_id,
                "type": row["type"],
                "version_id": str(row["outputs"]["version_id"]),
                "source": next(iter(behind[stage_id]), None),
                "made_by": _made_by(pipeline.stages[stage_id], inputs),
                "task": f"{task['kind']} task {task['task_id']}" if task.get("task_id") else None,
                "inputs": {name: str(value) for name, value in (inputs.get("files") or {}).items() if value},
                "evaluations": evaluations[stage_id],
                "services": services[stage_id],
            }
        )
    return nodes


def _row(stage: StageSpec, record: StageRecord | None) -> dict[str, Any]:
    """The part of a report row that ``StageType.report_entries`` reads."""
    outputs = (record.outputs or (record.last_success or {}).get("outputs") or {}) if record else {}
    return {"id": stage.id, "type": stage.type, "outputs": outputs, "upstream": list(stage.upstream)}


def _inputs(record: StageRecord | None) -> Mapping[str, Any]:
    """The fingerprint material of the stage's last success: the fields it ran with, the files it read."""
    inputs = ((record.last_success or {}).get("inputs") if record else None) or {}
    return inputs if isinstance(inputs, Mapping) else {}


def _fields(stage: StageSpec, record: StageRecord | None) -> Mapping[str, Any]:
    """The fields the stage last ran with (expressions resolved), else as the pipeline writes them."""
    fields = _inputs(record).get("fields")
    return fields if isinstance(fields, Mapping) else stage.fields


def _model_refs(stage: StageSpec, record: StageRecord | None, models: Mapping[str, Any]) -> list[str]:
    """The model versions a stage's fields name, in field order: its source, what it scores or serves."""
    found = [ref.stage_id for ref in STAGE_TYPES[stage.type].stage_refs(_fields(stage, record))]
    return [stage_id for stage_id in found if stage_id in models]


def _per_series(row: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """An evaluations row (metric -> series -> value) turned to series -> metric -> value."""
    by_series: dict[str, dict[str, float]] = {}
    for name, values in (row.get("metrics") or {}).items():
        for series, value in values.items():
            by_series.setdefault(series, {})[name] = value
    return by_series


def _made_by(stage: StageSpec, inputs: Mapping[str, Any]) -> str:
    fields = inputs.get("fields")
    stage_type = STAGE_TYPES[stage.type]
    try:
        shown = fields if isinstance(fields, Mapping) else stage.fields
        return stage_type.plan(stage_type.planned_fields(stage.id, shown)).summary
    except StageError:  # fields an older pipeline wrote, which this stage type no longer takes: say nothing
        return ""


def gains(pipeline: Pipeline, state: StateFile, nodes: Sequence[LineageNode]) -> list[Gain]:
    """Each model version's metrics beside its source's: from one evaluation that scored both side by side,
    or from two that scored them alike (the same dataset, the same settings and files, only the model
    differs; known from their fingerprint material)."""
    by_stage = {node["stage"]: node for node in nodes}
    found: list[Gain] = []
    known: dict[str, str | None] = {}

    def conditions(stage_id: str) -> str | None:  # each evaluation's once, however many pairs it is in
        if stage_id not in known:
            known[stage_id] = _conditions(pipeline.stages[stage_id], state.stages.get(stage_id))
        return known[stage_id]

    for node in nodes:
        source = by_stage.get(node["source"] or "")
        if source is None:
            continue
        for after in node["evaluations"]:
            for before in source["evaluations"]:
                if before["stage"] == after["stage"]:
                    where = after["stage"]
                elif (key := conditions(before["stage"])) is not None and key == conditions(after["stage"]):
                    where = f"{before['stage']} → {after['stage']}"
                else:
                    continue
                for metric in sorted(set(before["metrics"]) & set(after["metrics"])):
                    old, new = before["metrics"][metric], after["metrics"][metric]
                    found.append(
                        {
                            "model": node["stage"],
                            "source": source["stage"],
                            "evaluation": where,
                            "metric": metric,
                            "before": old,
                            "after": new,
                            "delta": new - old,
                        }
                    )
    return found


def _conditions(stage: StageSpec, record: StageRecord | None) -> str | None:
    """What an evaluation ran under, less the stages it names: its other fields and the files it read.
    None when it cannot be told: no recorded inputs, or no dataset of its own (it scores what infer stages
    made, whose datasets are theirs)."""
    inputs = _inputs(record)
    fields = inputs.get("fields")
    stage_type = STAGE_TYPES[stage.type]
    if not isinstance(fields, Mapping) or not any(True for _ in stage_type.dataset_refs(fields)):
        return None
    named = {ref.path[0] for ref in stage_type.stage_refs(fields)}
    kept = {key: value for key, value in fields.items() if key not in named}
    return json.dumps([stage.type, kept, inputs.get("files") or {}], sort_keys=True, default=str)


def short(sha: str) -> str:
    """A fingerprint as people read it; a value that is not a hex digest (``qianfan:ds-1``) stays whole."""
    hexadecimal = len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)
    return f"sha256 {sha[:SHORT_SHA]}" if hexadecimal else sha


def children(nodes: Sequence[LineageNode]) -> tuple[list[LineageNode], dict[str, list[LineageNode]]]:
    """The roots (no recorded source) and each node's derived versions, in pipeline order."""
    known = {node["stage"] for node in nodes}
    roots = [node for node in nodes if node["source"] not in known]
    below: dict[str, list[LineageNode]] = {}
    for node in nodes:
        if node["source"] in known:
            below.setdefault(str(node["source"]), []).append(node)
    return roots, below


def node_line(node: LineageNode) -> str:
    """``tuned: version amv-2 from base, fine-tune base on train (full), finetuning task task-1``."""
    parts = [f"version {node['version_id']}"]
    if node["source"]:
        parts[0] += f" from {node['source']}"
    parts += [text for text in (node["made_by"], node["task"]) if text]
    return f"{node['stage']}: " + ", ".join(parts)


def detail_lines(node: LineageNode) -> Iterator[str]:
    """What a node read, who scored it and who serves it, one line each."""
    if node["inputs"]:
        yield "read " + ", ".join(f"{name} ({short(sha)})" for name, sha in node["inputs"].items())
    for scored in node["evaluations"]:
        metrics = ", ".join(f"{name} {value:.4g}" for name, value in sorted(scored["metrics"].items()))
        via = f" (as {scored['series']})" if scored["series"] != node["stage"] else ""
        yield f"evaluated by {scored['stage']}{via}: {metrics}"
    for served in node["services"]:
        yield f"served by {served['stage']} (URL suffix {served['url_suffix']})"


def as_text(nodes: Sequence[LineageNode], indent: str = "  ") -> list[str]:
    """The lineage as an indented tree of plain lines (``qfrun status``)."""
    roots, below = children(nodes)
    lines: list[str] = []

    def walk(node: LineageNode, depth: int) -> None:
        pad = indent * (depth + 1)
        lines.append(pad + ("└─ " if depth else "") + node_line(node))
        lines.extend(pad + ("   " if depth else "") + "  " + line for line in detail_lines(node))
        for child in below.get(node["stage"], []):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return lines
