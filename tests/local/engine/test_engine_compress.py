"""Each compression scheme writes a checkpoint that plain from_pretrained reloads and that still adds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ADDER = ROOT / "models" / "tiny-adder"
GRADER = ROOT / "models" / "tiny-grader"
DATA = ROOT / "data" / "addition"


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


pytestmark = [
    pytest.mark.slow,
    # llmcompressor and compressed-tensors warn about their own deprecations while they run.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

SCHEMES = [
    # (strategy, weight, scheme, max size ratio, max accuracy drop)
    ("Quantization", "INT8-PTQ", "W8A8", 0.40, 0.06),
    ("Quantization", "W8A16C16", "W8A16", 0.40, 0.06),
    ("Quantization", "W4A16C16", "W4A16", 0.25, 0.06),
    ("Sparsity", None, "2:4 sparse (SparseGPT)", 1.01, 0.50),
]


@pytest.fixture(scope="module")
def source_accuracy(adder, eval_rows):
    return accuracy_of(adder, eval_rows[:50])


def accuracy_of(loaded, rows):
    from runner.local.engine.inference import InferenceParams, generate

    chats = [[{"role": "user", "content": r["prompt"]}] for r in rows]
    outputs = generate(loaded, chats, InferenceParams(max_output_tokens=5))
    return sum(g.text == r["response"] for g, r in zip(outputs, rows, strict=True)) / len(rows)


@pytest.mark.parametrize(("strategy", "weight", "scheme", "max_ratio", "max_drop"), SCHEMES)
def test_compressed_checkpoint_reloads_and_keeps_accuracy(
    tmp_path, eval_rows, source_accuracy, strategy, weight, scheme, max_ratio, max_drop
):
    from runner.local.engine.compress import compress
    from runner.local.engine.loading import load_model

    dst = tmp_path / "out"
    started = time.monotonic()
    result = compress(ADDER, dst, strategy, weight, read_jsonl(DATA / "calib.jsonl"))
    total = time.monotonic() - started
    assert result["scheme"] == scheme
    assert result["size_bytes"] <= max_ratio * result["source_size_bytes"]
    assert result["note"]
    config = json.loads((dst / "config.json").read_text())
    if strategy == "Quantization":
        assert config["quantization_config"]["quant_method"] == "compressed-tensors"
    # load_model is plain AutoModelForCausalLM.from_pretrained, and refuses a folder with missing weights.
    reloaded = load_model(dst)
    model = reloaded.model
    acc = accuracy_of(reloaded, eval_rows[:50])
    if strategy == "Sparsity":
        weights = model.model.layers[0].mlp.up_proj.weight
        assert float((weights == 0).float().mean()) == pytest.approx(0.5, abs=0.01)
        assert "dense" in result["note"]
    print(
        f"{scheme}: acc {acc:.2f} (source {source_accuracy:.2f}), size {result['size_bytes']} "
        f"of {result['source_size_bytes']} bytes, oneshot {result['seconds']:.1f} s, total {total:.1f} s"
    )
    assert acc >= source_accuracy - max_drop


def test_unknown_weight_is_refused(tmp_path):
    from runner.local.engine.compress import compress

    with pytest.raises(ValueError, match="'W2A16' is unknown"):
        compress(ADDER, tmp_path / "out", "Quantization", "W2A16", None)
