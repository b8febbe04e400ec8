"""Fine-tuning throughput (issue 14): training tokens per second of a fine-tuning task on the local platform
against the same ``transformers`` Trainer run outside qfrun, same model, rows, batch size, steps and seed.

* qfrun: the real local platform in this process (``runner.testing.in_process``), a CreateFineTuningJob and a
  CreateFineTuningTask over its API, the training in its job process; the figure is the task's own
  ``tokensPerSecond`` (tokens the trained rows hold, over ``Trainer.train``'s time), and the wall-clock time
  from create to Done (job process start, model load, saving the merged model included) is reported too.
* baseline: a plain script: the tokenizer, ``DataCollatorForSeq2Seq`` padding and ``Trainer`` with the same
  arguments (schedule, warmup, weight decay, the one checkpoint), timed around ``train()``, counting the same
  tokens (prompt, response and end-of-text per row).

    PYTHONPATH=. python bench/finetune_bench.py [--steps 40] [--batch 32] [--method FullFineTuning]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ADDER = ROOT / "models" / "tiny-adder"
TRAIN = ROOT / "data" / "subtraction" / "train.jsonl"


def pairs(limit: int) -> list[dict[str, str]]:
    return [json.loads(line) for line in TRAIN.read_text(encoding="utf-8").splitlines()[:limit]]


def qfrun_run(rows: list[dict[str, str]], hyper: dict[str, Any], method: str) -> dict[str, float]:
    from runner.local.home import Home
    from runner.testing.in_process import in_process

    with (
        tempfile.TemporaryDirectory() as folder,
        in_process(Home(Path(folder) / "home"), "bench") as (client, _),
    ):

        def call(route: str, action: str, body: dict[str, Any]) -> Any:
            reply = client.post(
                f"/v2/{route}?Action={action}", json=body, headers={"Authorization": "Bearer bench"}
            )
            reply.raise_for_status()
            return reply.json()["result"]

        model = call("model", "ImportLocalModel", {"name": "tiny-adder", "path": str(ADDER)})
        content = "".join(json.dumps(row) + "\n" for row in rows)
        dataset = call(
            "dataset",
            "ImportLocalDataset",
            {"name": "train", "sha256": hashlib.sha256(content.encode()).hexdigest(), "content": content},
        )
        job = call(
            "finetuning",
            "CreateFineTuningJob",
            {"name": "bench", "model": model["modelId"], "trainMode": "SFT"},
        )
        started = time.monotonic()
        task = call(
            "finetuning",
            "CreateFineTuningTask",
            {
                "jobId": job["jobId"],
                "parameterScale": method,
                "hyperParameterConfig": hyper,
                "datasetConfig": {
                    "sourceType": "Platform",
                    "versions": [{"versionId": dataset["versionId"]}],
                },
            },
        )
        while (done := call("finetuning", "DescribeFineTuningTask", {"taskId": task["taskId"]}))[
            "runStatus"
        ] in (
            "Waiting",
            "Running",
        ):
            time.sleep(0.2)
        wall = time.monotonic() - started
        if done["runStatus"] != "Done":
            raise SystemExit(f"the task ended {done['runStatus']}: {done['failedReason']}")
        return {"tokens_per_second": float(done["tokensPerSecond"]), "wall_s": wall}


def baseline_run(rows: list[dict[str, str]], hyper: dict[str, Any], method: str) -> dict[str, float]:
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    torch.manual_seed(hyper["seed"])
    tokenizer = AutoTokenizer.from_pretrained(str(ADDER))
    model: Any = AutoModelForCausalLM.from_pretrained(str(ADDER), dtype=torch.float32)
    if method == "LoRA":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
        )
    examples = []
    for row in rows:
        head = tokenizer.apply_chat_template(
            [{"role": "user", "content": row["prompt"]}], tokenize=False, add_generation_prompt=True
        )
        prompt_len = len(tokenizer(head)["input_ids"])
        ids = tokenizer(f"{head} {row['response']}")["input_ids"] + [tokenizer.eos_token_id]
        examples.append({"input_ids": ids, "labels": [-100] * prompt_len + ids[prompt_len:]})
    with tempfile.TemporaryDirectory() as folder:
        args = TrainingArguments(
            output_dir=folder,
            max_steps=hyper["maxSteps"],
            per_device_train_batch_size=hyper["batchSize"],
            learning_rate=hyper["learningRate"],
            weight_decay=0.01,  # the local engine's defaults for what the task leaves unset
            warmup_steps=int(0.05 * hyper["maxSteps"]),
            lr_scheduler_type="cosine",
            logging_steps=hyper["loggingSteps"],
            save_strategy="steps",  # the same one checkpoint at the end as the task writes
            save_steps=hyper["saveStep"],
            seed=hyper["seed"],
            use_cpu=True,
            report_to=[],
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=examples,
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True),
        )
        started = time.monotonic()
        trainer.train()
        seconds = time.monotonic() - started
    tokens_per_step = sum(len(e["input_ids"]) for e in examples) / len(examples) * hyper["batchSize"]
    return {"tokens_per_second": hyper["maxSteps"] * tokens_per_step / seconds, "train_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rows", type=int, default=640)
    parser.add_argument("--method", default="FullFineTuning", choices=("FullFineTuning", "LoRA"))
    options = parser.parse_args()
    hyper = {
        "maxSteps": options.steps,
        "batchSize": options.batch,
        "learningRate": 0.003,
        "seed": 7,
        "saveStep": options.steps,  # one checkpoint, at the end: what a short run writes anyway
        "loggingSteps": 10,
    }
    rows = pairs(options.rows)
    ours = qfrun_run(rows, hyper, options.method)
    plain = baseline_run(rows, hyper, options.method)
    ratio = ours["tokens_per_second"] / plain["tokens_per_second"]
    print(
        f"{options.method}, {options.steps} steps of {options.batch} rows: "
        f"qfrun {ours['tokens_per_second']:.0f} tokens/s (create to Done {ours['wall_s']:.1f} s), "
        f"plain Trainer {plain['tokens_per_second']:.0f} tokens/s (train {plain['train_s']:.1f} s); "
        f"ratio {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
