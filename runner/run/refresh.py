"""Refresh: what became of the resources a state file records, asked of the platform before a plan or a run.

Like ``terraform plan``'s refresh, qfrun asks the platform about every resource the state records as made by a
stage's last success: each deploy stage's service and each model version a stage made (an imported folder, a
compression). It asks with one paged list per kind — DescribeServices, DescribeCustomModelSets — never one
request per stage. A service that is stopped, failed or gone, and a model version that was deleted, become a
``Drift`` of that stage: ``runner.run.decide`` re-runs the stage for it (and the stages that use its outputs
follow), so ``qfrun plan`` and ``qfrun run`` reach the same decision from the same facts.

Tasks are not refreshed: one in flight is re-attached by its id (a run describes it anyway), and a finished
one is a record of work done, which nothing re-runs for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from runner.errors import PlatformError
from runner.pipeline.spec import Pipeline
from runner.platform.protocol import Inventory, ServiceState, TaskKind, TaskStatus
from runner.stages import STAGE_TYPES
from runner.state.file import StateFile

SERVICE, MODEL_VERSION = "service", "model version"
# A service in these states answers, or will: nothing changed that a run must act on.
_ALIVE = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUCCEEDED})


@dataclass(frozen=True)
class Drift:
    """A resource a stage's last success made that is no longer what it was, as the platform says now."""

    stage_id: str
    what: str  # SERVICE or MODEL_VERSION
    resource_id: str
    now: str  # "is stopped (released)", "is gone", "was deleted"

    def describe(self) -> str:
        """``service svco-1 is stopped (released)``: what changed, in the words the plan prints."""
        return f"{self.what} {self.resource_id} {self.now}"

    @property
    def remedy(self) -> str:
        """What a run does about it when the stage is run."""
        if self.what == SERVICE:
            return "the run deploys it again"
        return f"the run re-runs {self.stage_id} to make it again"


@dataclass(frozen=True)
class Recorded:
    """A resource the state says a stage's last success made."""

    stage_id: str
    what: str
    resource_id: str


def recorded(pipeline: Pipeline, state: StateFile) -> list[Recorded]:
    """The services and model versions the state's last successes made, in pipeline order.

    A model stage that names an existing version (``version_id:``) did not make it (its type's
    ``makes_model_version`` says so): whoever did owns it, so a refresh leaves it to the run that reads it.
    """
    found: list[Recorded] = []
    for stage_id, stage in pipeline.stages.items():
        record = state.stages.get(stage_id)
        last = record.last_success if record else None
        if not last:
            continue
        outputs = last.get("outputs") or {}
        stage_type = STAGE_TYPES[stage.type]
        task = last.get("task") or {}
        if stage_type.serves_chat and (
            task.get("kind") == TaskKind.SERVICE.value or outputs.get("service_id")
        ):
            service_id = task.get("task_id") if task.get("kind") == TaskKind.SERVICE.value else None
            found.append(Recorded(stage_id, SERVICE, str(service_id or outputs["service_id"])))
        elif stage_type.makes_model_version(stage.fields) and outputs.get("version_id"):
            found.append(Recorded(stage_id, MODEL_VERSION, str(outputs["version_id"])))
    return found


def refresh(pipeline: Pipeline, state: StateFile, inventory: Inventory) -> dict[str, Drift]:
    """Each stage whose recorded resource changed outside qfrun, with what became of it.

    Sends nothing when the state records no such resource, so a pipeline that never ran plans offline.
    Raises ``PlatformError`` when the platform cannot be asked.
    """
    resources = recorded(pipeline, state)
    services = {r.resource_id for r in resources if r.what == SERVICE}
    versions = {r.resource_id for r in resources if r.what == MODEL_VERSION}
    try:
        live = inventory.list_services(services) if services else {}
        present = inventory.list_model_versions(versions) if versions else frozenset()
    except PlatformError as error:
        # As terraform plan and apply do when a refresh fails: stop, rather than decide on facts that may be
        # stale (and deploy a second paid service, or skip a stage whose model version is gone).
        count = f"{len(resources)} resource{'s' if len(resources) != 1 else ''}"
        raise type(error)(
            f"refresh could not ask the platform about the {count} the state of {pipeline.name} records "
            f"({str(error).rstrip('.')}); retry when it answers, or pass --refresh=false to trust the state "
            "file as it is"
        ) from None
    return {drift.stage_id: drift for drift in _drifts(resources, live, present)}


def _drifts(
    resources: list[Recorded], live: Mapping[str, ServiceState], present: frozenset[str]
) -> Iterator[Drift]:
    for resource in resources:
        if resource.what == SERVICE:
            service = live.get(resource.resource_id)
            if service is None:
                yield Drift(resource.stage_id, SERVICE, resource.resource_id, "is gone")
            elif service.status not in _ALIVE:
                why = f" ({service.message.rstrip('.')})" if service.message else ""
                yield Drift(
                    resource.stage_id, SERVICE, resource.resource_id, f"is {service.status.value}{why}"
                )
        elif resource.resource_id not in present:
            yield Drift(resource.stage_id, MODEL_VERSION, resource.resource_id, "was deleted")
