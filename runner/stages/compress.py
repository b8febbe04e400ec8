"""The ``compress`` stage: quantize (INT8-PTQ, W8A16C16, W4A16C16) or sparsify a model version.

The platform writes a new model version; its id, size and scheme are the stage's outputs, with the source
version for lineage.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Never

from runner.stages.base import (
    DatasetRef,
    PlanDetail,
    ReportEntry,
    StageContext,
    StageRef,
    StageType,
    model_version_of,
    single_dataset,
    single_ref,
)
from runner.stages.model import model_entry
from runner.stages.registry import model_producers

if TYPE_CHECKING:
    from runner.stages.builtin_fields import CompressFields
    from runner.stages.fields import Unresolved

# The pipeline spells strategies in lower case; the platform API as Qianfan's ModelCompStrategy does.
STRATEGIES = {"quantization": "Quantization", "sparsity": "Sparsity"}


class CompressStage(StageType["CompressFields[Unresolved]", "CompressFields[Never]"]):
    name = "compress"
    fields_module = "runner.stages.builtin_fields"  # built on first use (StageType.fields_module)
    produces_model = True

    def stage_refs(self, spec: Mapping[str, Any]) -> Iterator[StageRef]:
        return single_ref(spec, "model", model_producers())

    def dataset_refs(self, spec: Mapping[str, Any]) -> Iterator[DatasetRef]:
        return single_dataset(spec)

    def plan(self, spec: CompressFields[Unresolved]) -> PlanDetail:
        how = spec.strategy if spec.strategy == "sparsity" else f"quantization {spec.weight}"
        calib = f", calibrated on {spec.dataset}" if spec.dataset else ""
        return PlanDetail(f"compress {spec.model} by {how}{calib}")

    def report_entries(
        self, stage: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]
    ) -> Iterator[ReportEntry]:
        return model_entry(stage, by_id)

    def run(self, ctx: StageContext, spec: CompressFields[Never]) -> dict[str, Any]:
        from runner.platform.protocol import TaskKind  # the run's: validate and plan do without

        source = model_version_of(ctx, spec.model)
        params: dict[str, Any] = {
            "model_version_id": source,
            "strategy": STRATEGIES[spec.strategy],
            "weight": spec.weight,
            "dataset_id": ctx.dataset(spec.dataset).dataset_id if spec.dataset else None,
        }
        if spec.name:
            params["name"] = spec.name
        info = ctx.run_task(TaskKind.COMPRESSION, params)
        result = info.result
        return {
            "task_id": info.ref.task_id,
            "version_id": result["version_id"],
            "model_id": result.get("model_id"),
            "size_bytes": result.get("size_bytes"),
            "scheme": result.get("scheme"),
            "source_version_id": source,
        }
