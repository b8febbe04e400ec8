"""The ``model`` stage: name an existing model version, import a local Hugging Face folder, or name one of
Qianfan's preset models by its endpoint.

It creates no platform task: a version id is looked up (which also completes its model set id), an import is
idempotent on the platform side (same folder content and name give the same version), and a preset endpoint
is passed on as it is (batch inference takes it instead of a version id [B2]).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from runner.errors import Issue
from runner.pipeline.expr import contains_expression
from runner.stages.base import CheckContext, LocalInput, PlanDetail, StageContext, StageType


class ModelStage(StageType):
    name = "model"
    produces_model = True

    def checks(self, ctx: CheckContext, stage_id: str, body: Mapping[str, Any]) -> Iterator[Issue]:
        """Qianfan reads models from BOS storage [B2]; the local platform has no preset models."""
        if not ctx.local and "import" in body:
            yield ctx.issue(
                ("stages", stage_id, "import"),
                "importing a local folder works on the local platform only; on Qianfan name an existing "
                "model version with version_id.",
            )
        if ctx.local and "endpoint" in body:
            yield ctx.issue(
                ("stages", stage_id, "endpoint"),
                "preset model endpoints exist on Qianfan only; the local platform runs model versions "
                "(import: or version_id:).",
            )

    def local_inputs(self, stage_id: str, spec: Mapping[str, Any], *, local: bool) -> Iterator[LocalInput]:
        folder = spec.get("import")
        if isinstance(folder, str) and not contains_expression(folder):
            yield LocalInput(("import",), "folder", folder, f"model folder {folder}")

    def plan(self, spec: Mapping[str, Any]) -> PlanDetail:
        if "import" in spec:
            return PlanDetail(f"import model folder {spec['import']}")
        if "endpoint" in spec:
            return PlanDetail(f"use the preset model endpoint {spec['endpoint']}")
        return PlanDetail(f"use model version {spec['version_id']}")

    def run(self, ctx: StageContext, spec: Mapping[str, Any]) -> dict[str, Any]:
        if "endpoint" in spec:
            return {"endpoint": str(spec["endpoint"]), "name": str(spec["endpoint"])}
        if "import" in spec:
            name = str(spec.get("name") or ctx.stage_id)
            version = ctx.platform.import_model(name=name, path=ctx.local_path(spec["import"]))
            ctx.log(f"imported {spec['import']} as model version {version.version_id}")
        else:
            version = ctx.platform.describe_model_version(str(spec["version_id"]))
        return {
            "version_id": version.version_id,
            "model_id": version.model_id,
            "name": version.name,
            "size_bytes": version.size_bytes,
        }
