"""Load a Hugging Face model folder (plain or compressed-tensors) for CPU generation, one way for all.

Every engine entry point (batch jobs, evaluation, services) goes through :func:`load_model`, so padding side,
pad token and thread count are set in one place: batched generation needs left padding and a pad token, and
the machines are shared, so a model never takes more than two threads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

MAX_THREADS = 2
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


def set_threads() -> None:
    """Cap torch's intra-op threads: several workers share the machine's cores.

    ``QFRUN_ENGINE_THREADS`` overrides the default of ``min(2, cpus)``. With the package's passive OpenMP
    waiting, 1 and 2 threads measured the same on a loaded 2-core machine (a service: 12 req/s sequential,
    about 80 req/s with 8 concurrent clients either way).
    """
    wanted = os.environ.get(THREADS_ENV, "")
    threads = int(wanted) if wanted.isdigit() and int(wanted) > 0 else min(MAX_THREADS, os.cpu_count() or 1)
    torch.set_num_threads(max(1, threads))


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
    set_threads()
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
