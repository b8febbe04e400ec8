"""The baselines of issue 17's P6 and P8: the same compute written as a user would write it without qfrun.

It imports nothing from qfrun on purpose: it is the short script a user would write with ``transformers``,
``llmcompressor`` and ``rapidfuzz`` alone, so the bench can time qfrun against it.

* P6 (``compress``): W4A16 of the demo model with llmcompressor's ``oneshot``, the recipe qfrun's engine uses
  (GPTQ int4 weights in groups of 128 on every Linear layer but ``lm_head``), the same calibration rows
  (chat-rendered prompt, a space, the answer; 256 rows, 64 tokens at most, unshuffled), saved as a
  compressed-tensors checkpoint with the tokenizer beside it.
* P8 (run as a script): the quickstart's compute in one process: load the model, answer the 200 evaluation
  rows greedily in batches of 64, score accuracy and similarity, compress to W8A16 and W4A16, score both,
  keep the smaller one within two points of the base, and answer the quickstart's two smoke-test chats with
  it in-process (no HTTP server: the least a user needs to see the deployed model answer).

    python bench/direct_baselines.py [--smoke] --out FOLDER    # writes FOLDER/summary.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import unicodedata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ADDER = ROOT / "models" / "tiny-adder"
EVAL = ROOT / "data" / "addition" / "eval.jsonl"
CALIB = ROOT / "data" / "addition" / "calib.jsonl"
SMOKE_EVAL = ROOT / "data" / "addition" / "smoke.jsonl"
# What qfrun's engine sets (runner/local/engine/__init__.py), and what a user who measured would set: OpenMP
# threads that sleep when idle instead of spinning, which on a busy 2-core machine slow torch several-fold.
# Set here, the bench compares the same compute, not two thread policies.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
MAX_SEQ = 64
MAX_DROP = 0.02  # the quickstart's vars.max_accuracy_drop
CHATS = [("23+45=?", "68"), ("50+50=?", "100")]  # the quickstart's smoke test: question, expected answer


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load(path: Path) -> tuple[Any, Any]:
    """Model and tokenizer, left-padded for batched generation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    tokenizer.padding_side = "left"
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.unk_token
    model = AutoModelForCausalLM.from_pretrained(str(path)).eval()
    return model, tokenizer


def prompt(tokenizer: Any, question: str) -> str:
    messages = [{"role": "user", "content": question}]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def answer(model: Any, tokenizer: Any, questions: list[str], batch: int = 64) -> list[str]:
    """Greedy answers of at most 5 tokens (the quickstart's params), ``batch`` prompts per ``generate``."""
    import torch

    answers: list[str] = []
    with torch.inference_mode():
        for start in range(0, len(questions), batch):
            texts = [prompt(tokenizer, q) for q in questions[start : start + batch]]
            encoded = tokenizer(texts, return_tensors="pt", padding=True)
            out = model.generate(
                **encoded, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
            width = encoded["input_ids"].shape[1]
            answers += [s.strip() for s in tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)]
    return answers


def scores(answers: list[str], rows: list[dict[str, Any]]) -> dict[str, float]:
    """Accuracy (NFKC, case-folded, surrounding punctuation ignored) and rapidfuzz similarity, as the rule
    evaluator defines them."""
    from rapidfuzz import fuzz

    def norm(text: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", text).casefold().split()).strip(" .,!?;:")

    refs = [str(row["response"]) for row in rows]
    return {
        "accuracy": sum(norm(a) == norm(r) for a, r in zip(answers, refs, strict=True)) / len(refs),
        "similarity": sum(fuzz.ratio(a, r.strip()) / 100 for a, r in zip(answers, refs, strict=True))
        / len(refs),
    }


def compress(src: Path, dst: Path, scheme: str, calib_rows: list[dict[str, Any]]) -> None:
    """``oneshot`` with qfrun's recipe for ``scheme`` (W4A16: GPTQ; W8A16: round to nearest)."""
    import torch
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(src))
    model = AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32)
    texts = [f"{prompt(tokenizer, row['prompt'])} {row['response']}" for row in calib_rows[:256]]
    encoded = tokenizer(texts, truncation=True, max_length=MAX_SEQ)
    dataset = Dataset.from_dict(
        {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    )
    modifier = (GPTQModifier if scheme == "W4A16" else QuantizationModifier)(
        targets="Linear", scheme=scheme, ignore=["lm_head"]
    )
    oneshot(
        model=model,
        dataset=dataset,
        recipe=[modifier],
        num_calibration_samples=len(texts),
        max_seq_length=MAX_SEQ,
        shuffle_calibration_samples=False,
        log_dir=None,
    )
    if dst.exists():
        shutil.rmtree(dst)
    model.save_pretrained(str(dst), save_compressed=True)
    tokenizer.save_pretrained(str(dst))


def quickstart(
    out: Path, eval_rows: list[dict[str, Any]], calib_rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """The quickstart pipeline's compute, stage by stage, in this process."""
    questions = [str(row["prompt"]) for row in eval_rows]
    model, tokenizer = load(ADDER)
    metrics = {"base": scores(answer(model, tokenizer, questions), eval_rows)}
    for name, scheme in (("w8", "W8A16"), ("w4", "W4A16")):
        compress(ADDER, out / name, scheme, calib_rows)
        metrics[name] = scores(answer(*load(out / name), questions), eval_rows)
    floor = metrics["base"]["accuracy"] - MAX_DROP
    chosen = next((name for name in ("w4", "w8") if metrics[name]["accuracy"] >= floor), None)
    replies: list[str] = []
    if chosen is not None:
        replies = answer(*load(out / chosen), [question for question, _ in CHATS])
    return {"metrics": metrics, "deployed": chosen, "replies": replies}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="10 evaluation and 16 calibration rows")
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for the compressed models and summary"
    )
    args = parser.parse_args()
    eval_rows, calib_rows = read_jsonl(SMOKE_EVAL if args.smoke else EVAL), read_jsonl(CALIB)
    start = time.perf_counter()
    summary = quickstart(args.out, eval_rows, calib_rows[:16] if args.smoke else calib_rows)
    summary["seconds"] = round(time.perf_counter() - start, 3)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
