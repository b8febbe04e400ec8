"""Every reader of the console API's answers, fed any JSON: it returns a value or raises ``WireError`` naming
a field, never another exception (a ``KeyError`` or ``TypeError`` would reach the user as a traceback instead
of "the platform answered something that is not the documented shape"). The documented example answers
must still read, and the local platform's own answers (built from the same tables) must read back whole."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.platform import wire
from runner.platform.protocol import TaskKind, TaskRef, TaskStatus
from runner.platform.wire import paging, services, tasks
from runner.platform.wire.fields import WireError, obj, opt_int, opt_str, req_str

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
# Answers shaped like the documented ones, with any value in any documented field: the fuzz reaches past the
# first "should be an object" into every field's check.
FIELDS = [
    "modelId", "modelSetId", "modelName", "status", "sourceInfo", "sizeBytes", "details", "version",
    "versionId", "datasetName", "sampleCount", "entityCount", "sha256", "taskId", "id", "serviceId",
    "runStatus", "state", "name", "taskName", "pageInfo", "taskList", "serviceList", "evalTaskList",
    "modelCompTaskList", "customModelSetList", "samples", "effectMetric", "instanceId", "url",
    "resourceConfig", "description", "failedReason", "errorMessage", "modelIds", "outputBosUri",
    "outputDir", "result", "usage", "isTruncated", "nextMarker", "marker", "maxKeys", "index",
]  # fmt: skip
SHAPED = st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=8)
ANSWER = SHAPED | JSON | st.lists(SHAPED, max_size=3)

KINDS = list(wire.KIND_API)  # every kind with a wire entry (TaskKind is an open set)
REF = {kind: TaskRef(kind, "id-1", "qf-x-0123456789") for kind in KINDS}


def _readers() -> dict[str, Callable[[Any], object]]:
    readers: dict[str, Callable[[Any], object]] = {
        "model_version": wire.model_version,
        "dataset": wire.dataset,
        "manual_samples": wire.manual_samples,
        "eval_report": wire.eval_report,
        "service_instance_id": services.service_instance_id,
        "service_items": services.service_items,
        "released": services.released,
        "service_state": lambda value: services.service_state(obj(value, "item"), "item"),
        "model_set_version_ids": lambda value: wire.model_set_version_ids(obj(value, "item"), "item"),
        "chat_reply": lambda value: wire.chat_reply(obj(value, "body"), "req-1"),
        "page_items": lambda value: paging.page_items(value, "taskList", 3),
    }
    for kind in KINDS:
        readers[f"created_id[{kind.value}]"] = lambda value, kind=kind: tasks.created_id(kind, value)
        readers[f"status_of[{kind.value}]"] = lambda value, kind=kind: wire.status_of(
            kind, obj(value, "result")
        )
        readers[f"list_page[{kind.value}]"] = lambda value, kind=kind: paging.list_page(kind, value, 3)
        readers[f"task_info[{kind.value}]"] = lambda value, kind=kind: tasks.task_info(kind, REF[kind], value)
    return readers


READERS = _readers()


@pytest.mark.parametrize("name", sorted(READERS))
@settings(max_examples=50, deadline=None)
@given(answer=ANSWER)
def test_a_reader_given_any_json_answers_or_names_the_field_it_cannot_read(name: str, answer: Any) -> None:
    try:
        READERS[name](answer)
    except WireError as error:
        named = str(error)
    else:
        return
    assert "'" in named or "result" in named, named  # it names the field


@settings(max_examples=200, deadline=None)
@given(data=st.dictionaries(st.text(max_size=6), JSON, max_size=4), key=st.text(max_size=6))
def test_the_field_readers_accept_exactly_their_types(data: dict[str, Any], key: str) -> None:
    value = data.get(key)
    for read, accepts in (
        (req_str, lambda v: isinstance(v, str | int) and not isinstance(v, bool) and v != ""),
        (opt_str, lambda v: v is None or (isinstance(v, str | int) and not isinstance(v, bool))),
    ):
        try:
            got = read(data, key)
        except WireError:
            assert not accepts(value)
        else:
            assert accepts(value)
            assert got == ("" if value is None else str(value))
    try:
        number = opt_int(data, key)
    except WireError as error:
        number, refusal = None, str(error)
    else:
        refusal = ""
        assert number is None or isinstance(number, int)
    assert not refusal or f"'result.{key}' should be an integer" in refusal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        (3, 3),
        ("42", 42),
        (2.9, 2),
        (True, WireError),
        ("4.5", WireError),
        ([], WireError),
    ],
)
def test_an_integer_field_reads_numbers_and_numeric_text_only(value: Any, expected: Any) -> None:
    if expected is WireError:
        with pytest.raises(WireError, match="should be an integer"):
            opt_int({"n": value}, "n")
    else:
        assert opt_int({"n": value}, "n") == expected


def test_a_model_status_word_the_pages_do_not_document_is_refused_by_name() -> None:
    with pytest.raises(WireError) as caught:
        wire.model_version({"modelId": "amv-1", "modelSetId": "am-1", "status": "Melting"})
    assert str(caught.value) == (
        "the field 'result.status' has the unknown status 'Melting' (known: Ready, Creating, Fail)"
    )


def test_a_model_version_keeps_the_documented_fields_it_does_not_map_in_its_details() -> None:
    version = wire.model_version(
        {
            "modelId": "amv-1",
            "modelSetId": "am-1",
            "modelName": "tiny",
            "status": "Ready",
            "isSupportModelComp": False,
            "sourceInfo": {"sourceType": "Train"},
            "details": {"scheme": "W4A16"},
        }
    )
    assert (version.version_id, version.model_id, version.name, version.source) == (
        "amv-1",
        "am-1",
        "tiny",
        "train",
    )
    assert version.details == {
        "scheme": "W4A16",
        "status": "Ready",
        "isSupportModelComp": False,
        "modelName": "tiny",
    }
    assert version.size_bytes is None


def test_a_dataset_counts_its_rows_by_sample_count_else_entity_count() -> None:
    base = {"versionId": "ds-1", "datasetName": "qa"}
    assert wire.dataset({**base, "sampleCount": 5, "entityCount": 9}).rows == 5
    assert wire.dataset({**base, "entityCount": "9"}).rows == 9
    assert wire.dataset(base).rows is None
    assert wire.dataset({**base, "sha256": ""}).sha256 is None


def test_version_ids_of_a_model_set_are_strings_or_refused() -> None:
    assert wire.model_set_version_ids({}, "item") == []
    assert wire.model_set_version_ids({"modelIds": ["amv-1", "amv-2"]}, "item") == ["amv-1", "amv-2"]
    for bad in ("amv-1", ["amv-1", 2], {"a": 1}):
        with pytest.raises(WireError, match=r"'item\.modelIds' should be an array of strings"):
            wire.model_set_version_ids({"modelIds": bad}, "item")


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ({"samples": "none"}, "'result.samples' should be an array"),
        (
            {"samples": [{"modelId": "amv-1", "index": 0}]},
            "'result.samples[0].index' should be a whole number",
        ),
        (
            {"samples": [{"modelId": "amv-1", "index": True}]},
            "'result.samples[0].index' should be a whole number",
        ),
        ({"samples": [{"index": 1}]}, "'result.samples[0].modelId' should be a non-empty string"),
        ({"samples": [{"modelId": "amv-1", "index": 1, "output": ["x"]}]}, "'result.samples[0].output'"),
    ],
)
def test_manual_samples_name_the_sample_and_field_that_is_wrong(
    samples: dict[str, Any], message: str
) -> None:
    with pytest.raises(WireError, match=message.replace("[", r"\[").replace("]", r"\]")):
        wire.manual_samples(samples)


def test_an_evaluation_report_maps_qianfans_metric_names_and_drops_distributions() -> None:
    report = wire.eval_report(
        [
            {"modelId": "amv-1", "effectMetric": {"bleu4": 0.5, "accuracy": 1, "dist": {"a": 1}, "ok": True}},
            {"modelId": "amv-1", "effectMetric": {"rouge_l": 0.25}, "sampleCount": 10},
            {"modelId": "amv-2", "sampleCount": "7"},
        ]
    )
    assert report == {
        "amv-1": {"metrics": {"bleu": 0.5, "accuracy": 1.0, "rouge_l": 0.25}, "samples": None},
        "amv-2": {"metrics": {}, "samples": 7},
    }
    with pytest.raises(WireError, match="should be an array, not dict"):
        wire.eval_report({"modelId": "amv-1"})


def test_a_report_entry_the_local_platform_writes_reads_back_as_the_same_metrics() -> None:
    metrics = {name: 0.5 for name in wire.METRIC_WIRE_NAMES}
    entry = wire.report_entry("ame-1", "e", "amv-1", metrics, object_type="x", eval_mode="y", samples=3)
    assert wire.eval_report([entry]) == {"amv-1": {"metrics": metrics, "samples": 3}}


def test_a_chat_reply_needs_text_and_counts_missing_usage_as_zero() -> None:
    reply = wire.chat_reply({"result": "5"}, None)
    assert (reply.text, reply.prompt_tokens, reply.completion_tokens, reply.request_id) == ("5", 0, 0, "")
    with pytest.raises(WireError, match="'result' of the chat response should be a string"):
        wire.chat_reply({"result": {"text": "5"}}, "r")
    with pytest.raises(WireError, match="'usage' should be an object"):
        wire.chat_reply({"result": "5", "usage": [1]}, "r")


def test_a_full_page_without_page_info_cannot_be_read_as_the_last() -> None:
    items = [{"id": str(n)} for n in range(3)]
    with pytest.raises(WireError):
        paging.page_items({"taskList": items}, "taskList", 3)
    assert paging.page_items({"taskList": items[:2]}, "taskList", 3) == (items[:2], None)
    assert paging.page_items({}, "taskList", 3) == ([], None)


def test_a_page_the_local_platform_writes_reads_back_with_its_marker() -> None:
    items = [{"id": "1"}, {"id": "2"}]
    truncated = paging.page_result("taskList", items, marker="", max_keys=2, next_marker="2")
    assert paging.page_items(truncated, "taskList", 2) == (items, "2")
    last = paging.page_result("taskList", items[:1], marker="2", max_keys=2, next_marker=None)
    assert paging.page_items(last, "taskList", 2) == (items[:1], None)


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.value)
def test_every_status_word_of_a_kind_reads_and_an_unknown_one_is_named(kind: TaskKind) -> None:
    api = wire.KIND_API[kind]
    for word, status in api.status_words.items():
        assert wire.status_of(kind, {api.status_field: word}) is status
        assert isinstance(status, TaskStatus)
    with pytest.raises(WireError, match=api.status_field):
        wire.status_of(kind, {api.status_field: "NoSuchWordAnywhere"})
