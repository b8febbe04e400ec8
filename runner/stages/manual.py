"""Manual (human) evaluation, the GitOps way: what an evaluate stage does while its task waits for people.

On the local platform the stage exports a scoring sheet into the repository (``scores/<stage>.csv`` and a
form beside it) and ends as waiting; people fill the sheet in and commit it; the next run reads it, checks
it, and hands the scores to the task, which computes the metrics. On Qianfan people score in the console, so
the stage says where and ends as waiting until the task is done. Either way the run re-attaches to the same
task: a manual evaluation is created once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import StageError, StageWaiting
from runner.stages.base import StageContext

if TYPE_CHECKING:
    from runner.platform.protocol import TaskInfo
    from runner.stages.builtin_fields import ManualEvaluator

SATISFACTION_DESCRIPTION = "Overall satisfaction with the answer (Qianfan's default dimension 满意度)."


def dimensions(evaluator: ManualEvaluator) -> list[dict[str, str]]:
    """``satisfaction`` (always there, first, as on Qianfan) and the evaluator's own dimensions."""
    from runner.platform.wire import SATISFACTION  # the wire layer, for the run only

    return [
        {"name": SATISFACTION, "description": SATISFACTION_DESCRIPTION},
        *({"name": d.name, "description": d.description or ""} for d in evaluator.dimensions),
    ]


def sheet_path(sheet: str | None, stage_id: str) -> str:
    """The sheet as the pipeline names it (``sheet``, when given), relative to the pipeline's folder."""
    return sheet or f"scores/{stage_id}.csv"


class ManualScoring:
    """The ``on_waiting`` of an evaluate stage with a manual evaluator."""

    def __init__(self, ctx: StageContext, evaluator: ManualEvaluator, labels: Mapping[str, str]) -> None:
        from runner.stages import scoresheet  # the sheets are the run's: validate does without them

        self._ctx = ctx
        self._labels = dict(labels)  # model version id -> the stage the user wrote
        self._dimensions = dimensions(evaluator)
        scale = evaluator.score_range
        self._scale = scoresheet.Scale(scale.min, scale.max)
        self._csv = Path(ctx.local_path(sheet_path(evaluator.sheet, ctx.stage_id)))
        self._html = self._csv.with_suffix(".html")

    def __call__(self, info: TaskInfo) -> None:
        from runner.platform.protocol import ManualScore
        from runner.stages import scoresheet, scoresheet_html

        ctx, ref = self._ctx, info.ref
        samples = ctx.platform.manual_samples(ref)
        if samples is None:  # Qianfan: people score in the console; the task moves on when they are done
            raise StageWaiting(f"waiting for scores in {ctx.platform.manual_scoring_place(ref)}")
        answers = [
            scoresheet.Answer(
                self._labels.get(s.version_id, s.version_id), s.index, s.input, s.expected, s.output
            )
            for s in samples
        ]
        names = [d["name"] for d in self._dimensions]
        shown = _shown(self._csv)
        waiting = f"waiting for scores in {shown} (the form {_shown(self._html)} edits it)"
        wrote = scoresheet.write_new(self._csv, scoresheet.render(answers, names))
        scoresheet.write_new(
            self._html, scoresheet_html.render(ctx.stage_id, shown, answers, self._dimensions, self._scale)
        )
        if wrote:
            ctx.log(f"exported the scoring sheet {shown} ({len(answers)} answers) for task {ref.task_id}")
            raise StageWaiting(waiting)
        try:
            scores = scoresheet.read(self._csv, shown, answers, names, self._scale)
        except scoresheet.SheetError as error:
            raise StageError(f"the scoring sheet cannot be used:\n{error}") from None
        if scores is None:
            raise StageWaiting(waiting)
        versions = {label: version for version, label in self._labels.items()}
        ctx.platform.submit_manual_scores(
            ref,
            [
                ManualScore(versions.get(model, model), sample, given)
                for (model, sample), given in scores.items()
            ],
        )
        ctx.log(f"handed the scores of {len(scores)} answers in {shown} to task {ref.task_id}")


def _shown(path: Path) -> str:
    """A path as the user can open it: relative to the working folder when it is below it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative
