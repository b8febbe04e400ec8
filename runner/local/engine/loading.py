"""Load a Hugging Face model folder (plain or compressed-tensors) for CPU generation, one way for all.

Every engine entry point (batch jobs, evaluation, services) goes through :func:`load_model`, so padding side,
pad token and thread count are set in one place: batched generation needs left padding and a pad token, and
the machines are shared, so a model never takes more than two threads (a small one takes one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

MAX_THREADS = 2
SMALL_MODEL_BYTES = 64 * 1024 * 1024  # below this, one thread is faster than two (set_threads)
THREADS_ENV = "QFRUN_ENGINE_THREADS"


@dataclass
class LoadedModel:
    """A model in eval mode with the tokenizer it was trained with."""

    path: Path
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase

    @property
    def name(self) -> str:
        return self.path.name


def set_threads(model_dir: Path | None = None) -> None:
    """Cap torch's intra-op threads: several workers share the machine's cores.

    ``QFRUN_ENGINE_THREADS`` chooses. Otherwise a model whose weights take under ``SMALL_MODEL_BYTES`` gets
    one thread, and a larger one (or none named) ``min(2, cpus)``. A small model's matrix products are too
    short to split: the quickstart (tiny-adder, 3.5 MB) ran in 12.4-12.9 s with one thread per job against
    17.3-17.4 s with two, on a quiet 2-core machine (its W4A16 calibration alone makes 2,560 one-sample
    forwards, each paying the threads' hand-off); accuracy is the same either way (the int4 weights differ
    bitwise, as any change of thread count makes them).
    """
    wanted = os.environ.get(THREADS_ENV, "")
    if wanted.isdigit() and int(wanted) > 0:
        threads = int(wanted)
    elif model_dir is not None and weights_bytes(model_dir) < SMALL_MODEL_BYTES:
        threads = 1
    else:
        threads = min(MAX_THREADS, os.cpu_count() or 1)
    torch.set_num_threads(max(1, threads))


def weights_bytes(model_dir: Path) -> int:
    """The size of the folder's weight files (safetensors or PyTorch bins, sharded or not)."""
    total = 0
    for pattern in ("*.safetensors", "*.bin", "*.pt"):
        for path in Path(model_dir).glob(pattern):
            try:
                total += path.stat().st_size
            except OSError:
                continue
    return total


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """The folder's tokenizer, left-padded and with a pad token (``<unk>``, else ``</s>``)."""
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token is not None else tokenizer.eos_token
    return tokenizer


def load_model(path: Path) -> LoadedModel:
    """Load a model folder for generation; refuse one whose weights do not all load.

    ``from_pretrained`` happily fills missing weights with random values (a folder in a format it does not
    know, such as optimum-quanto's), which would give a model that "works" and answers nonsense.
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"The model folder {path} has no config.json, so it is not a model folder.")
    set_threads(path)
    tokenizer = load_tokenizer(path)
    loaded: Any = AutoModelForCausalLM.from_pretrained(str(path), output_loading_info=True)
    model, info = loaded
    missing = sorted(info.get("missing_keys", []))
    if missing:
        shown = ", ".join(missing[:3])
        raise ValueError(
            f"The model folder {path} lacks {len(missing)} weight(s) ({shown}...), so it cannot be loaded."
        )
    model.eval()
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return LoadedModel(path=path, model=model, tokenizer=tokenizer)


def render_chat(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]]) -> str:
    """The prompt text for chat messages: the tokenizer's chat template, else the last user message."""
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(rendered)
    users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
    if not users:
        raise ValueError("The chat has no user message, so there is nothing to answer.")
    return users[-1]
