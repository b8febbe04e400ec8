"""Batch inference's files in BOS, read and written as Qianfan does [B2][B8].

Input: the files directly in the ``inputBosUri`` folder (no sub-folders, at most 100, ``.jsonl`` or
``.txt``, 300 MB in all), each line a JSON object with an ``id`` unique in its file and the ``query``.
Output: one file per input file, of the same name, in a fresh 24-character folder under ``outputBosUri``;
each line ``{"id", "query", "output": <a chat completion>}``. The engine works on plain rows
(``{"prompt", "response"?}``), so this module is the translation, in both directions, and nothing else.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.local.bos_store import BosError, BosUri, ObjectStore, parse_bos_uri, task_output_uri

MAX_FILES = 100  # [B2]
MAX_INPUT_BYTES = 300 * 1024 * 1024  # [B2]
INPUT_SUFFIXES = (".jsonl", ".txt")  # [B2]: .jsonl recommended, .txt accepted


class BatchInputError(ValueError):
    """The input folder or a line in it is not what batch inference reads; the message says where."""


@dataclass(frozen=True)
class InputFile:
    """One input file: its name in the folder and its ``(id, query)`` lines in order."""

    name: str
    lines: tuple[tuple[str, str], ...]


def uri(text: str, field: str) -> BosUri:
    """A ``bos:/bucket/folder/`` location from a request field, or a ``BatchInputError`` naming it."""
    try:
        return parse_bos_uri(text)
    except BosError as exc:
        raise BatchInputError(f"{field}: {exc.message}") from None


def read_input(objects: ObjectStore, input_uri: str) -> list[InputFile]:
    """Every input file of ``input_uri``, checked line by line."""
    folder = uri(input_uri, "inputBosUri")
    try:
        infos = objects.files_in(folder)
    except BosError as exc:
        raise BatchInputError(f"inputBosUri {input_uri}: {exc.message}") from None
    chosen = [info for info in infos if info.key.endswith(INPUT_SUFFIXES)]
    if not chosen:
        raise BatchInputError(f"inputBosUri {input_uri} holds no .jsonl or .txt file to infer on.")
    if len(chosen) > MAX_FILES:
        raise BatchInputError(f"inputBosUri {input_uri} holds {len(chosen)} files; the limit is {MAX_FILES}.")
    total = sum(info.size for info in chosen)
    if total > MAX_INPUT_BYTES:
        raise BatchInputError(f"inputBosUri {input_uri} holds {total} bytes; the limit is {MAX_INPUT_BYTES}.")
    return [_input_file(objects, folder, info.key) for info in chosen]


def _input_file(objects: ObjectStore, folder: BosUri, key: str) -> InputFile:
    name = key[len(folder.folder) :]
    where = f"bos:/{folder.bucket}/{key}"
    try:
        text = objects.read(folder.bucket, key).decode("utf-8")
    except UnicodeDecodeError:
        raise BatchInputError(f"{where} is not UTF-8 text.") from None
    lines: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError:
            raise BatchInputError(f"{where} line {number} is not a JSON object.") from None
        if not isinstance(row, dict):
            raise BatchInputError(f"{where} line {number} is not a JSON object.")
        row_id, query = row.get("id"), row.get("query")
        if isinstance(row_id, bool) or not isinstance(row_id, str | int) or str(row_id) == "":
            raise BatchInputError(f"{where} line {number} needs an 'id' (a string or a number).")
        if not isinstance(query, str) or not query:
            raise BatchInputError(f"{where} line {number} needs a 'query' (a non-empty string).")
        if str(row_id) in seen:
            raise BatchInputError(
                f"{where} line {number} repeats the id {row_id!r}; ids are unique per file."
            )
        seen.add(str(row_id))
        lines.append((str(row_id), query))
    return InputFile(name, tuple(lines))


def engine_rows(
    files: Sequence[InputFile], references: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """The engine's rows for ``files``, in order; ``references`` (the rows of the dataset the input was
    made from, a local extension) add each row's reference answer, matched by position."""
    rows: list[dict[str, Any]] = []
    for file in files:
        for _, query in file.lines:
            row: dict[str, Any] = {"prompt": query}
            if len(rows) < len(references) and references[len(rows)].get("response") is not None:
                row["response"] = references[len(rows)]["response"]
            rows.append(row)
    return rows


def write_output(
    objects: ObjectStore, output_uri: str, files: Sequence[InputFile], results: Sequence[Mapping[str, Any]]
) -> BosUri:
    """Write ``results`` (the engine's rows, in input order) as Qianfan's output files; the task's folder."""
    target = task_output_uri(uri(output_uri, "outputBosUri"))
    results_left = iter(results)
    for file in files:
        lines = []
        for row_id, query in file.lines:
            result = next(results_left)
            lines.append(
                json.dumps({"id": row_id, "query": query, "output": completion(result)}, ensure_ascii=False)
            )
        data = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
        objects.put(target.bucket, target.folder + file.name, data, content_type="application/jsonl")
    return target


def completion(result: Mapping[str, Any]) -> dict[str, Any]:
    """One answer in the v1 chat completion shape that batch output embeds [B8]."""
    text = str(result.get("output", ""))
    prompt_tokens = int(result.get("prompt_tokens") or 0)
    completion_tokens = int(result.get("completion_tokens") or 0)
    return {
        "id": f"as-{uuid.uuid4().hex[:10]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "result": text,
        "is_truncated": False,
        "need_clear_history": False,
        "finish_reason": "normal",
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
