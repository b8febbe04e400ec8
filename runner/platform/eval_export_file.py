"""Read an evaluation's result export (CreateEvalResultExportTask [E14]) into per-sample records.

What is known of the file (docs/platform-api.md §Per-sample results): v1's export page says the export is a
``.zip`` [E15]; the official SDK unpacks it and reads ``data.jsonl`` inside, each line a JSON array of row
objects, whose column names in a real run (the SDK's cookbook output [E18]) are the console's Chinese ones:
``模型名称``, ``模型版本``, ``Prompt``, ``Completion(模型回答)`` (the answer), ``Response(参考答案)`` (the
expected answer; both with full-width brackets), ``BLEU-4``/``ROUGE-1``/``ROUGE-2``/``ROUGE-L`` as
percent strings (``"0.80%"``), ``裁判员模型打分`` and ``裁判员模型打分理由``; the SDK's own fixture
names the same columns ``Prompt问题``, ``模型结果`` and ``预期回答`` [E18]. v2's pages say nothing
of the layout, so the reader is tolerant:

* a zip of members, or one bare file; each member or file JSONL (a line is an object or an array of
  objects) or CSV (a header row; UTF-8, with or without a BOM); XLSX is refused by name (no dependency
  reads it here);
* a column by any of its known names, English (the export's content names ``prompt``, ``prediction``,
  ``completion``, ``metrics``) or Chinese, compared without case, spaces, underscores, hyphens or
  brackets (full-width or not);
* metrics from a ``metrics`` object (or its JSON text) and from every other column whose value is a number
  or a percent, named as qfrun names them (``BLEU-4`` -> ``bleu``, ``ROUGE-L`` -> ``rouge_l``, the judge's
  raw score ``judge_score_raw``).

Rows without a model version id are kept under ``<model name>/<model version>``; rows without an index
are numbered per model in file order. Sizes are bounded: what is unpacked (``MAX_UNPACKED_BYTES``), each CSV
field, and the records read (``limit``), so a hostile file cannot exhaust memory.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

from runner.platform.protocol import SampleRecord
from runner.platform.wire.evaluation import metric_name

MAX_UNPACKED_BYTES = 512 * 1024 * 1024  # all members together; the stage keeps at most 64 MiB of records
MAX_CSV_FIELD = 1024 * 1024
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty one


class ExportFileError(ValueError):
    """The export file cannot be read; the message says what and where (member, line)."""


def _key(name: str) -> str:
    """A column name as compared: no case, spaces, underscores, hyphens, colons or brackets (either width)."""
    return re.sub(r"[\s_\-()\uff08\uff09:\uff1a]", "", name).lower()


_TEXT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "version_id": ("modelId", "modelVersionId", "modelVersionIdStr"),
    "model_name": ("模型名称", "modelName"),
    "model_version": ("模型版本", "modelVersion"),
    "index": ("index", "序号"),
    "input": ("prompt", "Prompt问题", "问题", "input"),
    "output": ("prediction", "Completion\uff08模型回答\uff09", "模型结果", "模型回答", "预测结果", "output"),
    "expected": ("completion", "Response\uff08参考答案\uff09", "预期回答", "参考答案", "expected"),
    "reason": ("judgeReason", "裁判员模型打分理由", "judge_reason"),
    "passed": ("passed",),
    "benchmark": ("benchmark",),
    "metrics": ("metrics", "评估指标"),
    "system": ("system", "人设"),
}
_COLUMN_OF = {_key(alias): field for field, aliases in _TEXT_COLUMNS.items() for alias in aliases}
_METRIC_COLUMNS = {
    _key("BLEU-4"): "bleu",
    _key("ROUGE-1"): "rouge_1",
    _key("ROUGE-2"): "rouge_2",
    _key("ROUGE-L"): "rouge_l",
    _key("裁判员模型打分"): "judge_score_raw",
}
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(%?)\s*$")


def read_export(data: bytes, limit: int) -> list[SampleRecord]:
    """At most ``limit`` records of an export file (a zip, or one JSONL or CSV file), in file order."""
    records: list[SampleRecord] = []
    numbers: dict[str, int] = {}
    for where, row in _rows(data):
        if len(records) >= limit:
            break
        records.append(_record(row, where, numbers))
    return records


def _rows(data: bytes) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if data.startswith(ZIP_MAGIC):
        yield from _zip_rows(data)
    else:
        yield from _file_rows("the export file", "", data)


def _zip_rows(data: bytes) -> Iterator[tuple[str, Mapping[str, Any]]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ExportFileError(f"the export file is not a readable zip ({exc})") from None
    if not members:
        raise ExportFileError("the export zip holds no file")
    if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
        raise ExportFileError(f"the export zip unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    left = MAX_UNPACKED_BYTES
    for member in sorted(members, key=lambda m: m.filename):
        where = f"the export's {member.filename}"
        try:
            with archive.open(member) as handle:
                content = handle.read(left + 1)  # the sizes in the directory may lie: count what comes out
        except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
            raise ExportFileError(f"{where} cannot be unpacked ({exc})") from None
        if len(content) > left:
            raise ExportFileError(f"the export zip unpacks to more than {MAX_UNPACKED_BYTES} bytes")
        left -= len(content)
        yield from _file_rows(where, member.filename, content)


def _file_rows(where: str, name: str, content: bytes) -> Iterator[tuple[str, Mapping[str, Any]]]:
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix in ("xlsx", "xls"):
        raise ExportFileError(f"{where} is a spreadsheet, which qfrun does not read; export JSONL or CSV")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExportFileError(f"{where} is not UTF-8 text (byte {exc.start})") from None
    if suffix == "csv" or (suffix not in ("jsonl", "json", "txt") and text.lstrip()[:1] not in ("{", "[")):
        yield from _csv_rows(where, text)
    else:
        yield from _jsonl_rows(where, text)


def _jsonl_rows(where: str, text: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise ExportFileError(f"{where} line {number} is not JSON") from None
        for item in value if isinstance(value, list) else [value]:  # the SDK's layout: an array per line
            if not isinstance(item, dict):
                raise ExportFileError(
                    f"{where} line {number} holds a {type(item).__name__}, not a row object"
                )
            yield f"{where} line {number}", item


def _csv_rows(where: str, text: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    limit = csv.field_size_limit()
    csv.field_size_limit(MAX_CSV_FIELD)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            yield f"{where} line {reader.line_num}", {k: v for k, v in row.items() if isinstance(k, str)}
    except csv.Error as exc:
        raise ExportFileError(f"{where} is not readable CSV ({exc})") from None
    finally:
        csv.field_size_limit(limit)


def _record(row: Mapping[str, Any], where: str, numbers: dict[str, int]) -> SampleRecord:
    fields: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    for name, value in row.items():
        key = _key(str(name))
        field = _COLUMN_OF.get(key)
        if field == "metrics":
            metrics.update(_metrics_object(value, f"{where}: the column {name!r}"))
        elif field is not None:
            fields[field] = value
        else:
            number = _number(value)
            if number is not None:
                metrics[_METRIC_COLUMNS.get(key) or metric_name(str(name))] = number
    version_id = _text(fields.get("version_id"))
    if not version_id:
        named = "/".join(
            t for t in (_text(fields.get("model_name")), _text(fields.get("model_version"))) if t
        )
        version_id = named or "model"
    numbers[version_id] = numbers.get(version_id, 0) + 1
    index = _index(fields.get("index"), where) or numbers[version_id]
    return SampleRecord(
        version_id=version_id,
        index=index,
        input=_text(fields.get("input")),
        expected=_text(fields.get("expected")),
        output=_text(fields.get("output")),
        metrics=metrics,
        reason=_text(fields.get("reason")),
        passed=_passed(fields.get("passed"), where),
        benchmark=_text(fields.get("benchmark")),
    )


def _metrics_object(value: Any, where: str) -> dict[str, float]:
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except ValueError:
            raise ExportFileError(f"{where} is not a JSON object of metrics") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ExportFileError(f"{where} should be an object of metrics, not {type(value).__name__}")
    found = {metric_name(str(name)): _number(v) for name, v in value.items()}
    return {name: number for name, number in found.items() if number is not None}


def _number(value: Any) -> float | None:
    """A metric's value: a number, or text such as ``0.5``, ``5`` or ``0.80%`` (a percent, as 0.008)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        matched = _NUMBER.match(value)
        if matched:
            number = float(matched.group(1))
            return number / 100 if matched.group(2) else number
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _index(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ExportFileError(f"{where}: the index {value!r} is not a whole number from 1")
    return value


def _passed(value: Any, where: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ExportFileError(f"{where}: passed should be true, false or empty, not {value!r}")
