"""Supervised fine-tuning on CPU with transformers' ``Trainer`` (and peft's LoRA), run in the job process.

The rows are ``{"prompt", "response"}`` lines; each is rendered through the model's own chat template (so a
served model sees the prompt exactly as it was trained on) and the loss is on the response tokens only.
``Trainer`` writes a checkpoint every ``save_steps`` into ``<workdir>/checkpoints`` with its optimizer,
scheduler and RNG state, so a job started again over the same folder resumes from the last complete one
(``resume_from_checkpoint``) rather than from step 0. A LoRA adapter is merged into the base weights before
saving, so the result is a plain checkpoint that serving and compression take unchanged.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from runner.local.engine.checkpoints import CHECKPOINTS, last_checkpoint
from runner.local.engine.latest_loss import LatestLoss

LOSS_FILE = "loss.jsonl"  # one {"step", "loss"} line per logged step: the loss curve
EVAL_FILE = "eval_loss.jsonl"  # one {"step", "eval_loss"} line per logged step with a validation dataset
IGNORE = -100  # the label ``CrossEntropyLoss`` skips: prompt and padding tokens


def read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
            raise ValueError(f"Line {number} of the training data {path.name} has no text 'prompt'.")
        response = row.get("response")
        if not isinstance(response, str):
            raise ValueError(f"Line {number} of the training data {path.name} has no text 'response'.")
        pairs.append((row["prompt"], response))
    if not pairs:
        raise ValueError(f"The training data {path.name} has no rows.")
    return pairs


def render_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """The prompt as serving renders it: through the chat template when the model has one."""
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        return str(rendered)
    return prompt


class SupervisedRows(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Tokenised rows: prompt then `` response`` then end-of-text, labels on the response only."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, pairs: list[tuple[str, str]], max_len: int):
        self.rows: list[tuple[list[int], list[int]]] = []
        eos = tokenizer.eos_token_id
        for prompt, response in pairs:
            head = render_prompt(tokenizer, prompt)
            prompt_ids = tokenizer(head)["input_ids"]
            full_ids = tokenizer(f"{head} {response}")["input_ids"]
            ids = [*full_ids, eos][:max_len]
            labels = [IGNORE] * len(prompt_ids) + ids[len(prompt_ids) :]
            self.rows.append((ids, labels[: len(ids)]))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids, labels = self.rows[index]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels)}

    def tokens(self) -> int:
        return sum(len(ids) for ids, _ in self.rows)


def collate(pad_id: int) -> Callable[[list[dict[str, torch.Tensor]]], dict[str, torch.Tensor]]:
    def batch(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        width = max(len(item["input_ids"]) for item in items)
        ids = torch.full((len(items), width), pad_id, dtype=torch.long)
        labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            ids[row, :n], labels[row, :n], mask[row, :n] = item["input_ids"], item["labels"], 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    return batch


class Progress(TrainerCallback):
    """Writes ``{"done", "total"}`` steps for the platform, appends each logged loss to the curve and keeps
    the latest losses where the platform reads them while the task runs (``latest``)."""

    def __init__(
        self, report: Callable[[int, int], None], loss_file: Path, eval_file: Path, latest: LatestLoss
    ) -> None:
        self.report = report
        self.loss_file = loss_file
        self.eval_file = eval_file
        self.latest = latest
        self.started = time.monotonic()

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.report(state.global_step, state.max_steps)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        for key, target in (("loss", self.loss_file), ("eval_loss", self.eval_file)):
            if logs and key in logs:
                line = {"step": state.global_step, key: round(float(logs[key]), 5)}
                with target.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(line) + "\n")
        if logs:
            loss, eval_loss = logs.get("loss"), logs.get("eval_loss")
            self.latest.log(
                state.global_step,
                loss=float(loss) if loss is not None else None,
                eval_loss=float(eval_loss) if eval_loss is not None else None,
            )


def trim_loss_curve(loss_file: Path, step: int) -> None:
    """Drop the losses logged after the checkpoint a resumed run starts from (they are logged again)."""
    if loss_file.exists():
        kept = [
            line
            for line in loss_file.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["step"] <= step
        ]
        loss_file.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")


def finetune(
    *,
    model_dir: Path,
    train_path: Path,
    output_dir: Path,
    workdir: Path,
    method: str,  # "FullFineTuning" or "LoRA"
    hyper: Mapping[str, Any],
    report: Callable[[int, int], None],
    eval_path: Path | None = None,
    split_ratio: int = 0,
) -> dict[str, Any]:
    """Train, save the (merged) model to ``output_dir`` and say what happened. With ``eval_path`` (the
    validation dataset) the loss on it is evaluated at every logging step and reported as ``eval_curve``;
    without one, ``split_ratio`` percent of the training rows (the last ones) are held out for it instead
    (``datasetConfig.splitRatio`` [F2]), keeping at least one row to train on."""
    seed = int(hyper.get("seed", 42))
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model: Any = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    max_len = int(hyper.get("maxSeqLen", 64))
    pairs = read_pairs(train_path)
    held_pairs = read_pairs(eval_path) if eval_path else []
    if not held_pairs and split_ratio > 0 and len(pairs) > 1:
        cut = min(len(pairs) - 1, max(1, math.ceil(len(pairs) * split_ratio / 100)))
        pairs, held_pairs = pairs[:-cut], pairs[-cut:]
    data = SupervisedRows(tokenizer, pairs, max_len)
    held_out = SupervisedRows(tokenizer, held_pairs, max_len) if held_pairs else None
    if method == "LoRA":
        from peft import LoraConfig, get_peft_model

        rank = int(hyper.get("loraRank", 8))
        lora = LoraConfig(
            r=rank,
            lora_alpha=int(hyper.get("loraAlpha", 2 * rank)),
            lora_dropout=float(hyper.get("loraDropout", 0.0)),
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    batch = int(hyper.get("batchSize", 32))
    epochs = int(hyper.get("epoch", 1))
    steps_per_epoch = math.ceil(len(data) / batch)
    max_steps = int(hyper.get("maxSteps") or epochs * steps_per_epoch)
    args = TrainingArguments(
        output_dir=str(workdir / CHECKPOINTS),
        max_steps=max_steps,
        per_device_train_batch_size=batch,
        learning_rate=float(hyper.get("learningRate", 1e-3)),
        weight_decay=float(hyper.get("weightDecay", 0.01)),
        warmup_steps=int(float(hyper.get("warmupRatio", 0.05)) * max_steps),
        lr_scheduler_type=str(hyper.get("schedulerName", "cosine")),
        logging_steps=int(hyper.get("loggingSteps", 10)),
        eval_strategy="steps" if held_out is not None else "no",
        eval_steps=int(hyper.get("loggingSteps", 10)) if held_out is not None else None,
        per_device_eval_batch_size=batch,
        save_strategy="steps",
        save_steps=int(hyper.get("saveStep", 50)),
        save_total_limit=2,  # the last two: a kill while one is written leaves the one before complete
        seed=seed,
        data_seed=seed,
        use_cpu=True,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    loss_file, eval_file = workdir / LOSS_FILE, workdir / EVAL_FILE
    resume = last_checkpoint(workdir)
    resumed_step = 0
    if resume is not None:
        resumed_step = int(resume.name.rsplit("-", 1)[-1])
        trim_loss_curve(loss_file, resumed_step)
        trim_loss_curve(eval_file, resumed_step)
    else:
        loss_file.unlink(missing_ok=True)
        eval_file.unlink(missing_ok=True)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        eval_dataset=held_out,
        data_collator=collate(int(tokenizer.pad_token_id or 0)),
        callbacks=[Progress(report, loss_file, eval_file, LatestLoss(workdir))],
    )
    started = time.monotonic()
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.monotonic() - started
    trained: Any = trainer.model
    if method == "LoRA":
        trained = trained.merge_and_unload()  # a plain checkpoint: serving and compression take it as is
    if output_dir.exists():
        shutil.rmtree(output_dir)
    trained.save_pretrained(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    for extra in ("generation_config.json", "tokenizer.model"):
        if (model_dir / extra).is_file() and not (output_dir / extra).is_file():
            shutil.copy(model_dir / extra, output_dir / extra)
    eval_curve = _read_lines(eval_file)  # Trainer evaluates at the last step too, whatever the interval
    steps_run = max_steps - resumed_step
    tokens_per_step = data.tokens() / len(data) * batch
    return {
        "steps": max_steps,
        "resumed_from_step": resumed_step,
        "train_loss": round(float(output.training_loss), 5),
        "seconds": round(seconds, 2),
        "tokens_per_second": round(steps_run * tokens_per_step / seconds, 1) if seconds > 0 else None,
        "rows": len(data),
        "loss_curve": _read_lines(loss_file),
        "eval_curve": eval_curve,
        "eval_loss": eval_curve[-1]["eval_loss"] if eval_curve else None,
    }


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
