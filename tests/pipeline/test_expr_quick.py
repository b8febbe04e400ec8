"""The quick expression reader (runner.pipeline.expr_quick) reads exactly what Jinja2 reads, or declines.

Validation trusts its trees instead of Jinja2's, so the property that matters is: whenever it gives a tree,
Jinja2 parses the same text without error into the same tree. Checked on every expression the repository's
pipelines, docs and tests write and on thousands of generated ones, valid and broken.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from jinja2.parser import Parser

from runner.pipeline import expr
from runner.pipeline.expr_quick import DECLINED, Tree, from_jinja, quick_tree, quick_value

ROOT = Path(__file__).resolve().parents[2]


def jinja_tree(source: str) -> Tree | None:
    """Jinja2's own reading, as parse() does it (None for a syntax error)."""
    from jinja2 import TemplateSyntaxError

    try:
        parser = Parser(expr._environment(), source, state="variable")
        node = parser.parse_expression()
        if not parser.stream.eos:
            return None
    except TemplateSyntaxError:
        return None
    return from_jinja(node)


def typed(tree: Tree) -> object:
    """A tree with each constant's type beside it: 1, 1.0 and True are equal in Python, not in a tree."""
    return (tree.kind, type(tree.payload).__name__, tree.payload, tuple(typed(c) for c in tree.children))


def assert_agrees(source: str) -> bool:
    quick = quick_tree(source)
    if quick is None:
        return False
    jinja = jinja_tree(source)
    assert jinja is not None, f"the quick reader accepts {source!r}, which Jinja2 refuses"
    assert typed(quick) == typed(jinja), source
    return True


def written_expressions() -> list[str]:
    found: set[str] = set()
    for folder in ("pipelines", "docs", "tests"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".yaml", ".yml", ".md", ".py"} and path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                found.update(m.strip() for m in re.findall(r"\$\{\{(.*?)\}\}", text, re.DOTALL))
    return sorted(source for source in found if source)


def test_every_expression_the_repository_writes_reads_the_same_and_most_need_no_jinja() -> None:
    sources = written_expressions()
    read = [source for source in sources if assert_agrees(expr.family_syntax(source))]
    assert len(sources) > 50
    assert len(read) > len(sources) * 0.7, sorted(set(sources) - set(read))


ATOMS = [
    "vars.x", "vars.min_accuracy", "stages.a.outputs.metrics.accuracy", "stages['a'].outputs['m']",
    "stages.fam['[*]']", "env.TOKEN", "matrix.lr", "1", "0", "2.5", "10", "'text'", '"dq"', "''", "true",
    "False", "none", "None", "x", "vars", "stages.a.b", "vars[vars.k]", "vars.list[0]", "vars.and",
]  # fmt: skip
BINARY = [" and ", " or ", " == ", " != ", " < ", " <= ", " > ", " >= ", " in ", " not in ", " + ", " - ",
          " * ", " / ", " // ", " % ", " ** ", " ~ "]  # fmt: skip
NOISE = ["(", ")", "[", "]", ".", ",", "|", "-", "+", "not ", " if ", " else ", " is ", "'", "1.", ".5",
         "0x1", "1e3", "1_0", "00", "é", "\\", "{", "}", "=", "!", "\n", "  ", "*"]  # fmt: skip


def generated(rng: random.Random, depth: int = 0) -> str:
    choice = rng.random()
    if depth > 3 or choice < 0.3:
        return rng.choice(ATOMS)
    if choice < 0.55:
        return generated(rng, depth + 1) + rng.choice(BINARY) + generated(rng, depth + 1)
    if choice < 0.65:
        return f"({generated(rng, depth + 1)})"
    if choice < 0.72:
        return rng.choice(["not ", "-", "+"]) + generated(rng, depth + 1)
    if choice < 0.82:
        arguments = rng.choice(["", "()", f"({generated(rng, depth + 1)})", "(1, 2)", "(1,)", "(a=1)"])
        return f"{generated(rng, depth + 1)} | {rng.choice(['int', 'default', 'center', 'x.y'])}{arguments}"
    if choice < 0.9:
        a, b, c = (generated(rng, depth + 1) for _ in range(3))
        return f"{a} if {b} else {c}" if rng.random() < 0.8 else f"{a} if {b}"
    if choice < 0.95:
        return f"{generated(rng, depth + 1)}[{generated(rng, depth + 1)}]"
    return "[" + ", ".join(generated(rng, depth + 1) for _ in range(rng.randrange(3))) + "]"


def mutated(rng: random.Random, source: str) -> str:
    position = rng.randrange(len(source) + 1)
    if rng.random() < 0.5 or not source:
        return source[:position] + rng.choice(NOISE) + source[position:]
    return source[:position] + source[position + 1 :]


@pytest.mark.parametrize("seed", range(4))
def test_generated_expressions_read_as_jinja_reads_them_or_are_left_to_it(seed: int) -> None:
    rng = random.Random(seed)
    read = declined = 0
    for _ in range(1500):
        source = generated(rng)
        if rng.random() < 0.4:
            source = mutated(rng, source)
        if assert_agrees(source):
            read += 1
        else:
            declined += 1
    assert read > 300  # both paths are exercised
    assert declined > 100


@pytest.mark.parametrize(
    "source",
    [
        "f(1)",  # a call
        "vars.x is defined",  # a test
        "[1, 2,]",  # a trailing comma
        "vars.x[1:2]",  # a slice
        "'a' 'b'",  # adjacent strings
        "'a\\n'",  # an escape
        "0x10",
        "1_000",
        "vars.x.0",
        "vars.x | default(1,)",
        "vars.x | f(a=1)",
        "vars.x if vars.y",
        "(1, 2)",
        "vars.é",
    ],
)
def test_what_lies_outside_the_subset_is_left_to_jinja(source: str) -> None:
    assert quick_tree(source) is None


def test_a_refused_filter_inside_an_allowed_one_is_found() -> None:
    with pytest.raises(expr.ExpressionError, match="filter 'center'"):
        list(expr.references("(vars.x | center(9)) | upper"))


def test_references_are_the_same_from_either_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    source = "stages.a.outputs.m >= vars.min and (env.T | lower) in stages['b'].outputs.names"
    expr.tree.cache_clear()
    quick = list(expr.references(source))
    monkeypatch.setattr(expr, "quick_tree", lambda source: None)
    expr.tree.cache_clear()
    jinja = list(expr.references(source))
    expr.tree.cache_clear()
    assert (
        quick
        == jinja
        == [
            expr.Reference("stages", "a"),
            expr.Reference("vars", "min"),
            expr.Reference("env", "T"),
            expr.Reference("stages", "b"),
        ]
    )


VALUES: list[object] = [0, 1, 2.5, -3, True, False, None, "", "abc", "x", [1, 2], ["a", "b"], {"m": 1}, {}]


def context(rng: random.Random) -> dict[str, object]:
    """What a plan or a run hands an expression: mappings, pending outputs, an unset variable."""
    from runner.run.inputs import _Environment, _PendingOutputs

    def value() -> object:
        return rng.choice(VALUES)

    outputs = {"metrics": {"accuracy": value()}, "m": value(), "names": [value(), value()]}
    stage_a = {"outputs": _PendingOutputs("a")} if rng.random() < 0.3 else {"outputs": outputs}
    return {
        "vars": {"x": value(), "min_accuracy": value(), "list": [value(), value()], "k": "x", "and": value()},
        "stages": {"a": stage_a, "b": {"outputs": {"names": [value()]}}, "fam[*]": [outputs]},
        "env": _Environment({"TOKEN": rng.choice(["secret", None]), "T": "Ab"}),
        "matrix": {"lr": value()},
    }


def outcome(source: str, values: dict[str, object], evaluate: object) -> tuple[object, ...]:
    assert callable(evaluate)
    try:
        value = evaluate(source, values)
    except expr.ExpressionError as error:
        return ("error", type(error).__name__, str(error))
    return ("value", type(value).__name__, repr(value))  # repr: Jinja2 may leave an Undefined in a list


@pytest.mark.parametrize("seed", range(3))
def test_generated_expressions_evaluate_as_jinja_evaluates_them(seed: int) -> None:
    rng = random.Random(seed)
    quick = 0
    for _ in range(1500):
        source = generated(rng)
        values = context(rng)
        tree = quick_tree(source)
        try:
            quick += tree is not None and quick_value(tree, values) is not DECLINED
        except expr.ExpressionError:
            quick += 1  # the context's own error (pending outputs, an unset variable), at the same read
        ours = outcome(source, values, expr.evaluate)
        assert ours == outcome(source, values, expr._evaluate_with_jinja), source
    assert quick > 150  # the quick evaluation is exercised, not only declined


def test_a_plan_of_common_expressions_compiles_no_template() -> None:
    from runner.run.inputs import _PendingOutputs

    expr._TEMPLATES.clear()
    values = {"vars": {"min": 0.5}, "stages": {"e": {"outputs": _PendingOutputs("e")}}, "env": {}}
    with pytest.raises(expr.NotKnownYet):
        expr.evaluate("stages.e.outputs.metrics.accuracy >= vars.min", values)
    values["stages"] = {"e": {"outputs": {"metrics": {"accuracy": 0.75}}}}
    assert expr.evaluate("stages.e.outputs.metrics.accuracy >= vars.min", values) is True
    assert expr._TEMPLATES == {}
