"""The ``model`` stage: name an existing model version, import a local Hugging Face folder, or name one of
Qianfan's preset models by its endpoint.

It creates no platform task: a version id is looked up (which also completes its model set id), an import is
idempotent on the platform side (same folder content and name give the same version), and a preset endpoint
is passed on as it is (batch inference takes it instead of a version id [B2]).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from runner.stages.base import DatasetRef, PlanDetail, StageContext, StageRef


class ModelStage:
    name = "model"

    def stage_refs(self, spec: Mapping[str, Any]) -> Iterator[StageRef]:
        return iter(())

    def dataset_refs(self, spec: Mapping[str, Any]) -> Iterator[DatasetRef]:
        return iter(())

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
