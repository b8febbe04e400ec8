"""v1 ``/wenxinworkshop/service/list``: the services a chat client may call, by name and URL.

The SDK's ``ChatCompletion`` asks for this list whenever AK/SK are configured (resources/llm/base.py,
``_get_latest_supported_models``) to map model names to chat URLs; it reads ``result.common`` (preset
services) and takes each entry's ``name`` and ``url``. The local platform has no preset services, so
``common`` is empty and the user's own services are listed under ``custom``. ``apiTypefilter`` (the SDK's
spelling) keeps only the named API types; every local service is a ``chat`` one.
"""

from __future__ import annotations

from typing import Any

from runner.local.api_common import Body
from runner.local.api_services import CHAT_PATH
from runner.local.compat.envelope import V1Context


def service_list(v1: V1Context, body: Body) -> dict[str, Any]:
    wanted = body.texts("apiTypefilter")
    if wanted and "chat" not in wanted:
        return {"common": [], "custom": []}
    custom = [
        {
            "serviceId": service.id,
            "name": service.name,
            "url": f"{v1.ctx.base_url}{CHAT_PATH}{service.endpoint_suffix}",
            "apiType": "chat",
            "modelVersionId": service.model_version_id,
            "runStatus": service.status,
        }
        for service in v1.ctx.store.services()
    ]
    return {"common": [], "custom": custom}


ROUTES = {"service/list": service_list}
