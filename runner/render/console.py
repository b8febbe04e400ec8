"""Where a stage's platform task or service is shown in Qianfan's web console, for the report's links.

Pages are per kind of platform task (the ``kind`` qfrun records with each task id in the state file), so a
new stage type that creates one of these tasks gets its link without a change here. Only page addresses
found in official material are used (the sources are in docs/platform-api.md, §13): Qianfan documents no
page for one batch inference task, and none for one compression task or one service, so those link to the
list the result appears in, or nowhere. The local platform serves no such pages: a local run links nowhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from runner.platform.protocol import TaskKind

CONSOLE = "https://console.bce.baidu.com/qianfan/"
# One evaluation task: the SDK prints it for every evaluation it creates (evaluation_manager.py).
EVALUATION_PAGE = CONSOLE + "modelcenter/model/eval/detail/task/{task_id}"
# One evaluation that people score: the SDK's command line sends users there (common/cli/evaluation.py).
MANUAL_EVALUATION_PAGE = CONSOLE + "modelcenter/model/manual/detail/task/{task_id}"
# The user's own model versions, where a compressed model appears (the SDK's model management docs).
MODELS_PAGE = CONSOLE + "modelcenter/model/user/list"
# The custom services (the SDK's inference docs); one service's own page has no documented address.
SERVICES_PAGE = CONSOLE + "ais/console/onlineService?tab=service"


def console_link(platform: str, task: Mapping[str, Any], body: Mapping[str, Any]) -> str | None:
    """The console page for a stage's task (``{"kind", "task_id"}`` as the state file keeps it) on
    Qianfan; None on the local platform, for a stage without a task, or where Qianfan has no page."""
    task_id = task.get("task_id")
    if platform != "qianfan" or not isinstance(task_id, str) or not task_id:
        return None
    kind = task.get("kind")
    if kind == TaskKind.EVALUATION.value:
        page = MANUAL_EVALUATION_PAGE if _scored_by_people(body) else EVALUATION_PAGE
        return page.format(task_id=quote(task_id, safe=""))  # an id is one path segment, whatever it holds
    if kind == TaskKind.COMPRESSION.value:
        return MODELS_PAGE
    if kind == TaskKind.SERVICE.value:
        return SERVICES_PAGE
    return None


def _scored_by_people(body: Mapping[str, Any]) -> bool:
    evaluators = body.get("evaluators")
    return any(
        isinstance(evaluator, Mapping) and evaluator.get("kind") == "manual"
        for evaluator in (evaluators if isinstance(evaluators, list) else [])
    )
