"""Rule metrics give exact, documented values on small rows (no torch involved)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runner.local.engine.metrics import normalise, score

ROOT = Path(__file__).resolve().parents[3]
ROWS = [
    {"output": "68", "response": "68"},
    {"output": " 68. ", "response": "68"},
    {"output": "Hello World", "response": "hello world"},
    {"output": "12", "response": "21"},
]


def test_exact_match_only_strips_whitespace():
    assert score(ROWS, ["exact_match"]) == {"exact_match": 0.25}


def test_accuracy_normalises_case_punctuation_and_width():
    assert score(ROWS, ["accuracy"]) == {"accuracy": 0.75}
    assert normalise("  \uff28\uff45\uff4c\uff4c\uff4f\uff0c  World\uff01 ") == "hello, world"
    assert normalise("“答案”。") == "答案"


def test_similarity_is_mean_indel_ratio():
    rows = [{"output": "abcd", "response": "abcd"}, {"output": "abcd", "response": "abce"}]
    assert score(rows, ["similarity"]) == {"similarity": pytest.approx((1.0 + 0.75) / 2)}


def test_bleu_is_corpus_bleu_over_100():
    rows = [{"output": "the cat sat on the mat", "response": "the cat sat on the mat"}]
    assert score(rows, ["bleu"]) == {"bleu": pytest.approx(1.0)}
    assert score([{"output": "dog", "response": "the cat sat on the mat"}], ["bleu"])["bleu"] == 0.0


def test_bleu_of_short_exact_answers_is_one_not_zero():
    rows = [{"output": "68", "response": "68"}, {"output": "104", "response": "104"}]
    assert score(rows, ["bleu"]) == {"bleu": pytest.approx(1.0)}


def test_rouge_l_uses_word_lcs_and_segments_chinese():
    rows = [{"output": "the cat sat", "response": "the cat sat on the mat"}]
    # LCS 3 words: precision 3/3, recall 3/6 -> F1 = 2/3
    assert score(rows, ["rouge_l"]) == {"rouge_l": pytest.approx(2 / 3, abs=1e-6)}
    chinese = [{"output": "我爱北京", "response": "我爱北京天安门"}]
    value = score(chinese, ["rouge_l"])["rouge_l"]
    assert 0.5 < value < 1.0


def test_unknown_metric_is_named_in_the_error():
    with pytest.raises(ValueError, match="perplexity"):
        score(ROWS, ["perplexity"])


def test_row_without_reference_is_reported_by_number():
    with pytest.raises(ValueError, match="Row 2"):
        score([{"output": "1", "response": "1"}, {"output": "2"}], ["accuracy"])


def test_scoring_every_metric_never_imports_torch():
    code = (
        "import sys; from runner.local.engine.metrics import score, METRICS; "
        "score([{'output': '我爱北京', 'response': '我爱北京'}], list(METRICS)); "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT).returncode == 0
