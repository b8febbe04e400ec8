"""Compression with llmcompressor ``oneshot``, saved as compressed-tensors checkpoints.

The mapping from the platform's names is fixed by the design:

* ``INT8-PTQ``  -> W8A8: SmoothQuant (0.8) + GPTQ, int8 per-channel weights and **static** per-tensor int8
  activation scales calibrated on the stage's data.
* ``W8A16C16``  -> W8A16: int8 weights (round to nearest), 16-bit activations.
* ``W4A16C16``  -> W4A16: GPTQ int4 weights in groups of 128.
* ``Sparsity``  -> SparseGPT 2:4 (50 %). compressed-tensors no longer stores sparsity compressed, so the zeros
  are saved dense and the folder is as large as the source; the result's note says so.

Every output reloads with plain ``AutoModelForCausalLM.from_pretrained`` (compressed-tensors decompresses the
layers on the fly), so the rest of the engine needs nothing special for compressed versions.
"""

from __future__ import annotations

import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase

from runner.local.engine.loading import load_tokenizer, render_chat, set_threads

TOKENIZER_FILES = (
    "tokenizer.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
    "README.md",
)
QUANT_WEIGHTS = ("INT8-PTQ", "W8A16C16", "W4A16C16")
# The pipeline writes strategies in lower case, the platform API capitalised: accept both.
STRATEGIES = {"quantization": "Quantization", "sparsity": "Sparsity"}
MAX_CALIBRATION = 256
MAX_SEQ = 64


def _recipe(strategy: str, weight: str | None) -> tuple[str, list[Any], str]:
    """(scheme, modifiers, note) for a strategy and weight name."""
    from compressed_tensors.quantization import (  # type: ignore[import-untyped]
        QuantizationArgs,
        QuantizationScheme,
    )
    from llmcompressor.modifiers.pruning.sparsegpt import SparseGPTModifier
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
    from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier

    modifier: Any
    if strategy == "Sparsity":
        modifier = SparseGPTModifier(
            sparsity=0.5, mask_structure="2:4", targets=["Linear"], ignore=["re:.*lm_head"]
        )
        note = (
            "SparseGPT 2:4 (50 %) on every Linear layer except lm_head; compressed-tensors no longer stores "
            "sparsity compressed, so the zeros are saved dense and the size on disk does not shrink."
        )
        return "2:4 sparse (SparseGPT)", [modifier], note
    if strategy != "Quantization":
        raise ValueError(f"The compression strategy '{strategy}' is unknown; use Quantization or Sparsity.")
    if weight == "INT8-PTQ":
        static_w8a8 = QuantizationScheme(
            targets=["Linear"],
            weights=QuantizationArgs(num_bits=8, type="int", symmetric=True, strategy="channel"),
            input_activations=QuantizationArgs(
                num_bits=8, type="int", symmetric=True, strategy="tensor", dynamic=False
            ),
        )
        modifiers = [
            SmoothQuantModifier(smoothing_strength=0.8),
            GPTQModifier(config_groups={"group_0": static_w8a8}, ignore=["lm_head"]),
        ]
        note = "W8A8: SmoothQuant 0.8 + GPTQ int8 weights, static int8 activation scales from calibration."
        return "W8A8", modifiers, note
    if weight == "W8A16C16":
        modifier = QuantizationModifier(targets="Linear", scheme="W8A16", ignore=["lm_head"])
        return "W8A16", [modifier], "W8A16: int8 per-channel weights (round to nearest), 16-bit activations."
    if weight == "W4A16C16":
        modifier = GPTQModifier(targets="Linear", scheme="W4A16", ignore=["lm_head"])
        return "W4A16", [modifier], "W4A16: GPTQ int4 weights in groups of 128, 16-bit activations."
    raise ValueError(
        f"The quantization weight '{weight}' is unknown; use one of: {', '.join(QUANT_WEIGHTS)}."
    )


def _calibration_texts(tokenizer: PreTrainedTokenizerBase, rows: list[dict[str, Any]] | None) -> list[str]:
    """Prompts rendered by the chat template, followed by the reference answer when there is one."""
    texts: list[str] = []
    for row in (rows or [])[:MAX_CALIBRATION]:
        prompt = str(row.get("prompt", ""))
        if not prompt:
            continue
        rendered = render_chat(tokenizer, [{"role": "user", "content": prompt}])
        answer = row.get("response")
        texts.append(f"{rendered} {answer}" if answer not in (None, "") else rendered)
    if texts:
        return texts
    rng = random.Random(0)
    words = ["what", "is", "the", "sum", "of", "and", "please", "answer", "number", "question"]
    for _ in range(64):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        content = f"{a}+{b}=?" if rng.random() < 0.5 else " ".join(rng.choices(words, k=6))
        texts.append(render_chat(tokenizer, [{"role": "user", "content": content}]))
    return texts


def _dataset(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> Any:
    from datasets import Dataset  # type: ignore[import-untyped]

    encoded = tokenizer(texts, truncation=True, max_length=MAX_SEQ)
    return Dataset.from_dict({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]})


def _quiet_llmcompressor() -> None:
    """llmcompressor logs every layer through loguru; a task's log needs only warnings and errors."""
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def compress(
    src: Path,
    dst: Path,
    strategy: str,
    weight: str | None,
    calib_rows: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """Compress the model folder ``src`` into the new folder ``dst``; returns scheme, size, seconds, note."""
    from llmcompressor.entrypoints.oneshot import oneshot

    src, dst = Path(src), Path(dst)
    strategy = STRATEGIES.get(strategy.lower(), strategy)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"The model folder {src} has no config.json, so it cannot be compressed.")
    if strategy == "Sparsity" and weight:
        raise ValueError(f"Sparsity takes no quantization weight, but '{weight}' was given.")
    scheme, modifiers, note = _recipe(strategy, weight)
    set_threads(src)
    tokenizer = load_tokenizer(src)
    texts = _calibration_texts(tokenizer, calib_rows)
    model = AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32)
    _quiet_llmcompressor()
    start = time.monotonic()
    oneshot(
        model=model,
        dataset=_dataset(tokenizer, texts),
        recipe=modifiers,
        num_calibration_samples=len(texts),
        max_seq_length=MAX_SEQ,
        shuffle_calibration_samples=False,
        log_dir=None,
    )
    seconds = time.monotonic() - start
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    model.save_pretrained(str(dst), save_compressed=True)
    for name in TOKENIZER_FILES:
        if (src / name).is_file() and not (dst / name).exists():
            shutil.copy2(src / name, dst / name)
    recipe_file = dst / "recipe.yaml"
    return {
        "scheme": scheme,
        "strategy": strategy,
        "weight": weight,
        "size_bytes": folder_size(dst),
        "source_size_bytes": folder_size(src),
        "seconds": round(seconds, 3),
        "calibration_samples": len(texts),
        "recipe": recipe_file.read_text(encoding="utf-8") if recipe_file.is_file() else repr(modifiers),
        "note": note,
    }
