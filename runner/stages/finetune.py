"""The ``finetune`` stage: supervised fine-tuning of a model version on a pipeline dataset, full or LoRA.

It submits one fine-tuning task (exactly once, like every create: the executor records its id before it
waits) whose result is a new model version of the base model's model set, so any later stage (infer,
evaluate, compress, deploy) takes it like any other model. The outputs keep the lineage: the base version,
the task, the training dataset's id, the loss curve and the throughput.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from runner.errors import Issue
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
from runner.stages.fields import written
from runner.stages.model import model_entry, publish
from runner.stages.registry import model_producers

if TYPE_CHECKING:
    from runner.stages.builtin_fields import FinetuneFields, HyperParameters

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


# Neither the fine-tuning pages [F1]-[F4] nor any pricing page the search tools hold gives Qianfan's price
# basis for training, so plan says so instead of guessing a figure.
TRAINING_COST = (
    "not known: no captured Qianfan page gives a training price; see the console's estimate before it starts"
)


def hyper_parameters(given: HyperParameters) -> dict[str, Any]:
    """The hyper-parameters given, under the platform's names, in a stable order."""
    values = written(given)
    return {HYPER_PARAMETERS[key]: values[key] for key in sorted(values)}


class FinetuneStage(StageType["FinetuneFields", "FinetuneFields"]):
    name = "finetune"
    fields_module = "runner.stages.builtin_fields"  # built on first use (StageType.fields_module)
    produces_model = True
    progress_unit = "steps"  # a fine-tuning task counts training steps [F3], not rows

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
            yield from self._cloud_checks(ctx, stage_id, body)

    def _cloud_checks(self, ctx: CheckContext, stage_id: str, body: Mapping[str, Any]) -> Iterator[Issue]:
        """Qianfan trains a preset or custom model named in a job [F1] on a dataset version of its console
        [F2] (a local file is imported into one first: runner.platform.dataset_import); an endpoint or a
        version made earlier in the run cannot be named there."""
        base = body.get("model")
        spec = ctx.stages.get(base) if isinstance(base, str) else None
        if spec is not None and (spec.get("type") != "model" or "version_id" not in spec):
            yield ctx.issue(
                ("stages", stage_id, "model"),
                "on Qianfan the base model is named in the fine-tuning job (CreateFineTuningJob.model), so "
                f"name a model stage with a version_id, not the stage {base!r}.",
            )

    def plan(self, spec: FinetuneFields) -> PlanDetail:
        hyper = written(spec.hyperparameters)
        shown = ", ".join(f"{key}={hyper[key]}" for key in sorted(hyper))
        return PlanDetail(
            f"fine-tune {spec.model} on {spec.dataset} ({spec.method}{', ' + shown if shown else ''})",
            cost=TRAINING_COST,
        )

    def report_entries(
        self, stage: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]
    ) -> Iterator[ReportEntry]:
        return model_entry(stage, by_id, default_scheme="fine-tuned")

    def run(self, ctx: StageContext, spec: FinetuneFields) -> dict[str, Any]:
        from runner.platform.wire.finetuning import FINETUNING  # the wire layer: validate does without

        base = model_version_of(ctx, spec.model)
        base_version = ctx.platform.describe_model_version(base)
        dataset = ctx.dataset(spec.dataset)
        params: dict[str, Any] = {
            "model_version_id": base,
            "base_model_name": base_version.name,  # the job's model on Qianfan [F1]
            "method": METHODS[spec.method],
            "hyper_parameters": hyper_parameters(spec.hyperparameters),
            "dataset_id": dataset.dataset_id,
        }
        if spec.validation_dataset:
            params["validation_dataset_id"] = ctx.dataset(spec.validation_dataset).dataset_id
        info = ctx.run_task(FINETUNING, params)
        result = info.result
        curve = result.get("loss_curve") or []
        if curve:
            ctx.log(f"trained {curve[-1]['step']} steps, loss {curve[0]['loss']} -> {curve[-1]['loss']}")
        version = publish(ctx, info.ref.task_id, base=base_version)
        return {
            "task_id": info.ref.task_id,
            "job_id": result.get("job_id"),
            "version_id": version.version_id,
            "model_id": version.model_id,
            "size_bytes": version.size_bytes,
            "base_version_id": base,
            "dataset_id": dataset.dataset_id,
            "metrics": result.get("metrics") or {},
            "loss_curve": curve,
            "eval_curve": result.get("eval_curve") or [],
            "tokens_per_second": result.get("tokens_per_second"),
        }
