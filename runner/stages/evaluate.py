"""The ``evaluate`` stage: score model versions on a dataset (``EvaluationManager.eval``).

Either it names ``models`` and a ``dataset`` (the platform infers, then scores), or it names earlier ``infer``
stages whose result datasets are scored without inferring again. Evaluators are rule metrics, an LLM judge
(another model stage, or a deployed service), custom ``module:function`` scorers and people (``manual``,
see runner.stages.manual).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Never

from runner.benchmarks import (
    MAX_BENCHMARK_BYTES,
    BenchmarkError,
    built_in_sha256,
    built_in_text,
    is_path,
    parse_benchmark,
)
from runner.errors import Issue, StageError
from runner.files import MAX_MODULE_BYTES, read_regular
from runner.pipeline.expr import contains_expression
from runner.stages import fields
from runner.stages.base import (
    CheckContext,
    DatasetRef,
    LocalInput,
    PlanDetail,
    ReportEntry,
    StageContext,
    StageRef,
    StageType,
    describe_params,
    inference_params,
    join_ids,
    list_refs,
    model_version_of,
    single_dataset,
)
from runner.stages.evaluate_checks import evaluator_issues, qianfan_issues
from runner.stages.manual import sheet_path
from runner.stages.registry import chat_servers, model_producers

if TYPE_CHECKING:
    from runner.stages.builtin_fields import EvaluateFields, Evaluator
    from runner.stages.fields import Unresolved


class EvaluateStage(StageType["EvaluateFields[Unresolved]", "EvaluateFields[Never]"]):
    name = "evaluate"
    fields_module = "runner.stages.builtin_fields"  # built on first use (StageType.fields_module)

    def stage_refs(self, spec: Mapping[str, Any]) -> Iterator[StageRef]:
        yield from list_refs(spec, "models", model_producers())
        yield from list_refs(spec, "infer", frozenset({"infer"}))
        for index, evaluator in enumerate(_evaluators(spec)):
            judge = evaluator.get("judge") if isinstance(evaluator, Mapping) else None
            if isinstance(judge, str) and not contains_expression(judge):
                yield StageRef(("evaluators", index, "judge"), judge, model_producers() | chat_servers())

    def dataset_refs(self, spec: Mapping[str, Any]) -> Iterator[DatasetRef]:
        return single_dataset(spec)

    def checks(self, ctx: CheckContext, stage_id: str, body: Mapping[str, Any]) -> Iterator[Issue]:
        yield from evaluator_issues(ctx, stage_id, body)
        if not ctx.local:
            yield from qianfan_issues(ctx, stage_id, body)

    def local_inputs(self, stage_id: str, spec: Mapping[str, Any], *, local: bool) -> Iterator[LocalInput]:
        """Each benchmark file of the repository; on the local platform also each manual evaluator's scoring
        sheet and each custom scorer's module (Qianfan scores in its console and runs no custom code: its
        checks say so)."""
        for index, number, name in benchmark_names(spec):
            if is_path(name):
                yield LocalInput(
                    ("evaluators", index, "benchmarks", number), "file", name, f"benchmark {name}"
                )
        if not local:
            return
        for index, evaluator in enumerate(_evaluators(spec)):
            if isinstance(evaluator, Mapping) and evaluator.get("kind") == "manual":
                written = evaluator.get("sheet")
                yield LocalInput(
                    ("evaluators", index, "sheet") if isinstance(written, str) else ("evaluators", index),
                    "sheet",
                    sheet_path(written if isinstance(written, str) else None, stage_id),
                    f"scoring sheet of evaluators[{index}]",
                )
        for index, function in custom_functions(spec):
            yield LocalInput(
                ("evaluators", index, "function"),
                "code",
                custom_module_path(function),
                f"custom evaluator {function}",
            )

    def packaged_inputs(self, spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        """Each built-in benchmark's content: a qfrun upgrade that changes one re-runs the stage."""
        for name in sorted({name for _, _, name in benchmark_names(spec) if not is_path(name)}):
            digest = built_in_sha256(name)
            if digest is not None:
                yield f"built-in benchmark {name}", digest

    def plan(self, spec: EvaluateFields[Unresolved]) -> PlanDetail:
        scorers = ", ".join(describe_evaluator(e) for e in spec.evaluators)
        if spec.infer:
            return PlanDetail(f"score the results of {join_ids(spec.infer)} with {scorers}")
        params = inference_params(spec.params)
        extra = f" ({describe_params(params)})" if params else ""
        return PlanDetail(f"evaluate {join_ids(spec.models)} on dataset {spec.dataset}{extra} with {scorers}")

    def report_entries(
        self, stage: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]
    ) -> Iterator[ReportEntry]:
        """Each model's numeric metrics and sample count, keyed by the stage that produced the model."""
        models = stage["outputs"].get("models")
        if not isinstance(models, Mapping) or not models:
            return
        metrics: dict[str, dict[str, float]] = {}
        for model_stage, result in models.items():
            for name, value in (result.get("metrics") or {}).items():
                if isinstance(value, int | float):
                    metrics.setdefault(name, {})[model_stage] = float(value)
        samples = {model_stage: result.get("samples") for model_stage, result in models.items()}
        yield ReportEntry("evaluations", {"stage": stage["id"], "metrics": metrics, "samples": samples})

    def run(self, ctx: StageContext, spec: EvaluateFields[Never]) -> dict[str, Any]:
        # The run's own: the platform protocol, sample files and scoring sheets; validate does without.
        from runner.platform.protocol import TaskKind
        from runner.stages.eval_samples import keep_samples
        from runner.stages.manual import ManualScoring

        # version id -> the stage that produced it, so metrics come back keyed by what the user wrote
        by_version: dict[str, str] = {}
        params: dict[str, Any] = {"inference_params": inference_params(spec.params)}
        if spec.infer:
            results: dict[str, str] = {}
            for stage_id in spec.infer:
                outputs = ctx.upstream_outputs(stage_id)
                by_version[str(outputs["model_version_id"])] = stage_id
                results[str(outputs["model_version_id"])] = str(outputs["result_dataset_id"])
            params["result_dataset_ids"] = results
            params["dataset_id"] = None
        else:
            assert spec.dataset is not None  # the schema's oneOf: models go with a dataset
            for stage_id in spec.models:
                by_version[model_version_of(ctx, stage_id)] = stage_id
            params["dataset_id"] = ctx.dataset(spec.dataset).dataset_id
        params["model_version_ids"] = list(by_version)
        params["prompt_template"] = spec.prompt_template
        params["evaluators"] = [resolve_evaluator(ctx, e) for e in spec.evaluators]
        manual = next((e for e in spec.evaluators if e.kind == "manual"), None)
        on_waiting = ManualScoring(ctx, manual, by_version) if manual is not None else None
        info = ctx.run_task(TaskKind.EVALUATION, params, on_waiting)
        per_model = info.result.get("models", {})
        models = {
            stage_id: {
                "version_id": version_id,
                "metrics": dict(per_model.get(version_id, {}).get("metrics", {})),
                "samples": per_model.get(version_id, {}).get("samples"),
            }
            for version_id, stage_id in by_version.items()
        }
        # With one model (the common case) its metrics are the stage's, so gates read
        # ``stages.x.outputs.metrics.accuracy``; with several, ``outputs.models.<stage>.metrics``.
        first = next(iter(models.values()))
        result: dict[str, Any] = {
            "task_id": info.ref.task_id,
            "metrics": first["metrics"] if len(models) == 1 else {},
            "samples": first["samples"] if len(models) == 1 else None,
            "models": models,
        }
        result.update(keep_samples(ctx, info.ref, by_version))  # the per-sample records the report shows
        return result


def _evaluators(spec: Mapping[str, Any]) -> list[Any]:
    """The ``evaluators`` list as written; a value of another type is a schema issue, read as none."""
    evaluators = spec.get("evaluators")
    return evaluators if isinstance(evaluators, list) else []


def custom_functions(spec: Mapping[str, Any]) -> Iterator[tuple[int, str]]:
    """The ``module:function`` of each custom evaluator, with its index under ``evaluators``."""
    evaluators = spec.get("evaluators")
    for index, evaluator in enumerate(evaluators if isinstance(evaluators, list) else []):
        if not isinstance(evaluator, Mapping):
            continue  # a schema issue already
        function = evaluator.get("function")
        if evaluator.get("kind") == "custom" and isinstance(function, str) and ":" in function:
            yield index, function


def benchmark_names(spec: Mapping[str, Any]) -> Iterator[tuple[int, int, str]]:
    """Each benchmark an opencompass evaluator names (a built-in name or a repository file): its evaluator's
    index, its own index under ``benchmarks``, and the name as written; expressions yet to resolve are
    skipped."""
    for index, evaluator in enumerate(_evaluators(spec)):
        if not isinstance(evaluator, Mapping) or evaluator.get("kind") != "opencompass":
            continue
        listed = evaluator.get("benchmarks")
        for number, name in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(name, str) and not contains_expression(name):
                yield index, number, name


def custom_module_path(function: str) -> str:
    """The file a custom evaluator's ``module:function`` names, relative to the pipeline's folder: code runs
    only from the pipeline's repository, never from whatever a module name finds on Python's path."""
    return function.partition(":")[0].replace(".", "/") + ".py"


def describe_evaluator(evaluator: Evaluator[Unresolved]) -> str:
    if evaluator.kind == "rule":
        names = [name for name, on in evaluator.switches.items() if on]
        return "rules (" + ", ".join(names) + ")"
    if evaluator.kind == "llm_judge":
        return f"an LLM judge ({evaluator.judge})"
    if evaluator.kind == "opencompass":
        return f"OpenCompass benchmarks ({', '.join(evaluator.benchmarks)})"
    if evaluator.kind == "manual":
        names = ["satisfaction", *(d.name for d in evaluator.dimensions)]
        return f"people ({', '.join(names)}; scoring sheet {sheet_path(evaluator.sheet, '<stage>')})"
    return f"custom {evaluator.function} ({custom_module_path(evaluator.function)})"


def resolve_evaluator(ctx: StageContext, evaluator: Evaluator[Never]) -> dict[str, Any]:
    """An evaluator as the platform takes it: a judge stage becomes a version id or a service endpoint,
    a custom scorer carries its module's source, read from the pipeline's repository (the stage's
    fingerprint already confined the path and hashed this file: runner.inputs)."""
    resolved: dict[str, Any] = fields.written(evaluator)
    resolved.pop("sheet", None)  # where the sheet lives is the runner's business, not the platform's
    if evaluator.kind == "custom":
        module = Path(ctx.local_path(custom_module_path(evaluator.function)))
        resolved["source"] = read_regular(module, MAX_MODULE_BYTES).decode("utf-8")
    if evaluator.kind == "opencompass":
        resolved["benchmarks"] = [_benchmark(ctx, name) for name in evaluator.benchmarks]
    if evaluator.kind == "llm_judge":
        outputs = ctx.upstream_outputs(evaluator.judge)
        del resolved["judge"]
        # A deploy stage's service is called by its URL suffix (``endpoint`` in older state files).
        suffix = outputs.get("url_suffix") or outputs.get("endpoint")
        if suffix:
            resolved["judge_endpoint"] = suffix
        else:
            resolved["judge_version_id"] = outputs["version_id"]
    return resolved


def _benchmark(ctx: StageContext, name: str) -> dict[str, str]:
    """A benchmark as the task carries it, ``{source, text}``: a built-in one from qfrun's package, a file of
    the repository (confined and hashed at validate) as it is; checked here, so a broken file fails the stage
    with its field named before any task is created."""
    try:
        text = (
            read_regular(Path(ctx.local_path(name)), MAX_BENCHMARK_BYTES).decode("utf-8")
            if is_path(name)
            else built_in_text(name)
        )
        parse_benchmark(text, name)
    except UnicodeDecodeError:
        raise StageError(f"The benchmark file {name} is not UTF-8 text.") from None
    except BenchmarkError as error:
        raise StageError(str(error)) from None
    return {"source": name, "text": text}
