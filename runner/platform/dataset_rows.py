"""The rows of a pipeline's dataset file as qfrun sends them anywhere: one JSON object per non-blank line with
a string ``prompt`` and, where it has one, a string ``response`` (the reference answer). Batch inference's
BOS input [B2] and Qianfan's PromptResponse import [D8] are both made from these rows, so both refuse the
same lines with the same words, before anything is sent."""

from __future__ import annotations

import json
from typing import Any

from runner.errors import PlatformStatusError


def dataset_rows(text: str, where: str) -> list[dict[str, Any]]:
    """Every row of ``text``; a line that is no such row is an error naming ``where`` and the line."""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise PlatformStatusError(f"{where} line {number} is not JSON") from None
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
            raise PlatformStatusError(f"{where} line {number} is no object with a string 'prompt'")
        if "response" in row and not isinstance(row["response"], str):
            raise PlatformStatusError(f"{where} line {number} has a 'response' that is not a string")
        rows.append(row)
    return rows
