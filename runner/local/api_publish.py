"""``/v2/model`` CreateCustomModel with ``sourceType: Train`` [M5], which publishes a finished fine-tuning
task's model as a version; an ``Import`` goes on to runner.local.api_models.

The fine-tuning job leaves its trained (merged) model in the task's folder; publishing copies it into the
platform's models and registers it in the model set the body names, once per content (the same task published
twice into one model set is the same version). Local rules, as extensions: only the final step is published
(the intermediate checkpoints are the trainer's resume state, LoRA adapters unmerged), and ``trainMeta.step``
(the page's example spelling) is read like ``checkpointStep`` (its table's).
"""

from __future__ import annotations

from typing import Any

from runner.local import api_models
from runner.local.api_common import Body, Context, found, invalid
from runner.local.api_models import describe_version
from runner.local.jobspec import register_built_model
from runner.platform import wire
from runner.platform.wire.finetuning import FINETUNING, PUBLISH_SOURCE

TRAIN_MODEL_FOLDER = "model"  # <task folder>/model: what the fine-tuning job wrote (runner.local.kinds)


def create_custom_model(ctx: Context, body: Body) -> dict[str, Any]:
    """CreateCustomModel [M5]: ``{modelSetId, sourceType: Train, trainMeta: {taskId, checkpointStep}}``
    publishes; ``sourceType: Import`` is api_models' import from BOS. Answers the new version as DescribeModel
    does (its ``modelId`` is the version id [M2])."""
    model = found(ctx.store.model(body.text("modelSetId")), "model", body.text("modelSetId"))
    if body.choice("sourceType", (PUBLISH_SOURCE, "Import")) != PUBLISH_SOURCE:
        return api_models.create_custom_model(ctx, body)
    meta = body.obj("trainMeta", required=True)
    task_id = meta.text("taskId")
    task = ctx.store.task(task_id)
    task = found(
        task if task is not None and task.kind == FINETUNING.value else None, "fine-tuning task", task_id
    )
    if task.status != "succeeded":
        raise invalid(
            f"{meta.where}: the fine-tuning task {task_id} is {task.status}; publish it once it is Done."
        )
    final = int(task.result.get("steps") or 0)
    step = meta.opt_integer("checkpointStep", meta.opt_integer("step"))
    if step is not None and step != final:
        raise invalid(
            f"{meta.where}: the local platform publishes a task's final step ({final}) only, not step {step}."
        )
    built = ctx.home.task_dir(task.id) / TRAIN_MODEL_FOLDER
    if not (built / "config.json").is_file():
        raise invalid(f"{meta.where}: the fine-tuning task {task_id} left no model to publish.")
    details = {
        "description": body.opt_text("description") or "",
        "method": task.params.get("method"),
        "hyper_parameters": task.params.get("hyper_parameters", {}),
        "train_loss": task.result.get("train_loss"),
        "seconds": task.result.get("seconds"),
        "checkpoint_step": final,
        "lineage": task.result.get("lineage", {}),
    }
    version = register_built_model(
        ctx.home, ctx.store, built, model_id=model.id, source=f"train:{task.id}", details=details, keep=True
    )
    return describe_version(ctx, version)


ACTIONS = {wire.CREATE_MODEL_VERSION: create_custom_model}  # in the model route, over api_models' import
