"""The scoring sheet of a manual evaluation: a CSV in the repository that people fill in and commit.

One row per answer (``model``, ``sample``, ``input``, ``expected``, ``output``) and one empty column per
dimension. ``read`` checks a filled sheet against the answers of the task it was exported for and names
every problem with its line and row number, so a reviewer can fix the sheet and run again; a sheet with no
score at all is not an error (people have not started).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.atomic import replace_file
from runner.files import MAX_SHEET_BYTES, PathRefused, read_regular

FIXED_COLUMNS = ("model", "sample", "input", "expected", "output")
MAX_ERRORS = 20  # enough to fix a sheet in one go, few enough to read


@dataclass(frozen=True)
class Answer:
    """One row of the sheet as the task has it: which model answered which sample, and how."""

    model: str  # the stage id the answer's model version came from
    sample: int  # position in the dataset, from 1
    input: str
    expected: str
    output: str


@dataclass(frozen=True)
class Scale:
    low: int
    high: int


class SheetError(Exception):
    """A filled sheet that cannot be used; the message lists every problem, one per line."""


def render(answers: Sequence[Answer], dimensions: Sequence[str]) -> str:
    """The CSV text of a fresh sheet: the answers, and an empty column per dimension."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FIXED_COLUMNS, *dimensions])
    for answer in answers:
        writer.writerow(
            [
                answer.model,
                answer.sample,
                answer.input,
                answer.expected,
                answer.output,
                *[""] * len(dimensions),
            ]
        )
    return out.getvalue()


def write_new(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless a file is there (a sheet people may be filling is never replaced);
    atomically, so a half-written sheet is never read. Returns whether it wrote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return replace_file(path, text.encode("utf-8"), exclusive=True)  # never replaces a file already there


def read(
    path: Path, shown: str, answers: Sequence[Answer], dimensions: Sequence[str], scale: Scale
) -> dict[tuple[str, int], dict[str, int]] | None:
    """The scores of a filled sheet by (model, sample); None when nothing is scored yet.

    Raises ``SheetError`` (naming ``shown``, the path as the user knows it) for unknown columns, rows that
    are missing, unknown or twice there, an output that is not the task's (a sheet of an earlier run; white
    space a spreadsheet may change is not compared),
    scores that are not whole numbers within the scale, and rows left unscored once scoring has begun.
    """
    try:  # a regular file only (a FIFO would hang the run); a spreadsheet may save a byte-order mark
        text = read_regular(path, MAX_SHEET_BYTES).decode("utf-8-sig")
    except (PathRefused, UnicodeDecodeError) as error:
        raise SheetError(f"{shown}: the scoring sheet cannot be read ({error}).") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    problems: list[str] = []
    if not header:
        raise SheetError(f"{shown}:1: the scoring sheet is empty; delete it and run again to export it anew.")
    header = [name.strip() for name in header]
    for name in (*FIXED_COLUMNS, *dimensions):
        if name not in header:
            problems.append(f"{shown}:1: the column {name!r} is missing.")
    for name in header:
        if name not in FIXED_COLUMNS and name not in dimensions:
            known = ", ".join(dimensions)
            problems.append(f"{shown}:1: {name!r} is not a dimension of this evaluation ({known}).")
    if problems:
        raise SheetError("\n".join(problems))
    column = {name: header.index(name) for name in (*FIXED_COLUMNS, *dimensions)}
    expected = {(a.model, a.sample): a for a in answers}
    seen: dict[tuple[str, int], int] = {}
    scores: dict[tuple[str, int], dict[str, int]] = {}
    blanks: list[str] = []
    scored_cells = 0
    line = reader.line_num + 1
    for row_number, cells in enumerate(reader, start=1):
        where = f"{shown}:{line}: row {row_number}"
        line = reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        cells = cells + [""] * (len(header) - len(cells))
        key = _key(cells[column["model"]], cells[column["sample"]])
        if key is None or key not in expected:
            problems.append(
                f"{where}: model {cells[column['model']]!r} sample {cells[column['sample']]!r} is not an "
                "answer of this evaluation."
            )
            continue
        if key in seen:
            problems.append(f"{where}: model {key[0]} sample {key[1]} is already on row {seen[key]}.")
            continue
        seen[key] = row_number
        if " ".join(cells[column["output"]].split()) != " ".join(expected[key].output.split()):
            problems.append(
                f"{where}: the output is not the one the task has for model {key[0]} sample {key[1]}; the "
                "sheet belongs to an earlier run (move it away and run again to export a fresh one)."
            )
            continue
        given: dict[str, int] = {}
        for dimension in dimensions:
            cell = cells[column[dimension]].strip()
            if not cell:
                blanks.append(f"{where}: no {dimension} score.")
                continue
            scored_cells += 1
            value = _whole(cell)
            if value is None or not scale.low <= value <= scale.high:
                problems.append(
                    f"{where}: the {dimension} score {cell!r} is not a whole number from {scale.low} to "
                    f"{scale.high}."
                )
                continue
            given[dimension] = value
        if len(given) == len(dimensions):
            scores[key] = given
    missing: dict[str, list[int]] = {}
    for model, sample in sorted(set(expected) - set(seen)):
        missing.setdefault(model, []).append(sample)
    for model, samples in missing.items():
        many = len(samples) > 1
        problems.append(
            f"{shown}: there {'are no rows' if many else 'is no row'} for model {model} "
            f"sample{'s' if many else ''} {_ranges(samples)}."
        )
    if not problems and not scored_cells:
        return None  # nobody has scored yet: keep waiting
    problems.extend(blanks)
    if problems:
        more = f"\n... and {len(problems) - MAX_ERRORS} more." if len(problems) > MAX_ERRORS else ""
        raise SheetError("\n".join(problems[:MAX_ERRORS]) + more)
    return scores


def _ranges(numbers: list[int]) -> str:
    """``1, 4-7, 9`` for [1, 4, 5, 6, 7, 9] (sorted)."""
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _key(model: str, sample: str) -> tuple[str, int] | None:
    number = _whole(sample.strip())
    return (model.strip(), number) if number is not None else None


def _whole(text: str) -> int | None:
    """A whole number as people type one (``4``, ``4.0``); None for anything else."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None
