"""The fields of the built-in stage types, as schemas/pipeline.schema.json gives them (runner.stages.fields).

One dataclass per stage type, with a nested one per object the schema nests, named after it; ``V`` marks where
the schema admits an expression in place of a value that is not a string. tests/stages/test_stage_fields.py
checks each against the schema: keys, required, enums, defaults and where an expression may stand.

The stage modules import this only when a plan or run needs it (``StageType.fields_class``): building some
twenty dataclasses costs milliseconds that ``qfrun validate``, which imports every stage type, does not need.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Generic, Literal, Union

from runner.stages.fields import V, written_as


# -- model ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFields:
    """A model stage's fields (``$defs/modelStage``): the schema requires exactly one of the four sources."""

    version_id: str | None = None
    import_: str | None = written_as("import", None)  # a Hugging Face folder, relative to the pipeline
    endpoint: str | None = None  # a preset model's endpoint (Qianfan only)
    name: str | None = None  # the model an import or a published training task goes into
    train_task_id: str | None = None
    checkpoint_step: int | None = None  # with train_task_id; None: its final step


# -- infer and evaluate: generation parameters ---------------------------------------------------------------
@dataclass(frozen=True)
class InferenceParams(Generic[V]):
    """An infer or evaluate stage's ``params`` (``$defs/inferenceParams``; the names are
    runner.vocabulary.INFERENCE_PARAMS): None leaves the platform's default."""

    temperature: float | V | None = None
    top_p: float | V | None = None
    top_k: int | V | None = None
    max_output_tokens: int | V | None = None
    do_sample: bool | V | None = None
    seed: int | V | None = None
    penalty_score: float | V | None = None


@dataclass(frozen=True)
class InferFields(Generic[V]):
    """An infer stage's fields (``$defs/inferStage``)."""

    model: str  # a model-producing stage, or a model stage that names a preset endpoint
    dataset: str
    params: InferenceParams[V] = dataclasses.field(default_factory=InferenceParams)
    batch_size: int | V | None = None  # None: the platform's
    input_bos_uri: str | None = None  # Qianfan: where a console dataset's {id, query} lines are
    output_bos_uri: str | None = None


# -- evaluate ------------------------------------------------------------------------------------------------
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
    params: InferenceParams[V] = dataclasses.field(default_factory=InferenceParams)


# -- compress ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompressFields(Generic[V]):
    """A compress stage's fields (``$defs/compressStage``)."""

    model: str
    strategy: Literal["quantization", "sparsity"]
    weight: Literal["INT8-PTQ", "W8A16C16", "W4A16C16"] | V | None = None  # quantization requires it
    dataset: str | None = None  # a calibration dataset
    name: str | None = None  # the new version's model name; None: the platform's


# -- deploy --------------------------------------------------------------------------------------------------
ResourceType = Literal[
    "CPU-1-1", "GPU-1-1", "GPU-1-2", "GPU-1-4", "GPU-1-8", "GPU-5-1",
    "GPU-5-2", "GPU-6-1", "GPU-6-2", "GPU-7-1", "GPU-7-2",
]  # fmt: skip


@dataclass(frozen=True)
class Billing(Generic[V]):
    """``$defs/billing``: prepaid for ``months``, or postpaid by ``charge`` (the schema requires the one that
    goes with the payment, and refuses the other)."""

    payment: Literal["prepaid", "postpaid"]
    months: int | V | None = None
    charge: Literal["computing_unit", "tokens"] | None = None


@dataclass(frozen=True)
class Service(Generic[V]):
    """``$defs/service``: what is bought, and what the platform task is created with."""

    name: str
    url_suffix: str
    billing: Billing[V]
    resource_type: ResourceType | V | None = None  # required unless billed by tokens
    region: Literal["bj", "bd"] | V | None = None
    replicas: int | V = 1
    qps: float | V | None = None


@dataclass(frozen=True)
class Message:
    role: Literal["user", "assistant", "system"]
    content: str


@dataclass(frozen=True)
class Expect:
    """Exactly one of the three (the schema's oneOf)."""

    contains: str | None = None
    equals: str | None = None
    regex: str | None = None


@dataclass(frozen=True)
class SmokeTest:
    messages: tuple[Message, ...]
    expect: Expect


@dataclass(frozen=True)
class DeployFields(Generic[V]):
    """A deploy stage's fields (``$defs/deployStage``)."""

    model: str
    service: Service[V]
    smoke_test: tuple[SmokeTest, ...] = ()


# -- finetune ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HyperParameters:
    """``$defs/hyperparameters`` (no expressions): None leaves the platform's default, which the schema
    documents for each (epochs 1, learning_rate 0.001, ...); qfrun sends only what the pipeline gives."""

    epochs: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    max_seq_len: int | None = None
    lora_rank: int | None = None
    lora_alpha: int | None = None
    lora_dropout: float | None = None
    warmup_ratio: float | None = None
    weight_decay: float | None = None
    scheduler: Literal["linear", "cosine", "constant"] | None = None
    logging_steps: int | None = None
    checkpoint_interval: int | None = None
    seed: int | None = None
    max_steps: int | None = None


@dataclass(frozen=True)
class FinetuneFields:
    """A finetune stage's fields (``$defs/finetuneStage``)."""

    model: str
    dataset: str
    validation_dataset: str | None = None
    method: Literal["lora", "full"] = "lora"
    hyperparameters: HyperParameters = dataclasses.field(default_factory=HyperParameters)
