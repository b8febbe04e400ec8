"""The ``model`` stage: name an existing model version, import a local Hugging Face folder, name one of
Qianfan's preset models by its endpoint, or publish a finished fine-tuning task (``train_task_id``).

It creates no platform task: a version id is looked up (which also completes its model set id), an import is
idempotent on the platform side (same folder content and name give the same version), a preset endpoint
is passed on as it is (batch inference takes it instead of a version id [B2]), and a training task is
published with CreateCustomModel (``sourceType: Train`` [M5]) once per task and step (``publish``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from runner.errors import Issue, StageError
from runner.pipeline.expr import contains_expression
from runner.stages.base import CheckContext, LocalInput, PlanDetail, ReportEntry, StageContext, StageType
from runner.stages.registry import model_producers

if TYPE_CHECKING:
    from runner.platform.protocol import ModelVersion
    from runner.stages.builtin_fields import ModelFields


class ModelStage(StageType["ModelFields", "ModelFields"]):
    name = "model"
    fields_module = "runner.stages.builtin_fields"  # built on first use (StageType.fields_module)
    produces_model = True

    def checks(self, ctx: CheckContext, stage_id: str, body: Mapping[str, Any]) -> Iterator[Issue]:
        """The local platform has no preset models. (A folder to import goes to Qianfan through BOS: the
        platform client's import_through_bos.)"""
        if "checkpoint_step" in body and "train_task_id" not in body:
            yield ctx.issue(
                ("stages", stage_id, "checkpoint_step"),
                "checkpoint_step picks a step of a training task, so it goes with train_task_id.",
            )
        if "name" in body and not ("import" in body or "train_task_id" in body):
            yield ctx.issue(
                ("stages", stage_id, "name"),
                "name is the model an import or a published training task goes into; a version_id or an "
                "endpoint is named as it is.",
            )
        if ctx.local and "endpoint" in body:
            yield ctx.issue(
                ("stages", stage_id, "endpoint"),
                "preset model endpoints exist on Qianfan only; the local platform runs model versions "
                "(import: or version_id:).",
            )

    def makes_model_version(self, spec: Mapping[str, Any]) -> bool:
        # an imported folder or a published training task; a named version (or a preset endpoint) is not ours
        return "import" in spec or "train_task_id" in spec

    def local_inputs(self, stage_id: str, spec: Mapping[str, Any], *, local: bool) -> Iterator[LocalInput]:
        folder = spec.get("import")
        if isinstance(folder, str) and not contains_expression(folder):
            yield LocalInput(("import",), "folder", folder, f"model folder {folder}")

    def plan(self, spec: ModelFields) -> PlanDetail:
        if spec.import_ is not None:
            return PlanDetail(f"import model folder {spec.import_}")
        if spec.endpoint is not None:
            return PlanDetail(f"use the preset model endpoint {spec.endpoint}")
        if spec.train_task_id is not None:
            step = spec.checkpoint_step
            which = f"step {step}" if step is not None else "its final step"
            return PlanDetail(f"publish fine-tuning task {spec.train_task_id} ({which}) as a model version")
        return PlanDetail(f"use model version {spec.version_id}")

    def report_entries(
        self, stage: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]
    ) -> Iterator[ReportEntry]:
        return model_entry(stage, by_id, default_scheme="source")

    def run(self, ctx: StageContext, spec: ModelFields) -> dict[str, Any]:
        if spec.endpoint is not None:
            return {"endpoint": spec.endpoint, "name": spec.endpoint}
        if spec.import_ is not None:
            name = spec.name or ctx.stage_id
            version = ctx.platform.import_model(name=name, path=ctx.local_path(spec.import_))
            ctx.log(f"imported {spec.import_} as model version {version.version_id}")
        elif spec.train_task_id is not None:
            version = publish(
                ctx,
                spec.train_task_id,
                base=None,
                model_set_name=spec.name or "",
                checkpoint_step=spec.checkpoint_step,
            )
        elif spec.version_id is not None:
            version = ctx.platform.describe_model_version(spec.version_id)
        else:  # the schema's oneOf makes this unreachable for a validated pipeline
            raise StageError(f"stages.{ctx.stage_id}: name version_id, import, train_task_id or endpoint.")
        return {
            "version_id": version.version_id,
            "model_id": version.model_id,
            "name": version.name,
            "size_bytes": version.size_bytes,
        }


def publish(
    ctx: StageContext,
    task_id: str,
    *,
    base: ModelVersion | None,
    model_set_name: str = "",
    checkpoint_step: int | None = None,
) -> ModelVersion:
    """Publish a finished fine-tuning task as a model version (CreateCustomModel, sourceType Train [M5]),
    exactly once per task and step: into the base's own model when it is one of the user's, else into the
    model named ``model_set_name`` (by default after the stage), made once when it does not exist (a preset
    base's model set is Qianfan's, not the user's)."""
    if base is not None and base.source != "platformpreset":
        model_set_id = base.model_id
    else:
        model_set_id = ctx.platform.ensure_model_set(model_set_name or f"qfrun-{ctx.stage_id}")
    version = ctx.platform.publish_trained(
        task_id, model_set_id=model_set_id, checkpoint_step=checkpoint_step
    )
    ctx.log(f"published fine-tuning task {task_id} as model version {version.version_id}")
    return version


def model_entry(
    stage: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]], *, default_scheme: str | None = None
) -> Iterator[ReportEntry]:
    """The report's row for a stage that produced a model version: its size, scheme and source model."""
    outputs = stage["outputs"]
    if not outputs.get("version_id"):
        return
    producers = model_producers()
    source = next((u for u in stage["upstream"] if by_id[u]["type"] in producers), None)
    yield ReportEntry(
        "models",
        {
            "stage": stage["id"],
            "version_id": outputs["version_id"],
            "size_bytes": outputs.get("size_bytes"),
            "scheme": outputs.get("scheme") or default_scheme,
            "source": source,
        },
    )
