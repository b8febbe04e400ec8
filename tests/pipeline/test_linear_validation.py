"""Validation is linear in the file: inputs that used to cost time quadratic in their size (issue 12, item 4).

Each test counts the operations that made them quadratic rather than timing them; how long validation takes
per MB is measured by ``bench/run.py`` (``12.4`` rows), never asserted here.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest

from runner.errors import Issue, Location, PipelineError
from runner.pipeline import schemacheck, spec
from runner.pipeline.schemacheck import compile_check


def unknown_needs_pipeline(count: int) -> str:
    needs = ", ".join(f"missing_{index}" for index in range(count))
    return (
        "version: 1\nname: p\nstages:\n"
        "  base: {type: model, version_id: amv-1}\n"
        f"  other: {{type: model, version_id: amv-2, needs: [{needs}]}}\n"
    )


def test_only_the_first_unknown_names_get_a_guess_and_every_one_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guesses = []
    real = difflib.get_close_matches

    def counted(word: str, possibilities: Any, *args: Any, **kwargs: Any) -> list[str]:
        guesses.append(word)
        return real(word, possibilities, *args, **kwargs)

    monkeypatch.setattr(difflib, "get_close_matches", counted)
    path = tmp_path / "p.yaml"
    path.write_text(unknown_needs_pipeline(300))
    with pytest.raises(PipelineError) as caught:
        spec.load_pipeline(path)
    messages = [issue.message for issue in caught.value.issues]
    assert len(guesses) == spec.MAX_HINTS  # each guess reads every stage id: unbounded, they were quadratic
    assert sum("there is no stage 'missing_" in message for message in messages) == 300
    assert messages[-1].endswith("there is no stage 'missing_299'.")


def test_a_close_name_still_gets_its_guess() -> None:
    unknown = spec._Unknown()
    assert unknown("stage", "bsae", ["base", "other"]) == "there is no stage 'bsae'; did you mean 'base'?"


def test_unique_items_compares_no_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    compared = []
    real = schemacheck._equal

    def counted(one: Any, two: Any) -> bool:
        compared.append((one, two))
        return real(one, two)

    monkeypatch.setattr(schemacheck, "_equal", counted)
    check = compile_check({"type": "array", "uniqueItems": True})
    assert check([f"stage_{index}" for index in range(5_000)])  # 12.5 million pairs compared one by one
    assert compared == []


@pytest.mark.parametrize(
    ("items", "unique"),
    [
        (["a", "b"], True),
        (["a", "a"], False),
        ([1, 1.0], False),  # jsonschema: equal numbers are equal whatever their type
        ([1, True], True),  # but a boolean is not a number
        ([0, False], True),
        ([[1, "a"], [1, "a"]], False),
        ([{"k": [1]}, {"k": [1.0]}], False),
        ([{"k": 1}, {"k": True}], True),
        ([None, None], False),
    ],
)
def test_unique_items_keeps_jsonschema_equality(items: list[Any], unique: bool) -> None:
    assert compile_check({"type": "array", "uniqueItems": True})(items) is unique


def test_issues_are_sorted_by_file_line_column_then_message() -> None:
    issues = [
        Issue(Location("b.yaml", 1, 1), "z"),
        Issue(Location("a.yaml", 2, 1), "a"),
        Issue(Location("a.yaml", 1, 5), "b"),
        Issue(Location("a.yaml", 1, 5), "a"),
        Issue(Location("a.yaml", 1, 5), "a"),
        Issue(Location("a.yaml"), "whole file"),
    ]
    assert [str(issue) for issue in PipelineError(issues).issues] == [
        "a.yaml: whole file",
        "a.yaml:1:5: a",
        "a.yaml:1:5: b",
        "a.yaml:2:1: a",
        "b.yaml:1:1: z",
    ]


def test_loading_pauses_the_cyclic_collector_and_always_restores_it(tmp_path: Path) -> None:
    import gc

    from runner.errors import PipelineError
    from runner.pipeline.spec import load_pipeline

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nstages:\n  a: {type: nope}\n", encoding="utf-8")
    try:
        assert gc.isenabled()
        with pytest.raises(PipelineError):
            load_pipeline(bad)
        assert gc.isenabled()
        gc.disable()
        with pytest.raises(PipelineError):
            load_pipeline(bad)
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
