"""The ``deploy`` stage: run a model version as a chat service, then smoke-test it through its chat call.

A service is the one cost-bearing task (replicas x prepaid hours), so the plan names that cost and the
executor
creates it exactly once. The smoke test runs on every (re-)run of the stage: a failed expectation fails the
stage
but leaves the service up, so the user can look at it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from runner.errors import StageError
from runner.platform.protocol import ChatMessage, TaskKind
from runner.stages.base import (
    MODEL_PRODUCERS,
    DatasetRef,
    PlanDetail,
    StageContext,
    StageRef,
    model_version_of,
    single_ref,
)

SERVICE_DEFAULTS: Mapping[str, Any] = {
    "replicas": 1,
    "pool_type": "private",
    "service_type": "chat",
}


def service_config(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {**SERVICE_DEFAULTS, **spec["service"]}


class DeployStage:
    name = "deploy"

    def stage_refs(self, spec: Mapping[str, Any]) -> Iterator[StageRef]:
        return single_ref(spec, "model", MODEL_PRODUCERS)

    def dataset_refs(self, spec: Mapping[str, Any]) -> Iterator[DatasetRef]:
        return iter(())

    def plan(self, spec: Mapping[str, Any]) -> PlanDetail:
        service = service_config(spec)
        replicas, hours = service["replicas"], service["hours"]
        checks = len(spec.get("smoke_test") or [])
        smoke = f", then {checks} smoke test{'s' if checks != 1 else ''}" if checks else ""
        return PlanDetail(
            f"deploy {spec['model']} as {service['service_type']} service {service['name']} "
            f"(endpoint {service['endpoint_suffix']}, {service['pool_type']} pool){smoke}",
            cost=f"{replicas} replica{'s' if replicas != 1 else ''} x {hours} h = "
            f"{replicas * hours} replica-hour{'s' if replicas * hours != 1 else ''}",
        )

    def run(self, ctx: StageContext, spec: Mapping[str, Any]) -> dict[str, Any]:
        service = service_config(spec)
        info = ctx.run_task(
            TaskKind.SERVICE, {"model_version_id": model_version_of(ctx, spec["model"]), **service}
        )
        result = info.result
        endpoint = str(result.get("endpoint") or service["endpoint_suffix"])
        passed = 0
        checks = spec.get("smoke_test") or []
        for index, check in enumerate(checks, start=1):
            messages = [ChatMessage(m["role"], m["content"]) for m in check["messages"]]
            reply = ctx.platform.chat(endpoint, messages)
            failure = expectation_failure(check["expect"], reply.text)
            if failure:
                raise StageError(f"smoke test {index} of {len(checks)} failed: {failure}")
            ctx.log(f"smoke test {index} of {len(checks)} passed")
            passed += 1
        return {
            "service_id": result.get("service_id", info.ref.task_id),
            "endpoint": endpoint,
            "url": result.get("url"),
            "replicas": result.get("replicas", service["replicas"]),
            "hours": service["hours"],
            "smoke_test": {"passed": passed, "total": len(checks)},
        }


def expectation_failure(expect: Mapping[str, str], text: str) -> str | None:
    """Why ``text`` does not meet ``expect`` (contains | equals | regex), or None when it does."""
    if "contains" in expect and expect["contains"] not in text:
        return f"the answer {text!r} does not contain {expect['contains']!r}"
    if "equals" in expect and text.strip() != expect["equals"].strip():
        return f"the answer {text!r} is not {expect['equals']!r}"
    if "regex" in expect and re.search(expect["regex"], text) is None:
        return f"the answer {text!r} does not match /{expect['regex']}/"
    return None
