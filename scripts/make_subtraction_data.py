"""Write the fine-tuning demo's data: two-digit subtraction, a skill tiny-adder does not have.

Seeded, so a rerun writes the same files. Run from the repository root::

    .venv/bin/python scripts/make_subtraction_data.py

``data/subtraction/train.jsonl`` holds 3,000 pairs ``a-b`` with ``a >= b`` (answers 0..99);
``eval.jsonl`` 200 pairs drawn at random that never appear in training, so the before/after accuracy
measures a learnt skill, not recall. (An earlier rule held out every ``b`` ending in 7, as
make_demo_models.py does for sums; the tiny model then had to subtract a digit it never saw subtracted, and
its held-out accuracy swung between 0.00 and 0.89 with the number of epochs.)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 4321


def rows(pairs: list[tuple[int, int]]) -> str:
    return "".join(json.dumps({"prompt": f"{a}-{b}=?", "response": str(a - b)}) + "\n" for a, b in pairs)


def main() -> None:
    rng = random.Random(SEED)
    pairs = [(a, b) for a in range(100) for b in range(a + 1)]
    rng.shuffle(pairs)
    test, train = pairs[:200], pairs[200:]
    out = ROOT / "data" / "subtraction"
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.jsonl").write_text(rows(train[:3000]), encoding="utf-8")
    (out / "eval.jsonl").write_text(rows(test[:200]), encoding="utf-8")


if __name__ == "__main__":
    main()
