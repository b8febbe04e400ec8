"""The ``finetune`` stage: supervised fine-tuning of a model version on a pipeline dataset, full or LoRA.

It submits one fine-tuning task (exactly once, like every create: the executor records its id before it
waits) whose result is a new model version of the base model's model set, so any later stage (infer,
evaluate, compress, deploy) takes it like any other model. The outputs keep the lineage: the base version,
the task, the training dataset's id, the loss curve and the throughput.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from runner.errors import Issue
from runner.platform.wire.finetuning import FINETUNING
from runner.stages.base import (
    CheckContext,
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

# The pipeline spells the method in lower case; the platform's parameterScale [F2] as documented.
METHODS = {"full": "FullFineTuning", "lora": "LoRA"}
# The pipeline's hyper-parameter names -> the documented hyperParameterConfig keys [F2][F6].
HYPER_PARAMETERS = {
    "epochs": "epoch",
    "learning_rate": "learningRate",
    "batch_size": "batchSize",
    "max_seq_len": "maxSeqLen",
    "lora_rank": "loraRank",
    "lora_alpha": "loraAlpha",
    "lora_dropout": "loraDropout",
    "warmup_ratio": "warmupRatio",
    "weight_decay": "weightDecay",
    "scheduler": "schedulerName",
    "logging_steps": "loggingSteps",
    "checkpoint_interval": "saveStep",
    "seed": "seed",
    "max_steps": "maxSteps",  # the local platform's: a bounded run (CI, a quick look)
}


def hyper_parameters(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The stage's hyper-parameters under the platform's names, in a stable order."""
    given = spec.get("hyperparameters") or {}
    return {HYPER_PARAMETERS[key]: given[key] for key in sorted(given)}


class FinetuneStage(StageType):
    name = "finetune"
    produces_model = True

    def stage_refs(self, spec: Mapping[str, Any]) -> Iterator[StageRef]:
        return single_ref(spec, "model", model_producers())

    def dataset_refs(self, spec: Mapping[str, Any]) -> Iterator[DatasetRef]:
        yield from single_dataset(spec)
        yield from single_dataset(spec, "validation_dataset")

    def checks(self, ctx: CheckContext, stage_id: str, body: Mapping[str, Any]) -> Iterator[Issue]:
        given = body.get("hyperparameters")
        if isinstance(given, Mapping):
            if body.get("method", "lora") != "lora":
                for key in ("lora_rank", "lora_alpha", "lora_dropout"):
                    if key in given:
                        yield ctx.issue(
                            ("stages", stage_id, "hyperparameters", key),
                            f"{key} applies to method: lora only.",
                        )
        if not ctx.local:
            # Qianfan runs a task inside a job (CreateFineTuningJob [F1]) and publishes its result with
            # CreateCustomModel (sourceType Train [M5]): two more creates the client does not make yet, so
            # the stage is refused here rather than failing after a paid training run.
            yield ctx.stage_issue(
                stage_id,
                "a finetune stage runs on the local platform only for now; on Qianfan train in the console "
                "and name the published version with a model stage's version_id.",
            )

    def plan(self, spec: Mapping[str, Any]) -> PlanDetail:
        hyper = spec.get("hyperparameters") or {}
        shown = ", ".join(f"{key}={hyper[key]}" for key in sorted(hyper))
        method = spec.get("method", "lora")
        return PlanDetail(
            f"fine-tune {spec['model']} on {spec['dataset']} ({method}{', ' + shown if shown else ''})"
        )

    def report_entries(
        self, stage: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]
    ) -> Iterator[ReportEntry]:
        return model_entry(stage, by_id, default_scheme="fine-tuned")

    def run(self, ctx: StageContext, spec: Mapping[str, Any]) -> dict[str, Any]:
        base = model_version_of(ctx, spec["model"])
        dataset = ctx.dataset(spec["dataset"])
        params: dict[str, Any] = {
            "model_version_id": base,
            "method": METHODS[spec.get("method", "lora")],
            "hyper_parameters": hyper_parameters(spec),
            "dataset_id": dataset.dataset_id,
        }
        if spec.get("validation_dataset"):
            params["validation_dataset_id"] = ctx.dataset(spec["validation_dataset"]).dataset_id
        info = ctx.run_task(FINETUNING, params)
        result = info.result
        curve = result.get("loss_curve") or []
        if curve:
            ctx.log(f"trained {curve[-1]['step']} steps, loss {curve[0]['loss']} -> {curve[-1]['loss']}")
        return {
            "task_id": info.ref.task_id,
            "job_id": result.get("job_id"),
            "version_id": result.get("version_id"),
            "model_id": result.get("model_id"),
            "base_version_id": base,
            "dataset_id": dataset.dataset_id,
            "metrics": result.get("metrics") or {},
            "loss_curve": curve,
        }
