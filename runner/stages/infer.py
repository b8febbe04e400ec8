"""The ``infer`` stage: batch inference of one model version over a dataset (``Model.batch_inference``).

Its result dataset can be scored later by an ``evaluate`` stage without inferring again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Never

from runner.errors import Issue
from runner.stages.base import (
    CheckContext,
    DatasetRef,
    PlanDetail,
    StageContext,
    StageRef,
    StageType,
    describe_params,
    inference_params,
    single_dataset,
    single_ref,
)
from runner.stages.registry import model_producers

if TYPE_CHECKING:
    from runner.stages.builtin_fields import InferFields
    from runner.stages.fields import Unresolved


class InferStage(StageType["InferFields[Unresolved]", "InferFields[Never]"]):
    name = "infer"
    fields_module = "runner.stages.builtin_fields"  # built on first use (StageType.fields_module)

    def stage_refs(self, spec: Mapping[str, Any]) -> Iterator[StageRef]:
        return single_ref(spec, "model", model_producers(), takes_endpoint=True)

    def dataset_refs(self, spec: Mapping[str, Any]) -> Iterator[DatasetRef]:
        return single_dataset(spec, version=False)  # batch inference reads BOS, not a dataset version [B2]

    def checks(self, ctx: CheckContext, stage_id: str, body: Mapping[str, Any]) -> Iterator[Issue]:
        """Batch inference on Qianfan reads its input from BOS [B2]: a console dataset needs the folder."""
        named = body.get("dataset")
        dataset = ctx.datasets.get(named) if isinstance(named, str) else None
        if not ctx.local and dataset is not None and dataset.path is None and "input_bos_uri" not in body:
            yield ctx.stage_issue(
                stage_id,
                f"batch inference on Qianfan reads its input from BOS; the dataset {dataset.id!r} is a "
                "console dataset, so add input_bos_uri (the BOS folder of its {id, query} lines), or use a "
                "local file, which qfrun uploads.",
            )

    def plan(self, spec: InferFields[Unresolved]) -> PlanDetail:
        params = inference_params(spec.params)
        extra = f" ({describe_params(params)})" if params else ""
        return PlanDetail(f"batch inference of {spec.model} on dataset {spec.dataset}{extra}")

    def run(self, ctx: StageContext, spec: InferFields[Never]) -> dict[str, Any]:
        from runner.platform.protocol import TaskKind  # the run's: validate and plan do without

        upstream = ctx.upstream_outputs(spec.model)
        version_id = str(upstream["version_id"]) if "version_id" in upstream else None
        dataset = ctx.dataset(spec.dataset, version=False)
        params: dict[str, Any] = {
            "dataset_id": dataset.dataset_id,
            "inference_params": inference_params(spec.params),
        }
        if version_id is None:  # a preset model, named by its endpoint [B2]
            params["endpoint"] = upstream["endpoint"]
        else:
            params["model_version_id"] = version_id
        given = {
            "batch_size": spec.batch_size,
            "input_bos_uri": spec.input_bos_uri,
            "output_bos_uri": spec.output_bos_uri,
        }
        params.update((key, value) for key, value in given.items() if value is not None)
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
        if outputs.get("output_bos_uri") and outputs.get("output_dir"):
            self._read_back(ctx, outputs)
        return outputs

    def _read_back(self, ctx: StageContext, outputs: dict[str, Any]) -> None:
        """Read the results back from BOS [B5]: their count is the stage's ``rows`` (Qianfan's describe
        names no total), and a copy lands in ``.qfrun/results/`` for review beside the pipeline."""
        results = ctx.platform.batch_results(str(outputs["output_bos_uri"]), str(outputs["output_dir"]))
        if results is None:
            ctx.log(f"the results are too large to copy here; they are in {outputs['output_bos_uri']}")
            return
        outputs["rows"] = len(results)
        target = Path(ctx.local_path(f".qfrun/results/{ctx.stage_id}-{outputs['output_dir']}.jsonl"))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        partial.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in results), "utf-8")
        partial.replace(target)
        outputs["results_file"] = str(target.relative_to(Path(ctx.local_path("."))))
        ctx.log(f"read back {len(results)} results into {outputs['results_file']}")
