"""Every layout the result-export reader tolerates, each one parsed to the same records, and every broken or
hostile file one sentence that says what and where (docs/platform-api.md §Per-sample results)."""

from __future__ import annotations

import json

import pytest

from runner.local.compat.datasets import archive as zipped  # the platform's own zip writer
from runner.platform import eval_export_file
from runner.platform.eval_export_file import ExportFileError, read_export

# Two rows as a real Qianfan export reads in the SDK's cookbook (each data.jsonl line an array of objects).
COOKBOOK = [
    {
        "模型名称": "m_19061_11630",
        "模型版本": "V1",
        "Prompt": "下文中有哪些因果事件?寒潮导致农产品价格继续攀升",
        "Completion\uff08模型回答\uff09": "因果事件:原因:寒潮",
        "Response\uff08参考答案\uff09": "寒潮导致市场价格提升",
        "BLEU-4": "2.55%",
        "ROUGE-1": "25.00%",
        "ROUGE-2": "0.00%",
        "ROUGE-L": "21.05%",
        "裁判员模型打分": "4",
        "裁判员模型打分理由": "答案中明确指出了寒潮。",
    },
    {
        "模型名称": "m_19061_11630",
        "模型版本": "V1",
        "Prompt": "产品是?",
        "Completion\uff08模型回答\uff09": "产品:农产品",
        "Response\uff08参考答案\uff09": "农产品",
        "BLEU-4": "22.59%",
        "ROUGE-1": "50.00%",
        "ROUGE-2": "0.00%",
        "ROUGE-L": "50.00%",
        "裁判员模型打分": "4",
        "裁判员模型打分理由": "简洁明了。",
    },
]
# The SDK's own fixture of the download names three columns differently.
FIXTURE = {
    "模型名称": "ERNIE-Lite-8K",
    "模型版本": "ERNIE-Lite-8K",
    "Prompt问题": "请生成摘要",
    "模型结果": "周末采摘杨桃",
    "预期回答": "这个周末自驾游去摘杨桃啦!",
    "BLEU-4": "0.80%",
    "裁判员模型打分": "5",
    "裁判员模型打分理由": "完全正确",
}
LOCAL = {
    "modelId": "amv-a",
    "index": 2,
    "prompt": "2+2=?",
    "prediction": "5",
    "completion": "4",
    "metrics": {"bleu4": 0.1, "满意度": 3, "avgJudgeScore": 0.2, "label": "text"},
    "judgeReason": "off by one",
    "passed": False,
}


def jsonl(*lines: object) -> bytes:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")


def test_a_real_qianfan_export_reads_with_chinese_columns_and_percent_metrics() -> None:
    records = read_export(zipped({"data.jsonl": jsonl([COOKBOOK[0]], [COOKBOOK[1]])}), 10)
    first, second = records
    assert (first.version_id, first.index, second.index) == ("m_19061_11630/V1", 1, 2)
    assert first.input == "下文中有哪些因果事件?寒潮导致农产品价格继续攀升"
    assert first.output == "因果事件:原因:寒潮"
    assert first.expected == "寒潮导致市场价格提升"
    assert first.reason == "答案中明确指出了寒潮。"
    assert first.metrics == pytest.approx(
        {"bleu": 0.0255, "rouge_1": 0.25, "rouge_2": 0.0, "rouge_l": 0.2105, "judge_score_raw": 4.0}
    )
    assert first.passed is None  # Qianfan's file says nothing of passing


def test_the_sdks_fixture_columns_read_the_same_way() -> None:
    (record,) = read_export(zipped({"data.jsonl": jsonl([FIXTURE])}), 10)
    assert (record.input, record.output, record.expected) == (
        "请生成摘要",
        "周末采摘杨桃",
        "这个周末自驾游去摘杨桃啦!",
    )
    assert record.metrics == pytest.approx({"bleu": 0.008, "judge_score_raw": 5.0})


def test_the_local_layout_keeps_ids_indexes_pass_and_qfruns_metric_names() -> None:
    (record,) = read_export(jsonl(LOCAL), 10)  # a bare JSONL file, one object a line
    assert (record.version_id, record.index, record.passed, record.reason) == (
        "amv-a",
        2,
        False,
        "off by one",
    )
    assert (record.input, record.output, record.expected) == ("2+2=?", "5", "4")
    assert record.metrics == {"bleu": 0.1, "satisfaction": 3.0, "judge_score": 0.2}  # text is no metric


def test_a_csv_export_with_a_bom_and_a_metrics_column_reads_too() -> None:
    header = "\ufeffmodelId,index,Prompt问题,模型结果,预期回答,metrics,passed\n"
    text = header + 'amv-a,1,"1+1=?","2","2","{""accuracy"": 1}",true\n'
    for data in (text.encode("utf-8"), zipped({"results/export.csv": text.encode("utf-8")})):
        (record,) = read_export(data, 10)
        assert (record.version_id, record.index, record.input, record.output) == ("amv-a", 1, "1+1=?", "2")
        assert (record.metrics, record.passed) == ({"accuracy": 1.0}, True)


def test_every_member_of_a_zip_is_read_in_name_order_and_the_limit_stops_early() -> None:
    data = zipped(
        {"b.jsonl": jsonl(LOCAL), "a.jsonl": jsonl(*[{**LOCAL, "index": n} for n in (1, 3)]), "x/": b""}
    )
    assert [r.index for r in read_export(data, 10)] == [1, 3, 2]
    assert [r.index for r in read_export(data, 2)] == [1, 3]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (zipped({"data.xlsx": b"PK"}), "the export's data.xlsx is a spreadsheet, which qfrun does not read"),
        (zipped({}), "the export zip holds no file"),
        (b"PK\x03\x04 broken", "the export file is not a readable zip"),
        (b'{"prompt": "a"}\n{oops\n', "the export file line 2 is not JSON"),
        (b'["text"]\n', "the export file line 1 holds a str, not a row object"),
        (b"\xff\xfe{}", "the export file is not UTF-8 text (byte 0)"),
        (jsonl({"index": 0}), "the export file line 1: the index 0 is not a whole number from 1"),
        (jsonl({"passed": "maybe"}), "passed should be true, false or empty, not 'maybe'"),
        (jsonl({"metrics": "not json"}), "line 1: the column 'metrics' is not a JSON object of metrics"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_sentence_that_says_where(data: bytes, words: str) -> None:
    with pytest.raises(ExportFileError) as raised:
        read_export(data, 10)
    assert words in str(raised.value)


def test_a_zip_that_unpacks_past_the_bound_is_refused_before_it_is_unpacked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bomb = zipped({"data.jsonl": b"\n" * 200_000})  # a few hundred bytes that unpack to 200 kB
    assert len(bomb) < 2_000
    monkeypatch.setattr(eval_export_file, "MAX_UNPACKED_BYTES", 100_000)
    with pytest.raises(ExportFileError, match="unpacks to more than 100000 bytes"):
        read_export(bomb, 10)


def test_a_csv_field_past_the_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_export_file, "MAX_CSV_FIELD", 1_000)
    huge = ("prompt,prediction\n" + "a" * 5_000 + ",b\n").encode()
    with pytest.raises(ExportFileError, match="is not readable CSV"):
        read_export(huge, 10)
