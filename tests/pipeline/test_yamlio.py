"""runner.pipeline.yamlio: plain values, exact positions, and every way a file can be refused, all at once."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
import yaml

from runner.errors import Location, PipelineSyntaxError
from runner.pipeline.yamlio import MAX_BYTES, Document, load_document


def messages(text: str, name: str = "p.yaml") -> list[str]:
    with pytest.raises(PipelineSyntaxError) as caught:
        load_document(name, text=text)
    return [str(issue) for issue in caught.value.issues]


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


PIPELINE = dedent(
    """
    version: 1
    name: demo
    stages:
      serve:
        type: deploy
        service:
          name: qa
          replicas: 2
        smoke_test:
          - messages: [{role: user, content: "2+3=?"}]
    """
)


def test_values_are_plain_and_equal_to_safe_load() -> None:
    text = dedent(
        """
        a: 1
        b: [0x10, 010, 1_000, 1.5, .inf, -.inf, yes, Off, ~, null, 2024-01-01, "x", '7']
        c: {d: e}
        """
    )
    data = load_document("p.yaml", text=text).data
    expected = yaml.safe_load(text)
    expected["b"][10] = "2024-01-01"  # timestamps stay text: the data must be plain JSON values
    assert data == expected
    assert data["b"][:4] == [16, 8, 1000, 1.5]
    assert data["b"][4] == math.inf


def test_not_a_number_is_kept() -> None:
    assert math.isnan(load_document("p.yaml", text="a: .nan\n").data["a"])


def test_value_location_is_one_based_line_and_column() -> None:
    doc = load_document("pipe.yaml", text=PIPELINE)
    assert doc.location(("stages", "serve", "service", "replicas")) == Location("pipe.yaml", 8, 17)
    assert doc.location(("stages", "serve", "type")) == Location("pipe.yaml", 5, 11)
    assert doc.location(("stages", "serve", "smoke_test", 0)) == Location("pipe.yaml", 10, 9)
    content = ("stages", "serve", "smoke_test", 0, "messages", 0, "content")
    assert doc.location(content) == Location("pipe.yaml", 10, 42)
    assert doc.key_location(content) == Location("pipe.yaml", 10, 33)


def test_key_location_points_at_the_key() -> None:
    doc = load_document("pipe.yaml", text=PIPELINE)
    assert doc.key_location(("stages", "serve", "service", "replicas")) == Location("pipe.yaml", 8, 7)
    assert doc.key_location(("stages", "serve")) == Location("pipe.yaml", 4, 3)


def test_missing_path_falls_back_to_the_nearest_parent() -> None:
    doc = load_document("pipe.yaml", text=PIPELINE)
    assert doc.location(("stages", "serve", "service", "hours")) == Location("pipe.yaml", 7, 7)
    assert doc.location(("nothing", "here")) == Location("pipe.yaml", 1, 1)
    assert doc.location(()) == Location("pipe.yaml", 1, 1)


def test_document_without_positions_locates_the_file() -> None:
    assert Document("p.yaml", {"a": 1}).location(("a",)) == Location("p.yaml")


def test_file_is_read_and_named_as_given(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE, encoding="utf-8")
    doc = load_document(path)
    assert doc.path == str(path)
    assert doc.data["stages"]["serve"]["service"]["replicas"] == 2


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_document(path).data == {"a": 1}


def test_yaml_syntax_error_is_reported_with_line_and_column() -> None:
    assert messages("a: 1\nb: c: d\n") == [
        "p.yaml:2:5: invalid YAML: mapping values are not allowed in this context."
    ]


def test_unclosed_flow_sequence_names_where_it_started() -> None:
    assert messages("a: [1, 2\nb: 3\n") == [
        "p.yaml:2:2: invalid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence at line 1, column 4)."
    ]


def test_tab_indentation_gets_a_hint() -> None:
    assert messages("a:\n\tb: 1\n") == [
        "p.yaml:2:1: invalid YAML: found character that cannot start any token; indent with spaces, not tabs."
    ]


def test_undefined_alias_is_a_syntax_error() -> None:
    assert messages("a: *nowhere\n") == ["p.yaml:1:4: invalid YAML: found undefined alias."]


def test_duplicate_key_is_reported_with_line_and_column() -> None:
    text = "version: 1\nstages:\n  a: {type: model}\n  b: {}\n  a: {type: infer}\n"
    assert messages(text) == ["p.yaml:5:3: duplicate key 'a' (first defined at line 3)."]


def test_non_string_keys_are_reported_with_a_quoting_hint() -> None:
    assert messages("a: 1\n1: x\non: y\n? [a]\n: z\n") == [
        "p.yaml:2:1: the key 1 is read as an integer, not a string; quote it ('1') to use it as a name.",
        "p.yaml:3:1: the key on is read as a boolean, not a string; quote it ('on') to use it as a name.",
        "p.yaml:4:3: a mapping key must be a string, not a list.",
    ]


def test_all_problems_are_reported_at_once_and_sorted() -> None:
    text = dedent(
        """
        z: !!python/object/apply:os.system ["echo hi"]
        a: 1
        a: 2
        3: x
        b: !!binary aGk=
        """
    )
    assert messages(text) == [
        "p.yaml:1:4: the tag '!!python/object/apply:os.system' is not allowed; pipeline files hold plain "
        "values only (strings, numbers, booleans, null, lists and mappings).",
        "p.yaml:3:1: duplicate key 'a' (first defined at line 2).",
        "p.yaml:4:1: the key 3 is read as an integer, not a string; quote it ('3') to use it as a name.",
        "p.yaml:5:4: the tag '!!binary' is not allowed; pipeline files hold plain values only "
        "(strings, numbers, booleans, null, lists and mappings).",
    ]


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("a: !!python/object:os.system x\n", "!!python/object:os.system"),
        ("a: !!python/name:os.system\n", "!!python/name:os.system"),
        ("a: !custom {b: 1}\n", "!custom"),
        ("a: !!set {b, c}\n", "!!set"),
        ("a: !!omap [{b: 1}]\n", "!!omap"),
    ],
)
def test_python_and_unknown_tags_are_refused(text: str, tag: str) -> None:
    (message,) = messages(text)
    assert message.startswith(f"p.yaml:1:4: the tag '{tag}' is not allowed;")


def test_standard_explicit_tags_are_plain_values() -> None:
    data = load_document("p.yaml", text="a: !!str 12\nb: !!int '7'\nc: !!float 1\n").data
    assert data == {"a": "12", "b": 7, "c": 1.0}


def test_explicit_tag_on_the_wrong_text_is_reported() -> None:
    assert messages("a: !!int abc\nb: !!bool maybe\nc: !!float x\n") == [
        "p.yaml:1:4: 'abc' cannot be read as an integer, as its tag !!int says it is.",
        "p.yaml:2:4: 'maybe' cannot be read as a boolean, as its tag !!bool says it is.",
        "p.yaml:3:4: 'x' cannot be read as a number, as its tag !!float says it is.",
    ]


def test_integer_too_long_for_python_is_reported_not_raised() -> None:
    assert messages("a: " + "9" * 5000 + "\n") == [
        f"p.yaml:1:4: the integer '{'9' * 37}...' has more than 4,300 digits, more than qfrun reads."
    ]


def test_keys_that_yaml_reads_as_dates_stay_strings() -> None:
    assert load_document("p.yaml", text="2024-01-01: x\n").data == {"2024-01-01": "x"}


def test_anchors_and_aliases_are_allowed() -> None:
    text = "defaults: &d {replicas: 1, hours: 2}\na: *d\nb: *d\n"
    data = load_document("p.yaml", text=text).data
    assert data["a"] == data["b"] == {"replicas": 1, "hours": 2}
    assert data["a"] is not data["b"]  # expanded, so later mutation of one cannot change another


def test_merge_keys_follow_yaml_precedence_and_keep_positions() -> None:
    # The merge-key spec: earlier mappings in the list win over later ones, own keys over all.
    # (PyYAML 6.0.4 lets the later one win; qfrun follows the spec.)
    text = dedent(
        """
        base: &base {replicas: 1, hours: 2}
        more: &more {hours: 5, pool_type: public}
        serve:
          <<: [*base, *more]
          replicas: 3
        """
    )
    doc = load_document("p.yaml", text=text)
    assert doc.data["serve"] == {"pool_type": "public", "hours": 2, "replicas": 3}
    assert doc.location(("serve", "replicas")) == Location("p.yaml", 5, 13)
    assert doc.location(("serve", "hours")) == Location("p.yaml", 1, 34)


def test_merge_of_a_scalar_is_reported() -> None:
    assert messages("a:\n  <<: 1\n") == [
        "p.yaml:2:7: a merge key '<<' takes a mapping or a list of mappings (usually an alias, *name)."
    ]


def test_alias_bomb_is_refused_before_it_expands() -> None:
    # A billion values if expanded: a guard that did not work would exhaust memory, not return a message.
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [{', '.join([f'*{previous}'] * 10)}]")
    (message,) = messages("\n".join(lines) + "\n")
    assert (
        "aliases expand to more than 100,000 values by here; the file is refused as an alias bomb." in message
    )


def test_aliases_just_under_the_budget_are_accepted() -> None:
    text = "a: &a [" + ", ".join(["x"] * 999) + "]\nb: [" + ", ".join(["*a"] * 99) + "]\n"
    assert len(load_document("p.yaml", text=text).data["b"]) == 99


def test_recursive_alias_is_refused() -> None:
    assert messages("a: &x [1, *x]\n") == [
        "p.yaml:1:4: an alias refers to a value that contains it; recursive structures are not allowed."
    ]


def test_nesting_deeper_than_100_levels_is_refused() -> None:
    assert messages("a: " + "[" * 101 + "]" * 101 + "\n") == [
        "p.yaml:1:103: values are nested more than 100 levels deep; a pipeline never needs that."
    ]


def test_nesting_of_100_levels_is_accepted() -> None:
    data = load_document("p.yaml", text="a: " + "[" * 99 + "]" * 99 + "\n").data
    assert isinstance(data["a"], list)


def test_nesting_past_the_parser_limit_is_reported_as_too_deep() -> None:
    (message,) = messages("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert message.endswith("values are nested more than 100 levels deep; a pipeline never needs that.")


def test_file_over_5_mib_is_refused_without_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"a: 1\n" + b"#" * int(7.2 * 1024 * 1024) + b"\n")
    with pytest.raises(PipelineSyntaxError) as caught:
        load_document(path)
    assert str(caught.value) == f"{path}: the file is 7.2 MiB; pipeline files are limited to 5 MiB."


def test_text_over_5_mib_is_refused() -> None:
    assert messages("#" * (MAX_BYTES + 1)) == [
        "p.yaml: the file is larger than 5 MiB; pipeline files are limited to 5 MiB."
    ]
    assert messages("é" * (MAX_BYTES // 2 + 1024 * 1024)) == [
        "p.yaml: the file is 7.0 MiB; pipeline files are limited to 5 MiB."
    ]


def test_non_utf8_byte_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("version: 1\nname: café\n".encode() + "note: caf\xe9\n".encode("latin-1"))
    with pytest.raises(PipelineSyntaxError) as caught:
        load_document(path)
    assert str(caught.value) == (
        f"{path}:3:10: the file is not UTF-8: byte 0xe9 cannot be decoded; save the file as UTF-8."
    )


def test_column_of_a_bad_byte_counts_characters_not_bytes(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes("a: é".encode() + b"\xff\n")
    with pytest.raises(PipelineSyntaxError) as caught:
        load_document(path)
    assert caught.value.issues[0].location == Location(str(path), 1, 5)


def test_control_character_is_located() -> None:
    assert messages("a: 1\nb: x\x07y\n") == [
        "p.yaml:2:5: the file holds the control character #x0007, which YAML does not allow."
    ]


def test_control_character_after_multibyte_characters_is_located_in_characters() -> None:
    assert messages("ééé: x\nb: \x07\n") == [
        "p.yaml:2:4: the file holds the control character #x0007, which YAML does not allow."
    ]


def test_lone_surrogate_in_given_text_is_reported() -> None:
    assert messages("a: 1\nb: \ud800\n") == [
        "p.yaml:2:4: the text holds a lone surrogate, which is not Unicode."
    ]


def test_unreadable_file_is_a_pipeline_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(PipelineSyntaxError) as caught:
        load_document(missing)
    assert str(caught.value) == f"{missing}: the file cannot be read: No such file or directory."


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "--- ~\n"])
def test_empty_document_is_refused(text: str) -> None:
    assert messages(text) == [
        "p.yaml:1:1: the file is empty; a pipeline is a mapping with version, name and stages."
    ]


@pytest.mark.parametrize(
    ("text", "what"),
    [("- a\n- b\n", "a list"), ("just text\n", "a single value"), ("42\n", "a single value")],
)
def test_document_that_is_not_a_mapping_is_refused(text: str, what: str) -> None:
    assert messages(text) == [
        f"p.yaml:1:1: the file holds {what}; a pipeline is a mapping with version, name and stages."
    ]


def test_multiple_documents_are_refused() -> None:
    assert messages("a: 1\n---\nb: 2\n") == [
        "p.yaml:3:1: the file holds more than one YAML document (one starts here); a pipeline is one."
    ]


def test_a_trailing_document_end_marker_is_one_document() -> None:
    assert load_document("p.yaml", text="a: 1\n...\n").data == {"a": 1}


def generated_pipeline(stages: int) -> str:
    lines = ["version: 1", "name: big", "datasets:", "  qa: {path: qa.jsonl}", "stages:"]
    for index in range(stages):
        lines += [
            f"  s{index}:",
            "    type: deploy",
            f"    model: m{index}",
            f"    description: stage number {index}",
            "    needs: [a, b]",
            "    service:",
            f"      name: s{index}",
            f"      url_suffix: e{index}",
            "      replicas: 1",
            "      billing: {payment: prepaid, months: 2}",
            "      resource_type: GPU-1-1",
            "    smoke_test:",
            "      - messages: [{role: user, content: '2+3=?'}]",
            "        expect: {contains: '5'}",
        ]
    return "\n".join(lines) + "\n"


def test_a_large_pipeline_loads_to_the_same_data_as_safe_load_with_positions() -> None:
    # How fast this is, against yaml.safe_load, is measured by bench/runner_bench.py, not asserted here.
    text = generated_pipeline(300)
    doc = load_document("big.yaml", text=text)
    assert doc.data == yaml.safe_load(text)
    assert doc.location(("stages", "s299", "service", "resource_type")) == Location(
        "big.yaml", 5 + 299 * 14 + 11, 22
    )


def test_pure_python_loader_gives_the_same_positions_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without libyaml, PyYAML's own loader is used; positions and refusals must not change."""
    monkeypatch.setattr("runner.pipeline.yamlio._Loader", yaml.SafeLoader)
    doc = load_document("pipe.yaml", text=PIPELINE)
    assert doc.location(("stages", "serve", "service", "replicas")) == Location("pipe.yaml", 8, 17)
    assert doc.data == yaml.safe_load(PIPELINE)
    assert messages("é: x\x07\n") == [
        "p.yaml:1:5: the file holds the control character #x0007, which YAML does not allow."
    ]
    assert messages("a: 1\n---\nb: 2\n")[0].endswith(
        "the file holds more than one YAML document (one starts here); a pipeline is one."
    )
    (deep,) = messages("a: " + "[" * 101 + "]" * 101 + "\n")
    assert deep.endswith("values are nested more than 100 levels deep; a pipeline never needs that.")
