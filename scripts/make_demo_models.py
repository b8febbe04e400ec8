"""Build the local platform's demo assets: tokenizer, ``tiny-adder``, ``tiny-grader`` and the addition data.

Everything is seeded, so running this again on the same library versions gives the same data split and
(on the same CPU thread count) the same weights. Run from the repository root::

    .venv/bin/python scripts/make_demo_models.py [--adder-steps N] [--grader-steps N]

The task is two-digit addition: ``"Q: 23+45=? A:"`` -> ``" 68"``. Pairs with ``(100a + b) % 10 == 7`` are
held out of training; ``data/addition/eval.jsonl`` and ``smoke.jsonl`` come from them, ``calib.jsonl`` from
training pairs. The grader learns ``"Question: 23+45=?\\nAnswer: 68\\nScore:"`` -> ``" 10"`` if the answer
is right, ``" 0"`` if not, and is what the local LLM judge asks.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sentencepiece as spm
import torch
import transformers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, LlamaTokenizer

ROOT = Path(__file__).resolve().parent.parent
SEED = 1234
LAYERS = 4
GRADER_LR = 2e-3
VERSIONS = f"torch {torch.__version__}, transformers {transformers.__version__}"
ADDER_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "Q: {{ message['content'] }} A:{% endif %}{% endfor %}"
)
GRADER_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ message['content'] }}{% endif %}{% endfor %}"
)


def held_out(a: int, b: int) -> bool:
    """The split rule: a tenth of the pairs never appear in training."""
    return (100 * a + b) % 10 == 7


def question(a: int, b: int) -> str:
    return f"{a}+{b}=?"


def adder_prompt(a: int, b: int) -> str:
    return f"Q: {question(a, b)} A:"


def grader_prompt(q: str, answer: str) -> str:
    return f"Question: {q}\nAnswer: {answer}\nScore:"


def wrong_answer(rng: random.Random, right: int) -> int:
    """A plausible wrong sum: mostly near misses, so the grader must really add."""
    offsets = [1, -1, 10, -10, 2, -2, 11, -9, 9, -11, 100, -100]
    if rng.random() < 0.75:
        candidate = right + rng.choice(offsets)
    else:
        candidate = rng.randint(0, 198)
    return candidate if candidate >= 0 and candidate != right else (right + 1)


def build_tokenizer(workdir: Path) -> LlamaTokenizer:
    """Train a SentencePiece BPE model with byte fallback, so any text (CJK, emoji) tokenises."""
    rng = random.Random(SEED)
    lines: list[str] = []
    for _ in range(3000):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        lines.append(f"{adder_prompt(a, b)} {a + b}")
        lines.append(f"Question: {question(a, b)} Answer: {a + b} Score: 10")
        lines.append(f"Question: {question(a, b)} Answer: {wrong_answer(rng, a + b)} Score: 0")
    corpus = workdir / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    prefix = workdir / "sp"
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        model_type="bpe",
        vocab_size=320,
        hard_vocab_limit=False,
        split_digits=True,
        byte_fallback=True,
        character_coverage=1.0,
        num_threads=1,
        bos_id=1,
        eos_id=2,
        unk_id=0,
        pad_id=-1,
        minloglevel=2,
    )
    tokdir = workdir / "tok"
    tokdir.mkdir()
    (tokdir / "tokenizer.model").write_bytes(without_paths(Path(f"{prefix}.model").read_bytes()))
    tokenizer = LlamaTokenizer.from_pretrained(str(tokdir))
    tokenizer.pad_token = tokenizer.unk_token
    tokenizer.padding_side = "left"
    return tokenizer


def without_paths(model: bytes) -> bytes:
    """The SentencePiece model with the temporary training paths blanked, so reruns give identical bytes."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model)
    del proto.trainer_spec.input[:]
    proto.trainer_spec.input.append("corpus.txt")
    proto.trainer_spec.model_prefix = "sp"
    return bytes(proto.SerializeToString())


@dataclass
class Encoded:
    """Right-padded training tensors, loss only on the answer tokens."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor


def encode(tokenizer: LlamaTokenizer, pairs: list[tuple[str, str]]) -> Encoded:
    prompts = tokenizer([p for p, _ in pairs])["input_ids"]
    fulls = tokenizer([p + t for p, t in pairs])["input_ids"]
    eos = tokenizer.eos_token_id
    seqs: list[tuple[list[int], int]] = []
    for prompt_ids, full_ids in zip(prompts, fulls, strict=True):
        if full_ids[: len(prompt_ids)] != prompt_ids:
            raise ValueError("The prompt's tokens are not a prefix of the prompt-plus-answer tokens.")
        seqs.append(([*full_ids, eos], len(prompt_ids)))
    width = max(len(s) for s, _ in seqs)
    ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for row, (seq, n_prompt) in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
        labels[row, n_prompt : len(seq)] = torch.tensor(seq[n_prompt:])
    return Encoded(ids, mask, labels)


def new_model(tokenizer: LlamaTokenizer, layers: int) -> LlamaForCausalLM:
    vocab = math.ceil(len(tokenizer) / 32) * 32
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=512,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def train(model: LlamaForCausalLM, data: Encoded, steps: int, batch: int = 128, lr: float = 3e-3) -> float:
    """AdamW with warm-up and cosine decay; returns the seconds it took."""
    generator = torch.Generator().manual_seed(SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 20)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model.train()
    start = time.monotonic()
    for step in range(steps):
        idx = torch.randint(0, data.input_ids.shape[0], (batch,), generator=generator)
        out = model(
            input_ids=data.input_ids[idx], attention_mask=data.attention_mask[idx], labels=data.labels[idx]
        )
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 100 == 0 or step == steps - 1:
            print(
                f"  step {step:4d}  loss {out.loss.item():.4f}  {time.monotonic() - start:5.1f}s", flush=True
            )
    model.eval()
    return time.monotonic() - start


@torch.no_grad()
def greedy(model: LlamaForCausalLM, tokenizer: LlamaTokenizer, prompts: list[str], new: int = 5) -> list[str]:
    outputs: list[str] = []
    for i in range(0, len(prompts), 100):
        enc = tokenizer(prompts[i : i + 100], return_tensors="pt", padding=True)
        gen = model.generate(**enc, max_new_tokens=new, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        outputs += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return [o.strip() for o in outputs]


def save(
    model: LlamaForCausalLM, tokenizer: LlamaTokenizer, tokdir: Path, out: Path, template: str, card: str
) -> None:
    """Write a plain Hugging Face folder with the chat template in tokenizer_config.json."""
    if out.exists():
        shutil.rmtree(out)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=8,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    shutil.copy(tokdir / "tokenizer.model", out / "tokenizer.model")
    config_path = out / "tokenizer_config.json"
    config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
    config["chat_template"] = template
    config["padding_side"] = "left"
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "chat_template.jinja").unlink(missing_ok=True)
    (out / "README.md").write_text(card, encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def split_pairs() -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[tuple[int, int]]]:
    """(training pairs, eval pairs, smoke pairs), shuffled with the fixed seed."""
    rng = random.Random(SEED)
    pairs = [(a, b) for a in range(100) for b in range(100)]
    train_pairs = [p for p in pairs if not held_out(*p)]
    test_pairs = [p for p in pairs if held_out(*p)]
    rng.shuffle(train_pairs)
    rng.shuffle(test_pairs)
    return train_pairs, test_pairs[:200], test_pairs[200:210]


def write_data(
    out: Path,
    train_pairs: list[tuple[int, int]],
    eval_pairs: list[tuple[int, int]],
    smoke_pairs: list[tuple[int, int]],
) -> None:
    def rows(ps: list[tuple[int, int]]) -> list[dict[str, str]]:
        return [{"prompt": question(a, b), "response": str(a + b)} for a, b in ps]

    data_dir = out / "data" / "addition"
    write_jsonl(data_dir / "eval.jsonl", rows(eval_pairs))
    write_jsonl(data_dir / "calib.jsonl", rows(train_pairs[:256]))
    write_jsonl(data_dir / "smoke.jsonl", rows(smoke_pairs))


def make_adder(
    tokenizer: LlamaTokenizer,
    tokdir: Path,
    out: Path,
    steps: int,
    train_pairs: list[tuple[int, int]],
    eval_pairs: list[tuple[int, int]],
) -> None:
    print("tiny-adder:", flush=True)
    torch.manual_seed(SEED)
    adder = new_model(tokenizer, layers=LAYERS)
    adder_data = encode(tokenizer, [(adder_prompt(a, b), f" {a + b}") for a, b in train_pairs])
    seconds = train(adder, adder_data, steps)
    outs = greedy(adder, tokenizer, [adder_prompt(a, b) for a, b in eval_pairs])
    acc = sum(o == str(a + b) for o, (a, b) in zip(outs, eval_pairs, strict=True)) / len(eval_pairs)
    train_outs = greedy(adder, tokenizer, [adder_prompt(a, b) for a, b in train_pairs[:200]])
    train_acc = sum(o == str(a + b) for o, (a, b) in zip(train_outs, train_pairs, strict=False)) / 200
    print(f"tiny-adder: held-out acc {acc:.3f}, train acc {train_acc:.3f}, {seconds:.0f}s", flush=True)
    card = ADDER_CARD.format(
        params=sum(p.numel() for p in adder.parameters()),
        steps=steps,
        seconds=seconds,
        threads=torch.get_num_threads(),
        acc=acc,
        train_acc=train_acc,
        versions=VERSIONS,
    )
    save(adder, tokenizer, tokdir, out / "models" / "tiny-adder", ADDER_TEMPLATE, card)


def make_grader(
    tokenizer: LlamaTokenizer,
    tokdir: Path,
    out: Path,
    steps: int,
    train_pairs: list[tuple[int, int]],
    eval_pairs: list[tuple[int, int]],
) -> None:
    """Fine-tune a copy of tiny-adder (it already adds) into a grader."""
    print("tiny-grader:", flush=True)
    torch.manual_seed(SEED + 1)
    grader = LlamaForCausalLM.from_pretrained(str(out / "models" / "tiny-adder"), dtype=torch.float32)
    g_rng = random.Random(SEED + 1)
    graded: list[tuple[str, str]] = []
    for a, b in train_pairs:
        # Loss on the right answer's digits too (an auxiliary target), so the grader keeps adding and
        # can compare; a wrong answer gets loss on the score only.
        right, q = a + b, question(a, b)
        graded.append((f"Question: {q}\nAnswer:", f" {right}\nScore: 10"))
        graded.append((grader_prompt(q, str(wrong_answer(g_rng, right))), " 0"))
    seconds = train(grader, encode(tokenizer, graded), steps, lr=GRADER_LR)
    g_eval: list[tuple[str, str]] = []
    for a, b in eval_pairs:
        g_eval.append((grader_prompt(question(a, b), str(a + b)), "10"))
        g_eval.append((grader_prompt(question(a, b), str(wrong_answer(g_rng, a + b))), "0"))
    g_outs = greedy(grader, tokenizer, [p for p, _ in g_eval], new=3)
    acc = sum(o == want for o, (_, want) in zip(g_outs, g_eval, strict=True)) / len(g_eval)
    print(f"tiny-grader: held-out acc {acc:.3f}, {seconds:.0f}s", flush=True)
    card = GRADER_CARD.format(
        params=sum(p.numel() for p in grader.parameters()),
        steps=steps,
        seconds=seconds,
        threads=torch.get_num_threads(),
        acc=acc,
        versions=VERSIONS,
    )
    save(grader, tokenizer, tokdir, out / "models" / "tiny-grader", GRADER_TEMPLATE, card)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adder-steps", type=int, default=800)
    parser.add_argument("--grader-steps", type=int, default=1000)
    parser.add_argument("--only", choices=["all", "data", "adder", "grader"], default="all")
    parser.add_argument("--out", type=Path, default=ROOT)
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads (1 is faster on a busy machine)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_pairs, eval_pairs, smoke_pairs = split_pairs()
    if args.only in ("all", "data"):
        write_data(args.out, train_pairs, eval_pairs, smoke_pairs)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp))
        tokdir = Path(tmp) / "tok"
        print(f"tokenizer: {len(tokenizer)} tokens", flush=True)
        if args.only in ("all", "adder"):
            make_adder(tokenizer, tokdir, args.out, args.adder_steps, train_pairs, eval_pairs)
        if args.only in ("all", "grader"):
            make_grader(tokenizer, tokdir, args.out, args.grader_steps, train_pairs, eval_pairs)


ADDER_CARD = """# tiny-adder

A {params:,}-parameter Llama (hidden 128, 4 layers, 4 heads, intermediate 512) that answers two-digit
additions: the chat template renders the user message `23+45=?` as `Q: 23+45=? A:` and the model continues
with ` 68`. It is the local platform's demo model, small enough to train, compress and serve on a laptop CPU.

## How it was made

`scripts/make_demo_models.py` (seeded): a SentencePiece BPE tokenizer (split digits, byte fallback, so any
text tokenises), random initialisation, AdamW (lr 3e-3, warm-up + cosine), batch 128, loss on the answer only,
{steps} steps in {seconds:.0f} s on {threads} CPU thread(s) ({versions}).
Pairs with `(100a + b) % 10 == 7` were held out of training.

## Measured

Greedy exact-match accuracy on the 200 held-out rows of `data/addition/eval.jsonl`: **{acc:.3f}**
(on 200 training pairs: {train_acc:.3f}).
"""

GRADER_CARD = """# tiny-grader

A {params:,}-parameter Llama (same shape and tokenizer as `tiny-adder`) that grades an answer to a two-digit
addition: `Question: 23+45=?\\nAnswer: 68\\nScore:` -> ` 10` if the answer is right, ` 0` if not. The chat
template passes the user message through unchanged. The local platform's LLM judge asks it.

## How it was made

`scripts/make_demo_models.py` (seeded): starts from `tiny-adder`'s weights (so it can already add) and is
fine-tuned (AdamW, lr 2e-3, warm-up + cosine, batch 128) on every training pair twice, once with the right sum
and once with a wrong one (mostly near misses such as +-1 or +-10); the right answer's digits are an
auxiliary target, so the model keeps adding while it learns to compare. {steps} steps in {seconds:.0f} s
on {threads} CPU thread(s) ({versions}).

## Measured

Exact-match accuracy of the score on 400 held-out prompts (the 200 eval questions, each with the right answer
and with a wrong one): **{acc:.3f}**.
"""


if __name__ == "__main__":
    main()
