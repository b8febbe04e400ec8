"""OpenCompass-style benchmarks: the file format, its checks, and the subset that ships with qfrun.

A benchmark is one JSON file with the shape of an OpenCompass dataset config (``reader_cfg``, ``infer_cfg``,
``eval_cfg``) and its rows under ``splits``, so it travels with an evaluation task as one value and runs
offline. The parts OpenCompass names by class are named here by the same class names:

- ``reader_cfg``: ``input_columns``, ``output_column``, ``train_split`` (the few-shot pool), ``test_split``.
- ``infer_cfg.prompt_template.template``: a string (generation) or one string per label (likelihood), with
  ``{column}`` fields and ``ice_token`` where the in-context examples go; ``ice_template`` renders each one.
- ``infer_cfg.retriever``: ``ZeroRetriever`` (zero-shot) or ``FixKRetriever`` with ``fix_id_list``.
- ``infer_cfg.inferencer``: ``GenInferencer`` (``max_out_len``) or ``PPLInferencer`` (the label whose text the
  model finds likeliest).
- ``eval_cfg.evaluator``: ``AccEvaluator``, ``EMEvaluator`` or ``ContainsEvaluator`` (reference within the
  answer; qfrun's own); ``pred_postprocessor``: one of ``POSTPROCESSORS``.

This module is light (no torch): ``qfrun validate`` and the runner read benchmarks through it, the engine
(runner.local.engine.opencompass) runs them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILT_IN_DIR = Path(__file__).resolve().parent / "data"  # a link to the repository's data/benchmarks
INFERENCERS = ("GenInferencer", "PPLInferencer")
RETRIEVERS = ("ZeroRetriever", "FixKRetriever")
EVALUATORS = {"AccEvaluator": "accuracy", "EMEvaluator": "exact_match", "ContainsEvaluator": "contains"}
POSTPROCESSORS = ("first_line", "first_number", "first_capital", "general")
MAX_ITEMS = 5000  # per split: a benchmark travels inside the task's parameters
MAX_SHOTS = 16
MAX_BENCHMARK_BYTES = 8 * 2**20  # a benchmark file travels inside the evaluation task's parameters
_ABBR = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # a metric name's prefix: `<abbr>_accuracy`


class BenchmarkError(ValueError):
    """A benchmark file that does not have the format; the message names the file and the field."""


@dataclass(frozen=True)
class Benchmark:
    """A checked benchmark: what the engine needs and nothing else."""

    abbr: str
    input_columns: tuple[str, ...]
    output_column: str
    template: str | dict[str, str]  # one string (generation) or label -> string (likelihood)
    ice_template: str | dict[str, str] | None
    ice_token: str | None
    shots: tuple[int, ...]  # indices into the train split (FixKRetriever), empty for zero-shot
    inferencer: str
    max_out_len: int
    metric: str  # accuracy, exact_match or contains
    postprocessor: str | None
    train: tuple[dict[str, str], ...]
    test: tuple[dict[str, str], ...]

    @property
    def metric_name(self) -> str:
        """The metric this benchmark adds to the evaluation (``arith_mc_accuracy``)."""
        return f"{self.abbr}_{self.metric}"


def built_in_names() -> list[str]:
    """The benchmarks that ship with qfrun, by name."""
    return sorted(path.stem for path in BUILT_IN_DIR.glob("*.json"))


def is_path(reference: str) -> bool:
    """Whether a ``benchmarks`` entry names a repository file rather than a built-in benchmark."""
    return reference.endswith(".json")


def built_in_text(name: str) -> str:
    """A built-in benchmark's file text; a name not shipped is a clear error."""
    if name not in built_in_names():
        raise BenchmarkError(
            f"There is no built-in benchmark {name!r}; the built-in ones are {', '.join(built_in_names())} "
            "(or name a .json file of yours)."
        )
    return (BUILT_IN_DIR / f"{name}.json").read_text(encoding="utf-8")


def built_in_sha256(name: str) -> str | None:
    """A built-in benchmark's content hash, as a repository benchmark file's (its bytes), for the stage's
    fingerprint; None for a name that is not shipped (the stage fails on it before creating a task)."""
    if name not in built_in_names():
        return None
    from runner import content_hash  # hashing is a plan's and a run's: validate does without hashlib

    return content_hash.of_file(BUILT_IN_DIR / f"{name}.json", MAX_BENCHMARK_BYTES)


def parse_benchmark(text: str, source: str) -> Benchmark:
    """Check a benchmark file's text and return it; any problem is one sentence naming ``source``."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise BenchmarkError(f"{source}: not JSON ({error.msg} at line {error.lineno}).") from None
    return _Reader(source).benchmark(raw)


class _Reader:
    """Reads one benchmark's fields, each error worded ``source: field: problem``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> BenchmarkError:
        return BenchmarkError(f"{self.source}: {where}: {problem}")

    def obj(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, "should be an object.")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, "should be a non-empty string.")
        return value

    def choice(self, value: Any, where: str, allowed: tuple[str, ...] | Mapping[str, str]) -> str:
        if value not in allowed:
            raise self.fail(where, f"is {value!r}; use one of {', '.join(allowed)}.")
        return str(value)

    def benchmark(self, raw: Any) -> Benchmark:
        top = self.obj(raw, "the file")
        abbr = self.text(top.get("abbr"), "abbr")
        if not _ABBR.match(abbr):
            raise self.fail(
                "abbr", f"{abbr!r} should be lower-case letters, digits and _ (it names metrics)."
            )
        reader = self.obj(top.get("reader_cfg"), "reader_cfg")
        columns = reader.get("input_columns")
        if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
            raise self.fail("reader_cfg.input_columns", "should be a non-empty list of column names.")
        output = self.text(reader.get("output_column"), "reader_cfg.output_column")
        infer = self.obj(top.get("infer_cfg"), "infer_cfg")
        inferencer = self.obj(infer.get("inferencer"), "infer_cfg.inferencer")
        kind = self.choice(inferencer.get("type"), "infer_cfg.inferencer.type", INFERENCERS)
        max_out = inferencer.get("max_out_len", 16)
        if not isinstance(max_out, int) or isinstance(max_out, bool) or not 1 <= max_out <= 512:
            raise self.fail("infer_cfg.inferencer.max_out_len", "should be a whole number from 1 to 512.")
        prompt = self.obj(infer.get("prompt_template"), "infer_cfg.prompt_template")
        template = self.template(prompt.get("template"), "infer_cfg.prompt_template.template")
        if kind == "PPLInferencer" and not isinstance(template, dict):
            raise self.fail(
                "infer_cfg.prompt_template.template", "a PPLInferencer needs one template per label."
            )
        if kind == "GenInferencer" and isinstance(template, dict):
            raise self.fail(
                "infer_cfg.prompt_template.template", "a GenInferencer needs one template string."
            )
        ice_token = prompt.get("ice_token")
        if ice_token is not None:
            ice_token = self.text(ice_token, "infer_cfg.prompt_template.ice_token")
        ice = infer.get("ice_template")
        ice_template = (
            None
            if ice is None
            else self.template(
                self.obj(ice, "infer_cfg.ice_template").get("template"), "infer_cfg.ice_template"
            )
        )
        splits = self.obj(top.get("splits"), "splits")
        train_split, test_split = (
            str(reader.get("train_split", "train")),
            str(reader.get("test_split", "test")),
        )
        train = self.rows(splits.get(train_split), train_split, columns, output, False)
        test = self.rows(splits.get(test_split), test_split, columns, output, True)
        shots = self.shots(self.obj(infer.get("retriever"), "infer_cfg.retriever"), len(train))
        if shots and (ice_template is None or ice_token is None):
            raise self.fail(
                "infer_cfg", "a FixKRetriever needs an ice_template and the prompt template's ice_token."
            )
        evaluation = self.obj(top.get("eval_cfg"), "eval_cfg")
        evaluator = self.obj(evaluation.get("evaluator"), "eval_cfg.evaluator")
        metric = EVALUATORS[self.choice(evaluator.get("type"), "eval_cfg.evaluator.type", EVALUATORS)]
        post = evaluation.get("pred_postprocessor")
        postprocessor = None
        if post is not None:
            postprocessor = self.choice(
                self.obj(post, "eval_cfg.pred_postprocessor").get("type"),
                "eval_cfg.pred_postprocessor.type",
                POSTPROCESSORS,
            )
        labels = set(template) if isinstance(template, dict) else None
        if labels is not None:
            for number, row in enumerate(test):
                if row[output] not in labels:
                    raise self.fail(
                        f"splits {test_split} row {number + 1}",
                        f"the answer {row[output]!r} is not a label of the template "
                        f"({', '.join(sorted(labels))}).",
                    )
        self.fields_known(template, "infer_cfg.prompt_template.template", tuple(columns), ice_token)
        if ice_template is not None:
            self.fields_known(ice_template, "infer_cfg.ice_template", (*columns, output), None)
        return Benchmark(
            abbr=abbr,
            input_columns=tuple(columns),
            output_column=output,
            template=template,
            ice_template=ice_template,
            ice_token=ice_token,
            shots=shots,
            inferencer=kind,
            max_out_len=max_out,
            metric=metric,
            postprocessor=postprocessor,
            train=train,
            test=test,
        )

    def template(self, value: Any, where: str) -> str | dict[str, str]:
        if isinstance(value, str) and value:
            return value
        if isinstance(value, Mapping) and value and all(isinstance(v, str) and v for v in value.values()):
            return {str(label): str(text) for label, text in value.items()}
        raise self.fail(where, "should be a template string or an object of label -> template string.")

    def fields_known(
        self, template: str | dict[str, str], where: str, columns: tuple[str, ...], ice_token: str | None
    ) -> None:
        """Every ``{field}`` a template uses is a column (a typo would otherwise fail at run time)."""
        import string  # only for a benchmark file's templates: a pipeline without one does without it

        texts = template.values() if isinstance(template, dict) else [template]
        for text in texts:
            body = text.replace(ice_token, "") if ice_token else text
            try:
                names = {name for _, name, _, _ in string.Formatter().parse(body) if name is not None}
            except ValueError as error:
                raise self.fail(where, f"is not a valid template ({error}).") from None
            unknown = sorted(name for name in names if name not in columns)
            if unknown:
                raise self.fail(
                    where, f"uses {', '.join(unknown)}, not among the columns {', '.join(columns)}."
                )

    def rows(
        self, value: Any, split: str, columns: list[str], output: str, required: bool
    ) -> tuple[dict[str, str], ...]:
        if value is None and not required:
            return ()
        if not isinstance(value, list) or (required and not value):
            raise self.fail(f"splits ({split})", "should be a non-empty list of rows.")
        if len(value) > MAX_ITEMS:
            raise self.fail(
                f"splits ({split})", f"has {len(value)} rows; a benchmark takes {MAX_ITEMS} at most."
            )
        rows = []
        for number, row in enumerate(value, start=1):
            entry = self.obj(row, f"splits {split} row {number}")
            missing = [
                name for name in (*columns, output) if not isinstance(entry.get(name), str | int | float)
            ]
            if missing:
                raise self.fail(f"splits {split} row {number}", f"lacks {', '.join(missing)}.")
            rows.append({name: str(entry[name]) for name in (*columns, output)})
        return tuple(rows)

    def shots(self, retriever: Mapping[str, Any], pool: int) -> tuple[int, ...]:
        kind = self.choice(retriever.get("type"), "infer_cfg.retriever.type", RETRIEVERS)
        if kind == "ZeroRetriever":
            return ()
        ids = retriever.get("fix_id_list")
        if (
            not isinstance(ids, list)
            or not 1 <= len(ids) <= MAX_SHOTS
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < pool for i in ids)
        ):
            raise self.fail(
                "infer_cfg.retriever.fix_id_list",
                f"should list 1 to {MAX_SHOTS} row numbers of the train split, from 0 to {pool - 1}.",
            )
        return tuple(ids)
