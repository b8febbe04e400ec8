"""The YAML reader fed text a pull request could hold: any text, or a valid pipeline with characters
changed, gives a document or a ``PipelineError`` whose issues carry the file's name and a 1-based position,
never another exception; a document it gives has a position for every key path it reports."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import PipelineError
from runner.pipeline.yamlio import load_document

VALID = (Path(__file__).resolve().parents[2] / "pipelines" / "quickstart.yaml").read_text(encoding="utf-8")
# What YAML's grammar turns on: a mutation made of these reaches the parser's error paths, not just strings.
SYNTAX = [*list(":-{}[],&*!|>'\"#%@`\t\n "), "<<", "---", "...", "? ", "!!python/object:os.system", "\ufeff"]


def _load(text: str) -> None:
    try:
        document = load_document("fuzz.yaml", text=text)
    except PipelineError as error:
        issues = error.issues
    else:
        # What loaded is plain data a schema can check, with positions that name lines of the text.
        yaml.safe_dump(document.data)
        lines = text.count("\n") + 1
        for key_line, key_column, value_line, value_column in document.positions.values():
            assert 1 <= key_line <= value_line <= lines + 1
            assert min(key_column, value_column) >= 1
        return
    assert issues
    for issue in issues:
        assert issue.location.path == "fuzz.yaml", str(issue)
        assert issue.location.line >= 0
        assert issue.message.strip()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.lists(st.sampled_from(SYNTAX) | st.characters(), max_size=40).map("".join))
def test_any_text_is_a_document_or_issues_with_positions(text: str) -> None:
    _load(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    at=st.integers(0, len(VALID)),
    cut=st.integers(0, 6),
    insert=st.lists(st.sampled_from(SYNTAX), max_size=3).map("".join),
)
def test_a_real_pipeline_with_characters_changed_is_a_document_or_issues(
    at: int, cut: int, insert: str
) -> None:
    _load(VALID[:at] + insert + VALID[at + cut :])


def test_the_unchanged_quickstart_is_a_document_with_a_position_for_its_stages() -> None:
    document = load_document("fuzz.yaml", text=VALID)
    assert "stages" in document.data
    assert document.location(("stages",)).line >= 1
