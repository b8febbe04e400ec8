"""Open the platform a pipeline names: the local platform (started when not running) or Qianfan's cloud."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from runner.platform.client import PlatformClient
from runner.platform.settings import ENV_LOCAL_TOKEN, settings_from_pipeline


def open_platform(
    platform: Mapping[str, Any], *, notify: Callable[[str], None], pipeline_file: Path | None = None
) -> PlatformClient:
    """A client of ``platform``; Qianfan's settings also come from ``pipeline_file``'s repository's .env."""
    kind = platform.get("kind", "local")
    if kind != "local":
        from runner.platform.envfile import platform_environment

        environ = platform_environment(pipeline_file, platform) if pipeline_file else None
        return PlatformClient(settings_from_pipeline(dict(platform), environ=environ))
    # Imported here: the local platform's server code (uvicorn) is not needed for validate or plan.
    from runner.local.home import Home
    from runner.local.launcher import RestartingTransport, ensure_running, token_for

    environ = dict(os.environ)
    url = str(platform.get("url") or "")
    transport = None
    if url:
        token = environ.get(ENV_LOCAL_TOKEN) or token_for(url)
    else:
        endpoint = ensure_running()
        notify(f"local platform at {endpoint.url} (stop it with `qfrun platform stop`)")
        url, token = endpoint.url, endpoint.token
        # The platform qfrun started is one it may start again; one the pipeline names by URL is someone's.
        transport = RestartingTransport(Home.default(), url, environ.get(ENV_LOCAL_TOKEN) or None)
    if token:
        environ[ENV_LOCAL_TOKEN] = token
    settings = settings_from_pipeline(dict(platform), environ=environ, local_base_url=url)
    return PlatformClient(settings, transport=transport)
