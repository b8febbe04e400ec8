"""Open the platform a pipeline names: the local platform (started when not running) or Qianfan's cloud."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from runner.platform.client import PlatformClient
from runner.platform.settings import settings_from_pipeline


def open_platform(platform: Mapping[str, Any], *, notify: Callable[[str], None]) -> PlatformClient:
    kind = platform.get("kind", "local")
    if kind == "local" and not platform.get("url"):
        # Imported here: the local platform's server code (uvicorn) is not needed for validate or plan.
        from runner.local.daemon import ensure_running

        endpoint = ensure_running()
        notify(f"local platform at {endpoint.url} (stop it with `qfrun platform stop`)")
        environ = dict(os.environ)
        if endpoint.token:
            environ["QFRUN_LOCAL_TOKEN"] = endpoint.token
        return PlatformClient(
            settings_from_pipeline(dict(platform), environ=environ, local_base_url=endpoint.url)
        )
    return PlatformClient(settings_from_pipeline(dict(platform)))
