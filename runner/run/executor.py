"""Executes a pipeline: stages in dependency order, independent ones in parallel, every transition saved.

What each stage does (up to date, gated, blocked, invalid, or run / re-run / resume) is the decision of
``runner.run.decide``, the same the plan shows; the executor carries it out. Running stages are handed to a
thread pool and talk to the platform only through the ``Platform`` Protocol (runner.run.context). It never
imports httpx and never prints: what happens is told to an ``Observer`` (the CLI renders it).
"""

from __future__ import annotations

import enum
import functools
import logging
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from runner import content_hash
from runner.errors import PlatformError, StageError, StageWaiting, StateError
from runner.pipeline import dag
from runner.pipeline.spec import Pipeline
from runner.platform.protocol import Dataset, Platform
from runner.platform.registry import PollPolicy
from runner.run.context import Interrupted, StageRun
from runner.run.decide import Action, Blocked, Decision, UpstreamValue, decide, select_stages, unselected
from runner.run.inputs import Inputs, Upstream
from runner.run.refresh import Drift
from runner.run.schedule import Scheduler
from runner.stages import STAGE_TYPES
from runner.state.file import RunRecord, StageRecord, StageStatus, StateFile, utc_now

log = logging.getLogger("qfrun")


@dataclass(frozen=True)
class RunOptions:
    select: tuple[str, ...] = ()
    from_stages: tuple[str, ...] = ()  # these and everything downstream, re-run even when up to date
    force: tuple[
        str, ...
    ] = ()  # re-run these even when up to date (their dependents follow if outputs change)
    keep_going: bool = False
    max_parallel: int = 4
    poll: PollPolicy = field(default_factory=PollPolicy)
    command: str = ""


class Observer(Protocol):
    """What the executor tells the user interface; every method is called from any thread."""

    def stage_started(self, stage_id: str, note: str) -> None: ...
    def stage_progress(
        self,
        stage_id: str,
        rows_done: int | None,
        rows_total: int | None,
        unit: str = "rows",
        live: Mapping[str, float] | None = None,
    ) -> None:
        """``live``: what the task says of itself besides its progress (TaskInfo.live: a running loss)."""

    def stage_log(self, stage_id: str, message: str) -> None: ...
    def stage_finished(self, stage_id: str, outcome: str, message: str) -> None: ...


class Outcome(enum.StrEnum):
    """How a stage ended within one run, as the summary and the observer name it (an Action is what the
    decision chose before the run; an Outcome is what happened)."""

    SUCCEEDED = "succeeded"
    UP_TO_DATE = "up to date"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_STARTED = "not started"
    WAITING = "waiting"  # its task waits for people (manual scores); the next run picks it up


SUCCEEDED, UP_TO_DATE, FAILED = Outcome.SUCCEEDED, Outcome.UP_TO_DATE, Outcome.FAILED
SKIPPED, NOT_STARTED, WAITING = Outcome.SKIPPED, Outcome.NOT_STARTED, Outcome.WAITING


@dataclass
class StageOutcome:
    stage_id: str
    outcome: Outcome
    message: str = ""
    platform_error: bool = False


@dataclass(frozen=True)
class Attempt:
    """A stage about to run: its context, resolved fields and fingerprint material."""

    run: StageRun
    fields: dict[str, Any]
    material: dict[str, Any]


@dataclass
class RunSummary:
    run_id: str
    outcomes: dict[str, StageOutcome]
    interrupted: bool = False

    @property
    def failed(self) -> list[StageOutcome]:
        return [o for o in self.outcomes.values() if o.outcome == FAILED]

    @property
    def waiting(self) -> list[StageOutcome]:
        return [o for o in self.outcomes.values() if o.outcome == WAITING]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes.values() if o.outcome == outcome)


# How the observer is told that a stage starts, by the decision that starts it.
_NOTES = {Action.RUN: "running", Action.RERUN: "re-running", Action.RESUME: "resuming"}


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


class Executor:
    def __init__(
        self,
        pipeline: Pipeline,
        platform: Platform,
        state: StateFile,
        options: RunOptions,
        observer: Observer,
        drift: Mapping[str, Drift] | None = None,
    ) -> None:
        """``drift``: what a refresh found changed outside qfrun before the run (runner.run.refresh)."""
        self.pipeline = pipeline
        self.drift: Mapping[str, Drift] = drift or {}
        self.platform = platform
        self.state = state
        self.options = options
        self.observer = observer
        self.inputs = Inputs(pipeline)
        self.run_id = new_run_id()
        self._stop = threading.Event()
        self._dataset_lock = threading.Lock()
        self._datasets: dict[str, tuple[Dataset, bool]] = {}  # id -> the dataset, whether it has a version
        self._upstream: dict[str, UpstreamValue] = {}  # what each settled stage gives those downstream
        self._settled: dict[str, StageOutcome] = {}
        self._forced: frozenset[str] = frozenset()
        self._failed = False

    # -- the run ------------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        graph = self.pipeline.graph
        options = self.options
        selection = select_stages(graph, options.select, options.from_stages, options.force)
        self._forced = selection.forced
        run = RunRecord(self.run_id, utc_now(), command=options.command, selected=sorted(selection.stages))
        self.state.record_run(run)
        order = [stage_id for stage_id in dag.topological(graph) if stage_id in selection.stages]
        for stage_id in dag.topological(graph):
            if stage_id not in selection.stages:
                self._adopt_unselected(stage_id)
        interrupted = False
        try:
            self._schedule(order)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            self._stop.set()
        summary = RunSummary(
            self.run_id,
            {s: self._settled.get(s) or StageOutcome(s, NOT_STARTED) for s in order},
            interrupted,
        )
        status = "interrupted" if interrupted else ("failed" if summary.failed else "succeeded")
        if status == "succeeded" and summary.waiting:
            status = "waiting"
        self.state.record_run(replace(run, finished_at=utc_now(), status=status))
        return summary

    def _schedule(self, order: list[str]) -> None:
        """Launch every stage whose upstream is settled, up to max_parallel at once, until none can start."""
        graph = self.pipeline.graph
        Scheduler(
            order,
            graph.predecessors,
            graph.successors,
            self._settled,
            parallel=self.options.max_parallel,
            prepare=self._prepare,
            execute=self._execute,
            hold=self._held,
            step=self.state.batch,
            stop=self._stop,
        ).run()

    def _held(self, stage_id: str) -> bool:
        """Not started after a failure (without --keep-going): left as recorded for the next run."""
        return self._failed and not self.options.keep_going and not self._blocked(stage_id)

    def _blocked(self, stage_id: str) -> bool:
        return any(
            self._settled[u].outcome in (FAILED, SKIPPED, WAITING)
            for u in self.pipeline.graph.predecessors(stage_id)
        )

    # -- deciding ---------------------------------------------------------------------------------
    def _adopt_unselected(self, stage_id: str) -> None:
        """A stage outside the selection: its last success feeds the selected stages, else it blocks them."""
        value = unselected(stage_id, self.state.stages.get(stage_id), self.drift.get(stage_id))
        self._upstream[stage_id] = value
        outcome = UP_TO_DATE if isinstance(value, Upstream) else SKIPPED
        reason = f"it {value.why}" if isinstance(value, Blocked) else ""
        self._settled[stage_id] = StageOutcome(stage_id, outcome, reason)

    def _prepare(self, stage_id: str) -> Attempt | None:
        """Carry out the decision for a stage that need not run (returning None), or set up its attempt."""
        stage = self.pipeline.stages[stage_id]
        record = self.state.stages.get(stage_id)
        upstream = {u: self._upstream[u] for u in stage.upstream}
        decision = decide(
            stage,
            record,
            upstream,
            self.inputs,
            forced=stage_id in self._forced,
            drift=self.drift.get(stage_id),
        )
        if decision.action in (Action.BLOCKED, Action.GATED):
            prefix = "gated: " if decision.action is Action.GATED else ""
            self._skip(stage_id, prefix + decision.reasons[0])
        elif decision.action is Action.INVALID:
            self._fail_now(stage_id, decision.reasons[0])
        elif decision.action is Action.UP_TO_DATE:
            assert record is not None
            self._up_to_date(stage_id, record, decision.fingerprint)
        else:
            return self._attempt(stage_id, record, decision)
        return None

    def _up_to_date(self, stage_id: str, record: StageRecord, fingerprint: str) -> None:
        last = record.last_success or {}
        if record.status is not StageStatus.SUCCEEDED or record.fingerprint != fingerprint:
            done = replace(
                record,
                status=StageStatus.SUCCEEDED,
                fingerprint=fingerprint,
                outputs=last["outputs"],
                error="",
                reason="",
            )
            self._save(stage_id, done)
        self._succeed(stage_id, fingerprint, last["outputs"], UP_TO_DATE)

    def _attempt(self, stage_id: str, record: StageRecord | None, decision: Decision) -> Attempt:
        assert decision.material is not None  # the executor's upstream values are all known
        resume = decision.action is Action.RESUME
        if resume:
            assert record is not None
            current = replace(record, run_id=self.run_id)
        else:
            current = StageRecord(
                fingerprint=decision.fingerprint,
                run_id=self.run_id,
                attempt=(record.attempt if record else 0) + 1,
                started_at=utc_now(),
                last_success=record.last_success if record else None,
                intent=unresolved_intent(record, decision.fingerprint),
            )
        # Nothing outside qfrun depends on a new attempt yet, unless it carries a name a task may exist under.
        self._save(stage_id, current, durable=current.intent is not None)
        self.observer.stage_started(stage_id, _NOTES[decision.action])
        stage_run = StageRun(
            stage_id=stage_id,
            pipeline=self.pipeline.name,
            record=current,
            previous=None if resume else record,
            platform=self.platform,
            save=self._save_ending_later,
            outputs=self._outputs,
            datasets=self._dataset,
            log=self.observer.stage_log,
            progress=functools.partial(
                _progress, self.observer, STAGE_TYPES[self.pipeline.stages[stage_id].type].progress_unit
            ),
            stop=self._stop,
            poll=self.options.poll,
            timeout_minutes=self.pipeline.stages[stage_id].timeout_minutes,
            folder=self.pipeline.path.parent,
        )
        return Attempt(stage_run, dict(decision.fields), dict(decision.material))

    def _outputs(self, stage_id: str) -> Mapping[str, Any]:
        value = self._upstream[stage_id]
        assert isinstance(value, Upstream)  # a stage runs only when all it depends on gave outputs
        return value.outputs

    # -- running ------------------------------------------------------------------------------------
    def _execute(self, attempt: Attempt) -> None:
        stage_run = attempt.run
        stage_id = stage_run.stage_id
        try:
            stage_type = STAGE_TYPES[self.pipeline.stages[stage_id].type]
            # typed once here: an expression that resolved to the wrong type fails the stage, naming the field
            outputs = stage_type.run(stage_run, stage_type.run_fields(stage_id, attempt.fields))
        except Interrupted:
            self._settled[stage_id] = StageOutcome(stage_id, NOT_STARTED, "interrupted; re-run to resume")
            return
        except StateError:
            raise  # not the stage's failure, and not one the state could record: the run stops (_schedule)
        except StageWaiting as waiting:
            stage_run.update(status=StageStatus.WAITING, reason=str(waiting), error="")
            self._upstream[stage_id] = Blocked(stage_id, "is waiting for manual scores")
            self._settle(StageOutcome(stage_id, WAITING, str(waiting)))
            return
        except (StageError, PlatformError) as error:
            self._fail(stage_run, str(error), platform_error=isinstance(error, PlatformError))
            return
        except (
            Exception
        ) as error:  # a bug in qfrun: the stage fails, the run goes on, the log keeps the trace
            log.exception("stage %s raised an unexpected error", stage_id)
            self._fail(stage_run, f"internal error: {type(error).__name__}: {error}")
            return
        finished = utc_now()
        last_success = {
            "fingerprint": stage_run.record.fingerprint,
            "outputs": outputs,
            "run_id": self.run_id,
            "finished_at": finished,
            "inputs": attempt.material,
        }
        if stage_run.record.task:
            last_success["task"] = stage_run.record.task
        stage_run.update(
            status=StageStatus.SUCCEEDED,
            outputs=outputs,
            finished_at=finished,
            error="",
            last_success=last_success,
        )
        self._succeed(stage_id, stage_run.record.fingerprint, outputs, SUCCEEDED)

    # -- settling -----------------------------------------------------------------------------------
    def _succeed(self, stage_id: str, fingerprint: str, outputs: Mapping[str, Any], outcome: Outcome) -> None:
        self._upstream[stage_id] = Upstream(fingerprint, outputs)
        self._settle(StageOutcome(stage_id, outcome))

    def _skip(self, stage_id: str, reason: str) -> None:
        self._end_without_running(stage_id, StageStatus.SKIPPED, reason=reason, error="")
        self._upstream[stage_id] = Blocked(stage_id, "was skipped")
        self._settle(StageOutcome(stage_id, SKIPPED, reason))

    def _fail_now(self, stage_id: str, message: str) -> None:
        """A stage that fails before it starts (an expression in its fields failed)."""
        self._end_without_running(stage_id, StageStatus.FAILED, reason="", error=message)
        self._upstream[stage_id] = Blocked(stage_id, "failed")
        self._settle(StageOutcome(stage_id, FAILED, message))

    def _fail(self, stage_run: StageRun, message: str, *, platform_error: bool = False) -> None:
        stage_run.update(status=StageStatus.FAILED, error=message, finished_at=utc_now())
        self._upstream[stage_run.stage_id] = Blocked(stage_run.stage_id, "failed")
        self._settle(StageOutcome(stage_run.stage_id, FAILED, message, platform_error))

    def _end_without_running(self, stage_id: str, status: StageStatus, *, reason: str, error: str) -> None:
        record = self.state.stages.get(stage_id) or StageRecord()
        ended = replace(
            record, status=status, reason=reason, error=error, run_id=self.run_id, finished_at=utc_now()
        )
        self._save(stage_id, ended)

    def _settle(self, outcome: StageOutcome) -> None:
        self._settled[outcome.stage_id] = outcome
        self._failed = self._failed or outcome.outcome == FAILED
        self.observer.stage_finished(outcome.stage_id, outcome.outcome, outcome.message)

    def _save(self, stage_id: str, record: StageRecord, durable: bool = True) -> None:
        self.state.record(stage_id, record, durable=durable)  # thread-safe: StateFile serialises writers

    def _save_ending_later(self, stage_id: str, record: StageRecord, durable: bool = True) -> None:
        """What a running stage saves: its intent is durable before this returns (the task is created next);
        its end is written at once (a killed qfrun keeps it) and made durable by the next fsync of the
        journal, which covers every line before it: a later stage's intent, a scheduling step's batch, or the
        run's end. So whatever a stage depends on is on disk before it touches the platform, and a power loss
        loses at most ends whose tasks the resume finds again by their intent."""
        ended = record.status.terminal or record.status is StageStatus.WAITING
        self.state.record(stage_id, record, durable=durable and not ended)

    def _dataset(self, dataset_id: str, version: bool = True) -> Dataset:
        """A pipeline dataset on the platform, made once per run: a file read only as batch inference's
        input gets no dataset version (on Qianfan an import into its dataset management) until a stage
        that reads a version asks for it."""
        with self._dataset_lock:
            known = self._datasets.get(dataset_id)
            if known is None or (version and not known[1]):
                spec = self.pipeline.datasets[dataset_id]
                if spec.path is not None:
                    made = self.platform.ensure_dataset(
                        name=dataset_id,
                        path=str(spec.path.resolve()),
                        sha256=content_hash.of_file(spec.path),
                        version=version,
                    )
                    known = (made, version)
                else:
                    known = (self.platform.describe_dataset(str(spec.qianfan_dataset_id)), True)
                self._datasets[dataset_id] = known
            return known[0]


def _progress(
    observer: Observer,
    unit: str,
    stage_id: str,
    done: int | None,
    total: int | None,
    live: Mapping[str, float],
) -> None:
    """A task's progress, in what the stage type's tasks count (rows, or a fine-tuning task's steps)."""
    observer.stage_progress(stage_id, done, total, unit, live)


def unresolved_intent(record: StageRecord | None, fingerprint: str) -> dict[str, str] | None:
    """The task name an earlier attempt sent a create under, when the platform never said what it names.

    A create whose answer was lost, followed by a lookup that failed too, may or may not have made a task. A
    new attempt under a new name would then risk a second one (a second compression, a second paid service),
    so the name stands for every later attempt with the same inputs: the next one looks it up before creating
    anything, and creates under that same name only when the lookup found nothing.
    """
    if record is None or not record.intent or record.task or record.fingerprint != fingerprint:
        return None
    return dict(record.intent)
