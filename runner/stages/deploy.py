"""The ``deploy`` stage: run a model version as a chat service, then smoke-test it through its chat call.

A service is the one cost-bearing task: Qianfan sells it by the month (prepaid, 1 to 12 months) or postpaid
by compute time or by tokens (issue 10), so the plan names what will be bought and the executor creates it
exactly once. The smoke test runs on every (re-)run of the stage: a failed expectation fails the stage but
leaves the service up, so the user can look at it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Never
from urllib.parse import urlsplit

from runner.errors import StageError
from runner.stages.base import (
    Charge,
    PlanDetail,
    ReportEntry,
    StageContext,
    StageRef,
    StageType,
    model_version_of,
    single_ref,
)
from runner.stages.fields import Unresolved, written
from runner.stages.registry import model_producers

if TYPE_CHECKING:
    from runner.stages.builtin_fields import DeployFields, Expect, Service

_CHARGE_WORDS = {"computing_unit": "compute unit", "tokens": "tokens"}


def _plural(count: object, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def purchase(service: Service[Unresolved]) -> str:
    """What creating ``service`` buys, in Qianfan's units (the docs publish no prices, so none are shown).

    "2 replicas of GPU-1-1 in bj, prepaid 3 months (6 replica-months)" or "postpaid by compute unit: 1 replica
    of CPU-1-1, billed for its compute time while it runs". A count an expression still stands for is shown
    as it is, and the total is left out.
    """
    billing = service.billing
    replicas = service.replicas
    where = f" in {service.region}" if service.region else ""
    compute = f"{_plural(replicas, 'replica')} of {service.resource_type or 'the default compute'}{where}"
    if billing.payment == "prepaid":
        months = billing.months
        charge = charge_of(service)
        total = f" ({_plural(charge.replicas * charge.months, 'replica-month')})" if charge else ""
        return f"{compute}, prepaid {_plural(months, 'month')}{total}"
    if billing.charge == "tokens":
        shown = f"{compute}, " if service.resource_type else ""
        return f"postpaid by tokens: {shown}billed for the tokens its calls use"
    return f"postpaid by compute unit: {compute}, billed for its compute time while it runs"


def charge_of(service: Service[Unresolved]) -> Charge | None:
    """``purchase`` as numbers; None where an expression still stands for one of them (known at run time)."""
    billing = service.billing
    replicas, months = service.replicas, billing.months or 0
    if isinstance(replicas, Unresolved) or isinstance(months, Unresolved):
        return None
    return Charge(billing.payment, replicas, months, billing.charge or "")


class DeployStage(StageType["DeployFields[Unresolved]", "DeployFields[Never]"]):
    name = "deploy"
    fields_module = "runner.stages.builtin_fields"  # built on first use (StageType.fields_module)
    serves_chat = True

    def stage_refs(self, spec: Mapping[str, Any]) -> Iterator[StageRef]:
        return single_ref(spec, "model", model_producers())

    def plan(self, spec: DeployFields[Unresolved]) -> PlanDetail:
        service = spec.service
        checks = len(spec.smoke_test)
        smoke = f", then {_plural(checks, 'smoke test')}" if checks else ""
        return PlanDetail(
            f"deploy {spec.model} as chat service {service.name} (URL suffix {service.url_suffix}){smoke}",
            cost=purchase(service),
            charge=charge_of(service),
        )

    def report_entries(
        self, stage: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]
    ) -> Iterator[ReportEntry]:
        """The service: where it answers, what it costs, its smoke test, and a command that calls it."""
        outputs = stage["outputs"]
        # ``endpoint`` is what state files of earlier qfrun versions call the URL suffix.
        suffix = outputs.get("url_suffix") or outputs.get("endpoint")
        if not suffix:
            return
        url = outputs.get("url") or ""
        body = json.dumps({"messages": [{"role": "user", "content": "23+45=?"}]})
        yield ReportEntry(
            "services",
            {
                "stage": stage["id"],
                "url_suffix": suffix,
                "url": url,
                "replicas": outputs.get("replicas"),
                "resource_type": outputs.get("resource_type"),
                "billing": billing_text(outputs.get("billing"), outputs.get("expires_at")),
                "smoke_test": outputs.get("smoke_test"),
                "curl": _curl(url, body) if url else "",
            },
        )

    def run(self, ctx: StageContext, spec: DeployFields[Never]) -> dict[str, Any]:
        from runner.platform.protocol import ChatMessage, TaskKind  # the run's: validate does without

        service = spec.service
        info = ctx.run_task(
            TaskKind.SERVICE, {"model_version_id": model_version_of(ctx, spec.model), **written(service)}
        )
        result = info.result
        suffix = str(result.get("url_suffix") or service.url_suffix)
        passed = 0
        checks = spec.smoke_test
        for index, check in enumerate(checks, start=1):
            messages = [ChatMessage(m.role, m.content) for m in check.messages]
            reply = ctx.platform.chat(suffix, messages)
            failure = expectation_failure(check.expect, reply.text)
            if failure:
                raise StageError(f"smoke test {index} of {len(checks)} failed: {failure}")
            ctx.log(f"smoke test {index} of {len(checks)} passed")
            passed += 1
        outputs: dict[str, Any] = {
            "service_id": result.get("service_id", info.ref.task_id),
            "url_suffix": suffix,
            "url": result.get("url"),
            "replicas": result.get("replicas") or service.replicas,
            "resource_type": result.get("resource_type") or service.resource_type,
            "billing": written(service.billing),
            "smoke_test": {"passed": passed, "total": len(checks)},
        }
        if service.billing.payment == "prepaid":
            outputs["expires_at"] = result.get("expires_at")
        return outputs


def expectation_failure(expect: Expect, text: str) -> str | None:
    """Why ``text`` does not meet ``expect`` (contains | equals | regex), or None when it does."""
    if expect.contains is not None and expect.contains not in text:
        return f"the answer {text!r} does not contain {expect.contains!r}"
    if expect.equals is not None and text.strip() != expect.equals.strip():
        return f"the answer {text!r} is not {expect.equals!r}"
    if expect.regex is not None and re.search(expect.regex, text) is None:
        return f"the answer {text!r} does not match /{expect.regex}/"
    return None


def _curl(url: str, body: str) -> str:
    """A command that calls the service; on the local platform it names the token's variable, never the
    token itself (reports are shared and kept)."""
    auth = ""
    if urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"):
        auth = ' -H "Authorization: Bearer $QFRUN_LOCAL_TOKEN"'
    return f"curl -s {url}{auth} -H 'Content-Type: application/json' -d '{body}'"


def billing_text(billing: Any, expires_at: Any = None) -> str:
    """``prepaid for 3 months (until 2027-03-01T00:00:00Z)``, ``postpaid by tokens``, or '' when unknown."""
    if not isinstance(billing, Mapping):
        return ""
    if billing.get("payment") == "prepaid":
        months = billing.get("months")
        until = f" (until {expires_at})" if expires_at else ""
        return f"prepaid for {months} month{'' if months == 1 else 's'}{until}"
    charge = _CHARGE_WORDS.get(str(billing.get("charge")), "")
    return f"postpaid by {charge}" if charge else "postpaid"
