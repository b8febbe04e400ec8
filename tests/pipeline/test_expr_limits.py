"""Nothing an expression builds grows without bound (issue 12, item 4): each way to ask for a huge value is
refused before the value exists, with a sentence located at the field, and ordinary expressions still work.

"Before it exists" is proved by memory, not time: each refused expression would build about 10 MB, and the
test allows a small fraction of that to be allocated while it is refused.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from runner.cli import main
from runner.pipeline import expr
from runner.pipeline.expr_limits import MAX_SIZE, size

WORD = "w" * 3_200  # 3,200 x 3,200 characters is about 10 MB
CONTEXT: dict[str, Any] = {
    "vars": {"word": WORD, "tabs": "\t" * 3_200, "big": "b" * (MAX_SIZE * 3), "letters": ["a", "b"]},
    "stages": {},
    "env": {},
}


@pytest.mark.parametrize(
    "source",
    [
        "vars.word * 3200",
        "[vars.word] * 3200",  # few items, each large: the size counts through them
        "vars.word.replace('w', vars.word)",
        "vars.word | list | join(vars.word)",
        "vars.word.join(vars.word)",
        "vars.tabs.expandtabs(3200)",
        "vars.word.translate({119: vars.word})",
        "vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word"
        " ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word"
        " ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word"
        " ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word ~ vars.word",
        "([vars.word] * 31) + ([vars.word] * 31)",
        "vars.word.encode().hex().encode().hex().encode().hex().encode().hex().encode().hex()",
        "[vars.big, vars.big] | tojson",
        "([[[vars.letters]]] * 1000) | tojson(3200)",  # the indent repeats on every line, once per level
        "([[[vars.letters]]] * 1000) | tojson(vars.word)",
        "vars.big ~ ''",
    ],
)
def test_an_expression_that_would_build_a_value_over_the_cap_is_refused_before_building_it(
    source: str,
) -> None:
    expr._compiled(source)  # compiling allocates too; what is measured is the evaluation
    tracemalloc.start()
    try:
        with pytest.raises(expr.ExpressionError) as caught:
            expr.evaluate(source, CONTEXT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value).endswith(
        f"the value it would build is over the limit of {MAX_SIZE:,} characters or items"
    )
    assert repr(source[:77]).rstrip("'") in str(caught.value)  # it names the expression
    assert peak < 4 * MAX_SIZE * 4  # a few values at the cap (4 bytes a character at most), not 10 MB


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("vars.word.replace('w', 'v') | length", 3_200),
        ("vars.letters | join(', ')", "a, b"),
        ("vars.letters * 2", ["a", "b", "a", "b"]),
        ("'a' ~ 1 ~ vars.letters", "a1['a', 'b']"),
        ("vars.big | length", MAX_SIZE * 3),  # reading a large value is not building one
        ("vars.big.startswith('b')", True),
        ("(vars.word * 31) | length", 99_200),
        ("vars.letters + ['c']", ["a", "b", "c"]),
        ("vars.letters | tojson(1)", '[\n "a",\n "b"\n]'),
    ],
)
def test_values_within_the_cap_and_values_read_as_they_are_still_work(source: str, value: Any) -> None:
    assert expr.evaluate(source, CONTEXT) == value
    assert expr.evaluate("vars.big", CONTEXT) is CONTEXT["vars"]["big"]


def test_size_counts_through_nested_values_and_stops_soon_after_the_limit() -> None:
    assert size({"ab": ["cd", 12345, None]}) == 1 + 2 + 1 + 2 + 5 + 1  # a number counts its digits
    huge = ["x"] * 10_000_000
    assert MAX_SIZE < size(huge) <= MAX_SIZE + 2  # it stopped counting instead of walking ten million items


def test_the_cap_is_reported_at_the_field_by_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QFRUN_HOME", str(tmp_path / "home"))
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: cap\n"
        f"vars: {{word: {WORD}}}\n"
        "stages:\n"
        "  m: {type: model, version_id: amv-1}\n"
        "  d:\n"
        "    type: deploy\n"
        "    model: m\n"
        "    if: ${{ vars.word.replace('w', vars.word) == '' }}\n"
        "    service: {name: svc, url_suffix: ep, replicas: 1,\n"
        "              billing: {payment: postpaid, charge: tokens}}\n"
    )
    try:
        main(["plan", str(path)])
    except SystemExit:
        pass
    out, err = capsys.readouterr()
    assert (
        f"{path}:9:9: stages.d.if: \"vars.word.replace('w', vars.word) == ''\" failed: the value it would "
        f"build is over the limit of {MAX_SIZE:,} characters or items"
    ) in out + err
    assert "Traceback" not in out + err
