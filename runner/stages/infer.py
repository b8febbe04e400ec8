"""The ``infer`` stage: batch inference of one model version over a dataset (``Model.batch_inference``).

Its result dataset can be scored later by an ``evaluate`` stage without inferring again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from runner.platform.protocol import TaskKind
from runner.stages.base import (
    MODEL_PRODUCERS,
    DatasetRef,
    PlanDetail,
    StageContext,
    StageRef,
    describe_params,
    inference_params,
    single_dataset,
    single_ref,
)


class InferStage:
    name = "infer"

    def stage_refs(self, spec: Mapping[str, Any]) -> Iterator[StageRef]:
        return single_ref(spec, "model", MODEL_PRODUCERS)

    def dataset_refs(self, spec: Mapping[str, Any]) -> Iterator[DatasetRef]:
        return single_dataset(spec)

    def plan(self, spec: Mapping[str, Any]) -> PlanDetail:
        params = inference_params(spec)
        extra = f" ({describe_params(params)})" if params else ""
        return PlanDetail(f"batch inference of {spec['model']} on dataset {spec['dataset']}{extra}")

    def run(self, ctx: StageContext, spec: Mapping[str, Any]) -> dict[str, Any]:
        upstream = ctx.upstream_outputs(spec["model"])
        version_id = str(upstream["version_id"]) if "version_id" in upstream else None
        dataset = ctx.dataset(spec["dataset"])
        params: dict[str, Any] = {
            "dataset_id": dataset.dataset_id,
            "inference_params": inference_params(spec),
        }
        if version_id is None:  # a preset model, named by its endpoint [B2]
            params["endpoint"] = upstream["endpoint"]
        else:
            params["model_version_id"] = version_id
        for key in ("batch_size", "input_bos_uri", "output_bos_uri"):
            if key in spec:
                params[key] = spec[key]
        if "input_bos_uri" not in params and dataset.batch_input_uri:
            params["input_bos_uri"] = dataset.batch_input_uri  # the platform fills in its output folder
        info = ctx.run_task(TaskKind.BATCH_INFERENCE, params)
        outputs = {
            "task_id": info.ref.task_id,
            # both write the results to BOS; the local platform also registers them as a dataset
            "result_dataset_id": info.result.get("result_dataset_id"),
            "rows": info.result.get("rows", info.rows_total),
            "model_version_id": version_id,
        }
        for key in ("output_bos_uri", "output_dir"):
            if info.result.get(key):
                outputs[key] = info.result[key]
        return outputs
