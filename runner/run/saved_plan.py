"""A saved plan: ``qfrun plan --out FILE`` writes it, ``qfrun run --plan FILE`` runs exactly it or refuses.

As ``terraform apply PLANFILE``: the plan a pull request showed (and a reviewer approved) is what the merge
runs. The file records what the plan was made from — the pipeline's content, the state's content, the
selection — and what it decided per stage (action and a digest of the resolved parameters). ``run --plan``
re-plans under the run lock and refuses when any of it differs: the pipeline was changed after the plan, a
run in between changed the state, or the platform changed something (refresh) so that a stage would now do
something else. Nothing is created before that check, so a stale plan never buys anything.

Digests, not copies: the state may be large and the parameters are already in the plan's JSON for people to
read (``plan`` below); the check needs only to know whether they are the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import __version__
from runner.errors import UsageError
from runner.pipeline.spec import Pipeline
from runner.run.plan import Plan
from runner.state.backend import BOS_SCHEME
from runner.state.file import StateFile, utc_now

FORMAT = 1
MAX_BYTES = 64 * 2**20  # a 5,000-stage plan is ~10 MiB; anything this large is not a plan qfrun wrote
_SHOWN = 5  # differences named in the refusal; the rest are counted


@dataclass(frozen=True)
class Selection:
    """The stages a plan is about (``--select``, ``--from``, ``--force``); the run takes the plan's own."""

    select: tuple[str, ...] = ()
    from_stages: tuple[str, ...] = ()
    force: tuple[str, ...] = ()


@dataclass(frozen=True)
class SavedPlan:
    path: Path
    pipeline: str
    pipeline_digest: str
    platform: str
    target: str  # "" for a pipeline of one platform:
    state: str
    state_digest: str
    selection: Selection
    stages: Mapping[str, tuple[str, str]]  # stage id -> (action, digest of its resolved parameters)
    created_at: str


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pipeline_digest(pipeline: Pipeline) -> str:
    """The pipeline's content as parsed: a comment or a blank line changes nothing a run does."""
    return _digest(pipeline.document.data)


def state_digest(state: StateFile) -> str:
    """What the state records (stages and runs), however it is kept: the same for a file and for BOS."""
    return _digest(
        {
            "stages": {stage_id: record.to_json() for stage_id, record in state.stages.items()},
            "runs": [run.to_json() for run in state.runs],
        }
    )


def decisions(plan: Plan) -> dict[str, tuple[str, str]]:
    return {stage.stage_id: (str(stage.action), _digest(stage.fields)) for stage in plan.stages}


def write(
    path: Path,
    plan: Plan,
    pipeline: Pipeline,
    state: StateFile,
    selection: Selection,
    shown: Mapping[str, Any],
) -> None:
    """Save ``plan``; ``shown`` is its JSON rendering, kept in the file for people and tools to read."""
    data = {
        "qfrun_saved_plan": FORMAT,
        "qfrun_version": __version__,
        "created_at": utc_now(),
        "pipeline": pipeline.name,
        "pipeline_digest": pipeline_digest(pipeline),
        "platform": plan.platform,
        "target": plan.target or "",
        "state": plan.state_path,
        "state_digest": state_digest(state),
        "selection": {
            "select": list(selection.select),
            "from": list(selection.from_stages),
            "force": list(selection.force),
        },
        "stages": {stage_id: list(decision) for stage_id, decision in decisions(plan).items()},
        "plan": shown,
    }
    try:
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    except OSError as error:
        raise UsageError(f"The plan cannot be saved to {path}: {error.strerror}.") from None


def load(path: Path) -> SavedPlan:
    """Read a saved plan; anything qfrun did not write in this format is refused with a sentence."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise UsageError(f"The saved plan {path} cannot be read: {error.strerror}.") from None
    if len(raw) > MAX_BYTES:
        raise UsageError(f"The saved plan {path} is larger than qfrun writes; it is not a saved plan.")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict) or "qfrun_saved_plan" not in data:
        raise UsageError(f"{path} is not a saved plan: write one with `qfrun plan PIPELINE --out {path}`.")
    if data["qfrun_saved_plan"] != FORMAT:
        raise UsageError(
            f"The saved plan {path} is of format {data['qfrun_saved_plan']!r}; this qfrun ({__version__}) "
            f"reads format {FORMAT}: plan again with this version."
        )
    try:
        selection = data["selection"]
        return SavedPlan(
            path,
            _text(data["pipeline"]),
            _text(data["pipeline_digest"]),
            _text(data["platform"]),
            _text(data["target"]),
            _text(data["state"]),
            _text(data["state_digest"]),
            Selection(_texts(selection["select"]), _texts(selection["from"]), _texts(selection["force"])),
            {_text(stage_id): _decision(decision) for stage_id, decision in dict(data["stages"]).items()},
            _text(data.get("created_at", "")),
        )
    except (KeyError, IndexError, TypeError, ValueError):
        raise UsageError(
            f"The saved plan {path} is damaged: it lacks fields qfrun writes; plan again."
        ) from None


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _decision(value: Any) -> tuple[str, str]:
    if not isinstance(value, list) or len(value) != 2:
        raise TypeError(value)
    return _text(value[0]), _text(value[1])


def _texts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(value)
    return tuple(_text(item) for item in value)


def check_source(saved: SavedPlan, pipeline: Pipeline) -> None:
    """The plan is of this pipeline, as it is now; checked before anything is locked or opened."""
    if saved.pipeline != pipeline.name:
        raise UsageError(
            f"The saved plan {saved.path} is of pipeline {saved.pipeline!r}, not {pipeline.name!r}; "
            f"plan {pipeline.path} with --out to make one."
        )
    if saved.pipeline_digest != pipeline_digest(pipeline):
        raise _stale(saved, f"{pipeline.path} changed after the plan was made")
    target = (pipeline.target if pipeline.targets_declared else None) or ""
    if saved.target != target:
        raise UsageError(
            f"The saved plan {saved.path} was made for target {saved.target or '(none)'}, and this run is "
            f"for target {target or '(none)'}: plan for this one with --target and --out."
        )
    platform = str(pipeline.platform_spec.name)
    if saved.platform != platform:
        raise UsageError(
            f"The saved plan {saved.path} was made for the platform {saved.platform}, and this run is on "
            f"{platform}: plan for this one (another target?) with --out."
        )


def check_state(saved: SavedPlan, state: StateFile) -> None:
    """The state is as the plan saw it; checked under the run lock, before the platform is opened."""
    if saved.state.startswith(BOS_SCHEME) and saved.state != state.label:
        # A shared state has one name on every machine; a local file's path differs between checkouts.
        raise UsageError(
            f"The saved plan {saved.path} was made against the state {saved.state}, and this run's state is "
            f"{state.label}: plan against this one (another target?) with --out."
        )
    if saved.state_digest != state_digest(state):
        raise _stale(
            saved, f"the state {state.label} changed after the plan was made (a run or a state push since)"
        )


def check_plan(saved: SavedPlan, plan: Plan) -> None:
    """Planning again now (with what refresh found) decides every stage as the saved plan did."""
    now = decisions(plan)
    differences: list[str] = []
    for stage_id in dict.fromkeys([*saved.stages, *now]):
        then, current = saved.stages.get(stage_id), now.get(stage_id)
        if then == current:
            continue
        if then is None or current is None:
            differences.append(f"{stage_id} is {'new' if then is None else 'no longer selected'}")
        elif then[0] != current[0]:
            differences.append(f"{stage_id} would {current[0]}, the plan said {then[0]}")
        else:
            differences.append(f"{stage_id}'s resolved parameters changed")
    if differences:
        more = len(differences) - _SHOWN
        listed = "; ".join(differences[:_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise _stale(saved, f"planning again gives another plan: {listed}")


def _stale(saved: SavedPlan, why: str) -> UsageError:
    made = f" (made {saved.created_at})" if saved.created_at else ""
    return UsageError(
        f"The saved plan {saved.path}{made} is stale: {why}. Nothing was run; make a new plan and review it "
        "(qfrun plan PIPELINE --out FILE), then run that."
    )
