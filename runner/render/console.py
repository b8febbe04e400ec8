"""Where a stage's task or service is shown in Qianfan's web console, for the report's links.

Only page addresses found in official material are used (the sources are in docs/platform-api.md, §13):
Qianfan documents no page for one batch inference or compression task, and none for one service, so those
link to the list the task or service appears in, or nowhere. The local platform serves no such pages, so a
local run links nowhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

CONSOLE = "https://console.bce.baidu.com/qianfan/"
# One evaluation task: the SDK prints it for every evaluation it creates (evaluation_manager.py).
EVALUATION_PAGE = CONSOLE + "modelcenter/model/eval/detail/task/{task_id}"
# One evaluation that people score: the SDK's command line sends users there (common/cli/evaluation.py).
MANUAL_EVALUATION_PAGE = CONSOLE + "modelcenter/model/manual/detail/task/{task_id}"
# The user's own model versions, where an imported or compressed model appears (the SDK's model docs).
MODELS_PAGE = CONSOLE + "modelcenter/model/user/list"
# The custom services list (the SDK's inference docs); a service's own page has no documented address.
SERVICES_PAGE = CONSOLE + "ais/console/onlineService?tab=service"


def console_link(platform: str, stage_type: str, task_id: Any, body: Mapping[str, Any]) -> str | None:
    """The console page for a stage's task or service on Qianfan; None on the local platform or when
    Qianfan has no page for it."""
    if platform != "qianfan":
        return None
    if stage_type == "evaluate" and isinstance(task_id, str) and task_id:
        evaluators = body.get("evaluators")
        manual = any(
            isinstance(e, Mapping) and e.get("kind") == "manual"
            for e in (evaluators if isinstance(evaluators, list) else [])
        )
        page = MANUAL_EVALUATION_PAGE if manual else EVALUATION_PAGE
        return page.format(task_id=quote(task_id, safe=""))  # an id is one path segment, whatever it holds
    if stage_type in ("model", "compress"):
        return MODELS_PAGE
    if stage_type == "deploy":
        return SERVICES_PAGE
    return None
