"""``matrix:`` fan-out (runner.pipeline.matrix): members, ids, include/exclude, references, errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.errors import PipelineError, UsageError
from runner.pipeline import dag
from runner.pipeline.spec import Pipeline, load_pipeline
from runner.run.decide import select_stages
from runner.run.inputs import Inputs, Upstream

HEAD = "version: 1\nname: m\nplatform: local\ndatasets: {d: {qianfan_dataset_id: ds-1}}\nstages:\n"


def load(tmp_path: Path, stages: str) -> Pipeline:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + textwrap.indent(textwrap.dedent(stages), "  "))
    return load_pipeline(path)


def errors(tmp_path: Path, stages: str) -> list[str]:
    with pytest.raises(PipelineError) as raised:
        load(tmp_path, stages)
    return [str(issue) for issue in raised.value.issues]


def values(pipeline: Pipeline, family: str) -> list[dict[str, object]]:
    return [
        {k: v for k, v in pipeline.stages[m].matrix.items() if v is not None}
        for m in pipeline.families[family]
    ]


def test_lists_make_every_combination_first_key_slowest_with_ids_in_alphabetical_key_order(
    tmp_path: Path,
) -> None:
    pipeline = load(
        tmp_path,
        """\
        w4:
          type: model
          version_id: v-${{ matrix.size }}-${{ matrix.dataset }}
          matrix: {size: [7b, 13b], dataset: [eval, hard]}
        """,
    )
    assert list(pipeline.stages) == [
        "w4@dataset=eval,size=7b",
        "w4@dataset=hard,size=7b",
        "w4@dataset=eval,size=13b",
        "w4@dataset=hard,size=13b",
    ]
    member = pipeline.stages["w4@dataset=hard,size=13b"]
    assert member.family == "w4"
    assert member.body["version_id"] == "v-13b-hard"
    assert "matrix" not in member.body


def test_reordering_the_matrix_keys_keeps_every_member_id(tmp_path: Path) -> None:
    one = load(
        tmp_path,
        "w4: {type: model, version_id: '${{ matrix.a }}${{ matrix.b }}', matrix: {a: [1, 2], b: [x]}}\n",
    )
    two = load(
        tmp_path,
        "w4: {type: model, version_id: '${{ matrix.a }}${{ matrix.b }}', matrix: {b: [x], a: [1, 2]}}\n",
    )
    assert set(one.stages) == set(two.stages) == {"w4@a=1,b=x", "w4@a=2,b=x"}


def test_include_and_exclude_follow_github_actions_documented_example(tmp_path: Path) -> None:
    # The example of GitHub's "Expanding or adding matrix configurations", with its documented result.
    pipeline = load(
        tmp_path,
        """\
        s:
          type: model
          version_id: ${{ matrix.fruit }}
          description: ${{ matrix.animal }} ${{ matrix.color }} ${{ matrix.shape }}
          matrix:
            fruit: [apple, pear]
            animal: [cat, dog]
            include:
              - color: green
              - color: pink
                animal: cat
              - fruit: apple
                shape: circle
              - fruit: banana
              - fruit: banana
                animal: cat
        """,
    )
    assert values(pipeline, "s") == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]
    assert list(pipeline.families["s"])[-2:] == ["s@fruit=banana", "s@animal=cat,fruit=banana"]


def test_exclude_removes_partial_matches_before_include_adds_back(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        s:
          type: model
          version_id: ${{ matrix.os }}-${{ matrix.v }}
          matrix:
            os: [mac, win]
            v: [1, 2, 3]
            exclude: [{os: mac, v: 1}, {os: win}]
            include: [{os: win, v: 3}]
        """,
    )
    assert values(pipeline, "s") == [{"os": "mac", "v": 2}, {"os": "mac", "v": 3}, {"os": "win", "v": 3}]


def test_a_field_whose_matrix_value_is_missing_is_left_out(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        base: {type: model, version_id: v}
        c:
          type: compress
          model: base
          strategy: ${{ matrix.strategy }}
          weight: ${{ matrix.weight }}
          matrix:
            strategy: [quantization, sparsity]
            include: [{strategy: quantization, weight: W4A16C16}]
        """,
    )
    assert pipeline.stages["c@strategy=quantization"].fields["weight"] == "W4A16C16"
    assert "weight" not in pipeline.stages["c@strategy=sparsity"].fields


@pytest.mark.parametrize(
    ("stages", "line", "col", "says"),
    [
        ("s: {type: model, version_id: '${{ matrix.a }}', matrix: {a: []}}\n", 6, 63, "matrix.a is empty"),
        ("s: {type: model, version_id: '${{ matrix.a }}', matrix: {a: [1, 1]}}\n", 6, 67, "listed twice"),
        (
            "s: {type: model, version_id: '${{ matrix.a }}', matrix: {a: [1, 2], exclude: [{a: 3}]}}\n",
            6,
            81,
            "this exclude matches no combination of the lists (a=3)",
        ),
        (
            "s: {type: model, version_id: '${{ matrix.a }}', matrix: {a: [1], include: [{a: 1, typo: x}]}}\n",
            6,
            91,
            "no field of stages.s reads ${{ matrix.typo }}, so this key is never used",
        ),
        (
            "s: {type: model, version_id: v, matrix: {a: [1, 2]}}\n",
            6,
            47,
            "s@a=1 and s@a=2 would do the same work: no field reads ${{ matrix.a }}",
        ),
        (
            "s: {type: model, version_id: '${{ matrix.a }}', matrix: {a: ['two words']}}\n",
            6,
            64,
            "names a member's stage id, so it must be a string or number of 1 to 64 letters",
        ),
        (
            "s: {type: model, version_id: '${{ matrix.a }}', matrix: [1, 2]}\n",
            6,
            59,
            "a matrix is a mapping of keys to lists of values",
        ),
        ("s@a=1: {type: model, version_id: v}\n", 6, 3, "'@' marks the members of a matrix stage"),
    ],
)
def test_matrix_errors_point_at_the_matrix_line(
    tmp_path: Path, stages: str, line: int, col: int, says: str
) -> None:
    (message,) = errors(tmp_path, stages)
    assert message.startswith(f"{tmp_path / 'p.yaml'}:{line}:{col}: stages.s"), message
    assert says in message


def test_more_members_than_the_cap_are_refused_before_any_stage_exists(tmp_path: Path) -> None:
    reads = "${{ matrix.a }}${{ matrix.b }}"
    stages = (
        f"s: {{type: model, version_id: '{reads}', matrix: {{a: {list(range(17))}, b: {list(range(16))}}}}}\n"
    )
    (message,) = errors(tmp_path, stages)
    assert "the matrix makes 272 stages; the limit is 256" in message
    assert ":6:" in message


def test_a_huge_product_is_refused_before_it_is_built(tmp_path: Path) -> None:
    lists = ", ".join(f"k{i}: {list(range(10))}" for i in range(6))
    reads = "".join(f"${{{{ matrix.k{i} }}}}" for i in range(6))
    (message,) = errors(tmp_path, f"s: {{type: model, version_id: '{reads}', matrix: {{{lists}}}}}\n")
    assert "the lists make 1000000 combinations; at most 4096 are expanded" in message


FAMILY = """\
base: {type: model, version_id: v}
compress:
  type: compress
  model: base
  strategy: quantization
  weight: ${{ matrix.weight }}
  matrix: {weight: [W8A16C16, W4A16C16]}
"""


def test_a_stage_list_or_needs_naming_the_family_takes_all_its_members_in_order(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        FAMILY
        + "ev: {type: evaluate, models: [base, compress], dataset: d,\n"
        + "     evaluators: [{kind: rule, accuracy: true}]}\n"
        + "after: {type: model, version_id: w, needs: [compress]}\n",
    )
    members = ("compress@weight=W8A16C16", "compress@weight=W4A16C16")
    assert pipeline.stages["ev"].fields["models"] == ["base", *members]
    assert pipeline.stages["after"].upstream == members


def test_one_stage_field_naming_the_family_asks_for_a_member(tmp_path: Path) -> None:
    found = errors(tmp_path, FAMILY + "d: {type: deploy, model: compress, service: {name: s}}\n")
    (message,) = [message for message in found if "stages.d.model" in message]
    assert (
        "stages.d.model: 'compress' is a matrix of 2 stages; use one member, e.g. 'compress@weight=W8A16C16'"
        in message
    )


def test_family_and_member_expressions_depend_on_what_they_read_and_see_outputs_in_member_order(
    tmp_path: Path,
) -> None:
    pipeline = load(
        tmp_path,
        FAMILY
        + "all: {type: model, version_id: '${{ stages.compress[*] | length }}'}\n"
        + "one: {type: model, version_id: \"${{ stages['compress@weight=W4A16C16'].outputs.v }}\"}\n",
    )
    assert pipeline.stages["all"].upstream == ("compress@weight=W8A16C16", "compress@weight=W4A16C16")
    assert pipeline.stages["one"].upstream == ("compress@weight=W4A16C16",)
    upstream = {
        m: Upstream("f", {"v": m[-8:]}) for m in ("compress@weight=W8A16C16", "compress@weight=W4A16C16")
    }
    inputs = Inputs(pipeline, environ={})
    assert inputs.resolve(pipeline.stages["all"], upstream)["version_id"] == 2
    assert inputs.resolve(pipeline.stages["one"], upstream)["version_id"] == "W4A16C16"
    context = inputs.context(upstream)
    assert [o["v"] for o in context["stages"]["compress[*]"]] == ["W8A16C16", "W4A16C16"]


def test_an_expression_mixing_matrix_and_outputs_sees_the_member_values_at_run_time(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        base: {type: model, version_id: v}
        s:
          type: model
          version_id: ${{ stages.base.outputs.v ~ '-' ~ matrix.tag }}
          matrix: {tag: [a, b]}
        """,
    )
    resolved = Inputs(pipeline, environ={}).resolve(
        pipeline.stages["s@tag=b"], {"base": Upstream("f", {"v": "x"})}
    )
    assert resolved["version_id"] == "x-b"


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ("x: {type: model, version_id: '${{ matrix.a }}'}\n", "reads matrix, but stage x has no matrix:"),
        ("x: {type: model, version_id: '${{ stages.compress.outputs.v }}'}\n", "use stages.compress[*]"),
        ("x: {type: model, version_id: '${{ stages.base[*] }}'}\n", "'base' is not a matrix stage"),
    ],
)
def test_wrong_references_to_a_matrix_are_explained(tmp_path: Path, extra: str, says: str) -> None:
    (message,) = errors(tmp_path, FAMILY + extra)
    assert says in message


def test_select_force_and_from_take_a_family_or_one_member(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        FAMILY.replace("weight: [", "size: [s, m], weight: [").replace(
            "weight: ${{ matrix.weight }}", "weight: ${{ matrix.weight }}\n  name: n-${{ matrix.size }}"
        ),
    )
    graph = pipeline.graph
    family = set(pipeline.families["compress"])
    assert len(family) == 4
    assert dag.select(graph, ["compress"]) == family
    assert dag.select(graph, ["+compress"]) == family | {"base"}
    assert dag.select(graph, ["compress@size=m,weight=W4A16C16,base"]) == {
        "compress@size=m,weight=W4A16C16",
        "base",
    }
    selection = select_stages(graph, [], [], ["compress"])
    assert selection.forced == family
    with pytest.raises(UsageError, match="did you mean 'compress'"):
        dag.select(graph, ["compres"])


def test_a_matrix_of_include_entries_alone_makes_one_member_per_entry(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path,
        """\
        s:
          type: model
          version_id: ${{ matrix.name }}-${{ matrix.v }}
          matrix:
            include: [{name: a, v: 1}, {name: b, v: true}]
        """,
    )
    assert list(pipeline.families["s"]) == ["s@name=a,v=1", "s@name=b,v=true"]
    assert pipeline.stages["s@name=b,v=true"].body["version_id"] == "b-true"


def test_values_of_different_yaml_types_are_different_values(tmp_path: Path) -> None:
    pipeline = load(
        tmp_path, "s: {type: model, version_id: 'v${{ matrix.a }}', matrix: {a: [1, true, '1.0']}}\n"
    )
    assert list(pipeline.families["s"]) == ["s@a=1", "s@a=true", "s@a=1.0"]
