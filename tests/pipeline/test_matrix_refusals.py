"""``matrix:`` refusals not covered in test_matrix.py: each bad key, list, include or exclude entry is one
issue at its own file:line:col, and a matrix that would make no member, or two members of one id, is
refused before any stage exists."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.errors import PipelineError
from runner.pipeline.spec import Pipeline, load_pipeline

HEAD = "version: 1\nname: m\nplatform: local\ndatasets: {d: {qianfan_dataset_id: ds-1}}\nstages:\n"


def _path(tmp_path: Path, stages: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + textwrap.indent(textwrap.dedent(stages), "  "))
    return path


def load(tmp_path: Path, stages: str) -> Pipeline:
    return load_pipeline(_path(tmp_path, stages))


def issues(tmp_path: Path, stages: str) -> list[str]:
    with pytest.raises(PipelineError) as raised:
        load(tmp_path, stages)
    prefix = f"{tmp_path / 'p.yaml'}:"
    found = [str(issue) for issue in raised.value.issues]
    assert all(text.startswith(prefix) for text in found), found
    return [text.removeprefix(prefix) for text in found]


@pytest.mark.parametrize(
    ("matrix", "says"),
    [
        ("{1a: [x]}", "'1a' is not a matrix key: letters, digits and '_', not starting with a digit."),
        ("{a-b: [x]}", "'a-b' is not a matrix key"),
        ("{a: x}", "matrix.a must be a list of values."),
        ("{a: [[1, 2]]}", "names a member's stage id, so it must be a string or number"),
        ("{a: [{k: v}]}", "names a member's stage id"),
        ("{a: ['']}", "names a member's stage id"),
        ("{a: ['" + "x" * 65 + "']}", "names a member's stage id"),
        ("{a: [x], include: x}", "matrix.include must be a list of mappings of matrix keys to values."),
        ("{a: [x], include: [{}]}", "matrix.include must be a list of mappings"),
        ("{a: [x], exclude: [1]}", "matrix.exclude must be a list of mappings"),
    ],
)
def test_each_malformed_part_of_a_matrix_is_one_issue_naming_it(
    tmp_path: Path, matrix: str, says: str
) -> None:
    found = issues(tmp_path, f"s: {{type: model, version_id: '${{{{ matrix.a }}}}', matrix: {matrix}}}\n")
    assert any(says in text for text in found), found


def test_a_reserved_word_is_no_matrix_key_in_an_include(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        "s: {type: model, version_id: '${{ matrix.a }}', matrix: {a: [x], include: [{exclude: 1}]}}\n",
    )
    assert any("'exclude' is not a matrix key." in text for text in found), found


def test_excluding_every_combination_leaves_no_member_and_says_so(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        "s: {type: model, version_id: '${{ matrix.a }}', matrix: {a: [x, y], exclude: [{a: x}, {a: y}]}}\n",
    )
    assert any("the matrix has no combination left" in text for text in found), found


def test_an_include_that_repeats_one_it_added_is_a_duplicate(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """\
        s:
          type: model
          version_id: ${{ matrix.a }}-${{ matrix.b }}
          matrix:
            a: [x]
            include: [{a: y, b: '1'}, {a: y, b: '1'}]
        """,
    )
    assert any("this include repeats a combination listed above" in text for text in found), found


def test_an_include_adds_a_member_with_a_value_that_cannot_be_an_id_is_refused(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """\
        s:
          type: model
          version_id: ${{ matrix.a }}
          matrix:
            a: [x]
            include: [{a: 'not an id'}]
        """,
    )
    assert any("names a member's stage id" in text for text in found), found


def test_values_that_print_alike_would_give_two_members_one_id(tmp_path: Path) -> None:
    found = issues(tmp_path, "s: {type: model, version_id: '${{ matrix.a }}', matrix: {a: ['1', 1]}}\n")
    assert any("duplicate combination" in text for text in found), found


def test_several_problems_of_one_matrix_are_reported_together(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        "s: {type: model, version_id: '${{ matrix.a }}', matrix: {a: [], 9b: [x], c: nope}}\n",
    )
    assert len(found) >= 3, found


def test_an_include_only_matrix_reads_each_entrys_own_keys(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        s:
          type: model
          version_id: v-${{ matrix.size }}
          matrix:
            include: [{size: 7b}, {size: 13b}]
        """,
    )
    assert list(pipeline.families["s"]) == ["s@size=7b", "s@size=13b"]
    assert [pipeline.stages[m].fields["version_id"] for m in pipeline.families["s"]] == ["v-7b", "v-13b"]


def test_an_expression_that_reads_more_than_the_matrix_is_left_for_the_run(tmp_path: Path) -> None:
    path = _path(
        tmp_path,
        """\
        base: {type: model, version_id: amv-1}
        s:
          type: compress
          model: base
          strategy: quantization
          weight: ${{ matrix.w }}
          matrix: {w: [W8A16C16, W4A16C16]}
          if: ${{ matrix.w != 'W8A16C16' or vars.always }}
        """,
    )
    path.write_text(path.read_text().replace("stages:\n", "vars: {always: false}\nstages:\n", 1))
    pipeline = load_pipeline(path)
    member = pipeline.stages["s@w=W4A16C16"]
    assert member.fields["weight"] == "W4A16C16"  # read only the matrix: substituted now
    assert "matrix.w" in str(member.condition)  # reads vars too: evaluated when the member runs
    assert member.matrix == {"w": "W4A16C16"}


def test_a_stage_list_naming_a_family_and_a_plain_stage_keeps_both_in_order(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        base: {type: model, version_id: amv-1}
        w:
          type: compress
          model: base
          strategy: quantization
          weight: ${{ matrix.w }}
          matrix: {w: [W8A16C16, W4A16C16]}
        scores:
          type: evaluate
          models: [base, w]
          dataset: d
          evaluators: [{kind: rule, accuracy: true}]
        """,
    )
    assert pipeline.stages["scores"].fields["models"] == ["base", "w@w=W8A16C16", "w@w=W4A16C16"]
    assert set(pipeline.stages["scores"].upstream) == {"base", "w@w=W8A16C16", "w@w=W4A16C16"}
