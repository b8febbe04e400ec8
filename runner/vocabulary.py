"""The names the pipeline schema, the stages, the wire, the local API and the engine share: rule metrics and
generation parameters, each defined once here (tests/test_vocabulary.py checks the schema agrees).

Qianfan documents two rule score modes [E11]; the local platform adds three more; an LLM judge and people add
their own metrics, which no dimension a user names may shadow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

QIANFAN_RULE_METRICS: Final = ("similarity", "accuracy")  # the documented rule score modes [E11]
LOCAL_RULE_METRICS: Final = ("bleu", "rouge_l", "exact_match")  # the local platform's own
RULE_METRICS: Final = ("accuracy", "similarity", "bleu", "rouge_l", "exact_match")  # as the schema lists them
JUDGE_METRICS: Final = ("judge_score",)
MANUAL_METRICS: Final = ("satisfaction", "manual_avg_score", "good_case_proportion")  # satisfaction: 满意度

# Generation parameters: Qianfan's chat parameters [S7][E1] and the local engine's own (max_output_tokens,
# do_sample, seed), with the JSON types each takes.
INFERENCE_PARAMS: Final[Mapping[str, tuple[type, ...]]] = {
    "temperature": (int, float),
    "top_p": (int, float),
    "top_k": (int,),
    "max_output_tokens": (int,),
    "do_sample": (bool,),
    "seed": (int,),
    "penalty_score": (int, float),
}
