"""The typed fields of an ``evaluate`` stage and its evaluators (schema: ``evaluateStage``, ``evaluator``).

An evaluator is one of five dataclasses, told apart by ``kind`` as the schema tells them apart. ``V`` is where
the schema admits an expression in place of a value that is not a string (runner.stages.fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Literal, Union

from runner.stages.base import InferenceParams
from runner.stages.fields import V


@dataclass(frozen=True)
class RuleEvaluator(Generic[V]):
    """Rule metrics, each turned on by ``true`` (runner.vocabulary.RULE_METRICS)."""

    kind: Literal["rule"]
    accuracy: bool | V | None = None
    similarity: bool | V | None = None
    bleu: bool | V | None = None
    rouge_l: bool | V | None = None
    exact_match: bool | V | None = None

    @property
    def switches(self) -> dict[str, bool | V | None]:
        """Each metric by its name, in RULE_METRICS' order."""
        return {
            "accuracy": self.accuracy,
            "similarity": self.similarity,
            "bleu": self.bleu,
            "rouge_l": self.rouge_l,
            "exact_match": self.exact_match,
        }


@dataclass(frozen=True)
class JudgeEvaluator(Generic[V]):
    """An LLM judge: another model stage, or a deployed chat service."""

    kind: Literal["llm_judge"]
    judge: str
    prompt: str | None = None  # None: the platform's judging prompt
    max_score: int | V | None = None  # None: the platform's


@dataclass(frozen=True)
class CustomEvaluator:
    kind: Literal["custom"]
    function: str  # module:function, a file of the pipeline's repository


@dataclass(frozen=True)
class Dimension:
    name: str
    description: str | None = None


@dataclass(frozen=True)
class Scale:
    min: int = 1
    max: int = 5


@dataclass(frozen=True)
class ManualEvaluator:
    """People score the answers (runner.stages.manual)."""

    kind: Literal["manual"]
    dimensions: tuple[Dimension, ...] = ()  # besides satisfaction, which is always there
    scale: Scale | None = None  # None: 1 to 5, as the platform reads it too
    sheet: str | None = None  # None: scores/<stage>.csv

    @property
    def score_range(self) -> Scale:
        return self.scale or Scale()


@dataclass(frozen=True)
class OpencompassEvaluator:
    kind: Literal["opencompass"]
    benchmarks: tuple[str, ...]  # built-in names, or .json files of the repository


Evaluator = Union[  # noqa: UP007 - a generic alias in V: the ``|`` form cannot be parameterised at run time
    RuleEvaluator[V], JudgeEvaluator[V], CustomEvaluator, ManualEvaluator, OpencompassEvaluator
]


@dataclass(frozen=True)
class EvaluateFields(Generic[V]):
    """Either ``models`` and a ``dataset`` (the platform infers, then scores) or ``infer`` (earlier infer
    stages' results, scored as they are): the schema allows exactly one of the two."""

    evaluators: tuple[Evaluator[V], ...]
    models: tuple[str, ...] = ()
    dataset: str | None = None
    infer: tuple[str, ...] = ()
    prompt_template: str = "{input}"
    params: InferenceParams[V] = field(default_factory=InferenceParams)
