"""Expressions: the sandbox refuses escapes and huge values, types survive, references are found."""

from __future__ import annotations

from typing import Any

import pytest

from runner.pipeline import expr

CONTEXT: dict[str, Any] = {
    "vars": {"replicas": 2, "ratio": 0.5, "enabled": True, "name": "qa"},
    "stages": {"base": {"outputs": {"version_id": "amv-1", "metrics": {"accuracy": 0.9}}}},
    "env": {"REGION": "bj"},
}


@pytest.mark.parametrize(
    "source",
    [
        "vars.__class__",
        "vars.__class__.__mro__",
        "vars.name.__class__.__base__",
        "().__class__",
        "vars.replicas.__add__(1)",
        "stages.base.outputs.__init__",
    ],
)
def test_sandbox_refuses_attribute_escapes(source: str) -> None:
    with pytest.raises(expr.ExpressionError, match="not allowed"):
        expr.evaluate(source, CONTEXT)


@pytest.mark.parametrize(
    "source",
    [
        "'a' * 10**9",
        "10**9 * 'a'",
        "[1] * 10**9",
        "2 ** 100000",
        "(9 ** 64) ** 64",
        "vars.name.center(10**9)",
        "vars.name.ljust(10**9)",
        "'{:>999999999}'.format(1)",
        "'%999999999d' % 1",
    ],
)
def test_sandbox_refuses_values_too_large_to_build(source: str) -> None:
    with pytest.raises(expr.ExpressionError) as caught:
        expr.evaluate(source, CONTEXT)
    assert repr(source) in str(caught.value)  # the message names the expression


@pytest.mark.parametrize("source", ["range(10**9)", "lipsum(10**6)", "cycler(1)", "dict(a=1)"])
def test_sandbox_offers_no_global_functions(source: str) -> None:
    with pytest.raises(expr.ExpressionError):
        expr.evaluate(source, CONTEXT)


def test_filters_that_build_large_values_are_refused_at_validation() -> None:
    with pytest.raises(expr.ExpressionError, match="filter 'center'"):
        list(expr.references("vars.name | center(1000000000)"))
    assert [r.name for r in expr.references("vars.name | upper")] == ["name"]


def test_small_arithmetic_and_method_calls_still_work() -> None:
    assert expr.evaluate("2 ** 10", CONTEXT) == 1024
    assert expr.evaluate("'ab' * 3", CONTEXT) == "ababab"
    assert expr.evaluate("7 % 3", CONTEXT) == 1
    assert expr.evaluate("vars.name.upper()", CONTEXT) == "QA"
    assert expr.evaluate("vars.ratio * 4 | round", CONTEXT) == 2.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${{ vars.replicas }}", 2),
        ("  ${{ vars.replicas * 2 }} ", 4),
        ("${{ vars.enabled }}", True),
        ("${{ vars.ratio }}", 0.5),
        ("${{ stages.base.outputs.metrics.accuracy >= 0.5 }}", True),
        ("${{ stages.base.outputs.metrics }}", {"accuracy": 0.9}),
    ],
)
def test_whole_string_expression_keeps_its_type(text: str, expected: Any) -> None:
    value = expr.render(text, CONTEXT)
    assert value == expected
    assert type(value) is type(expected)


def test_embedded_expressions_are_interpolated_as_text() -> None:
    text = "svc-${{ vars.name }}-${{ vars.replicas }}-${{ vars.enabled }}-${{ env.REGION }}"
    assert expr.render(text, CONTEXT) == "svc-qa-2-true-bj"


def test_missing_output_is_an_error_naming_it() -> None:
    with pytest.raises(expr.ExpressionError, match="version"):
        expr.evaluate("stages.base.outputs.version", CONTEXT)
    with pytest.raises(expr.ExpressionError, match="ghost"):
        expr.render("${{ stages.ghost.outputs.x }}", CONTEXT)


def test_missing_output_is_not_rendered_as_empty_text() -> None:
    with pytest.raises(expr.ExpressionError, match="nothing"):
        expr.render("model-${{ stages.base.outputs.nothing }}", CONTEXT)


def test_type_error_at_evaluation_is_an_expression_error() -> None:
    with pytest.raises(expr.ExpressionError, match="failed"):
        expr.evaluate("vars.name + 1", CONTEXT)


def test_references_find_stages_vars_and_env() -> None:
    refs = set(expr.references("stages.w4.outputs.version_id ~ vars.suffix ~ env.REGION ~ vars['k']"))
    assert refs == {
        expr.Reference("stages", "w4"),
        expr.Reference("vars", "suffix"),
        expr.Reference("env", "REGION"),
        expr.Reference("vars", "k"),
    }


@pytest.mark.parametrize(
    ("source", "expected"),
    [("vars.limit", ("vars", "limit")), ("env.TOKEN", ("env", "TOKEN")), ("vars['x']", ("vars", "x"))],
)
def test_references_find_a_reference_that_is_the_whole_expression(
    source: str, expected: tuple[str, str]
) -> None:
    assert list(expr.references(source)) == [expr.Reference(*expected)]


def test_references_refuse_names_outside_the_roots() -> None:
    with pytest.raises(expr.ExpressionError, match="only vars, stages, env and"):
        list(expr.references("os.environ"))
    with pytest.raises(expr.ExpressionError, match="only vars, stages, env and"):
        list(expr.references("secret"))


def test_references_refuse_a_computed_key() -> None:
    with pytest.raises(expr.ExpressionError, match="computed key"):
        list(expr.references("vars[vars.name]"))


@pytest.mark.parametrize("source", ["vars.limit +", "(vars.a", "", "vars.a vars.b"])
def test_syntax_errors_are_expression_errors(source: str) -> None:
    with pytest.raises(expr.ExpressionError):
        expr.parse(source)


def test_find_returns_every_expression_source() -> None:
    assert expr.find("a ${{ vars.x }} b ${{stages.s.outputs.y}}") == ["vars.x", "stages.s.outputs.y"]


@pytest.mark.parametrize(
    ("value", "expected"), [("false", False), ("0", False), ("", False), ("yes", True), (0, False), (2, True)]
)
def test_truthy_reads_yaml_like_strings(value: Any, expected: bool) -> None:
    assert expr.truthy(value) is expected


@pytest.mark.parametrize(
    "source", ["stages.w4.output.version_id", "stages.w4.status", "stages['w4']['result']"]
)
def test_references_refuse_anything_of_a_stage_but_its_outputs(source: str) -> None:
    with pytest.raises(expr.ExpressionError, match=r"only stages.<id>.outputs.<name>"):
        list(expr.references(source))


def test_an_expression_longer_than_the_limit_is_refused() -> None:
    source = " ~ ".join(["'a' * 100000"] * 400)  # would build 40 MB of text
    with pytest.raises(expr.ExpressionError, match="characters long; the limit is 2000"):
        expr.parse(source)
    with pytest.raises(expr.ExpressionError, match="the limit is 2000"):
        expr.evaluate(source, CONTEXT)


def test_expressions_that_differ_only_in_the_names_they_read_share_one_compiled_template() -> None:
    context = {
        "vars": {"low": 0.5, "high": 0.95},
        "stages": {name: {"outputs": {"accuracy": value}} for name, value in (("a", 0.9), ("b", 0.4))},
        "env": {},
    }
    expr._compiled.cache_clear()
    expr._TEMPLATES.clear()
    # A filter: Jinja2 evaluates these (runner.pipeline.expr_quick declines them).
    assert expr.evaluate("stages.a.outputs.accuracy | float >= vars.low", context) is True
    assert expr.evaluate("stages.b.outputs.accuracy | float >= vars.low", context) is False
    assert expr.evaluate("stages.a.outputs.accuracy | float >= vars.high", context) is False
    assert len(expr._TEMPLATES) == 1  # Jinja2 compiled once for the three
    with pytest.raises(expr.ExpressionError, match="'dict object' has no attribute 'c'"):
        expr.evaluate("stages.c.outputs.accuracy >= vars.low", context)
