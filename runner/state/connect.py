"""Open a pipeline's state backend: the local file, or BOS reached with the pipeline platform's credentials.

BOS on Qianfan is signed with the same AK/SK as the console (``QIANFAN_ACCESS_KEY``/``SECRET_KEY``) and
reached at the state's ``endpoint``, else the platform's BOS endpoint (``platform.bos.endpoint`` or
``QIANFAN_BOS_ENDPOINT``). On the local platform the state lives in the platform's own BOS, which is
started when it is not running, as ``qfrun run`` does; credentials never enter the state.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from runner.errors import PlatformError, StateError
from runner.pipeline.spec import Pipeline
from runner.platform.settings import (
    ENV_LOCAL_TOKEN,
    BosSettings,
    PlatformSettings,
    is_loopback_url,
    settings_from_pipeline,
)
from runner.state.backend import BosLocation, LocalBackend, StateBackend, state_location


def open_backend(
    pipeline: Pipeline,
    option: Path | str | None,
    *,
    notify: Callable[[str], None],
    environ: Mapping[str, str] | None = None,
) -> StateBackend:
    """The backend that ``--state``, ``QFRUN_STATE`` or the pipeline's ``state:`` names."""
    env = environ if environ is not None else os.environ
    declared = pipeline.document.data.get("state") if isinstance(pipeline.document.data, Mapping) else None
    target = pipeline.target if pipeline.targets_declared else None
    location = state_location(pipeline.name, pipeline.path, declared, option, env, target)
    if not isinstance(location, BosLocation):
        return LocalBackend(location, pipeline.name)
    # Here, not at the top: the BOS client brings the HTTP stack, which a state file beside the pipeline
    # (`qfrun plan` of most pipelines) never needs.
    from runner.platform.bos import BosClient
    from runner.state.bos_backend import BosBackend

    settings = _bos_settings(pipeline, location, env, notify)
    return BosBackend(
        lambda: BosClient(settings),
        location.bucket,
        location.key,
        pipeline.name,
        rescue_dir=pipeline.path.parent / ".qfrun",
        state_name=pipeline.state_name,
        notify=notify,
    )


def _bos_settings(
    pipeline: Pipeline, location: BosLocation, env: Mapping[str, str], notify: Callable[[str], None]
) -> PlatformSettings:
    platform = dict(pipeline.platform)
    environ = dict(env)
    if platform.get("kind", "local") == "local" and not platform.get("url"):
        # Imported here: the local platform's server code is needed only when the state lives in it.
        from runner.local.launcher import ensure_running

        running = ensure_running()
        notify(f"local platform at {running.url} (stop it with `qfrun platform stop`)")
        platform["url"] = running.url
        environ.setdefault(ENV_LOCAL_TOKEN, running.token)
    elif platform.get("kind", "local") == "local" and not environ.get(ENV_LOCAL_TOKEN):
        from runner.local.launcher import token_for

        token = token_for(str(platform["url"]))
        if token:
            environ[ENV_LOCAL_TOKEN] = token
    try:
        settings = settings_from_pipeline(platform, environ=environ)
    except PlatformError as error:
        raise StateError(f"The state {location} cannot be reached: {error}") from None
    endpoint = location.endpoint or (settings.bos.endpoint if settings.bos else "")
    if not endpoint:
        raise StateError(
            f"The state {location} has no BOS endpoint: set state.endpoint in the pipeline or "
            "QIANFAN_BOS_ENDPOINT (for example https://bj.bcebos.com)."
        )
    if settings.kind == "local" and not is_loopback_url(endpoint):
        raise StateError(
            f"The state endpoint {endpoint} is not a loopback address; the local platform's token is sent "
            "only to this machine, so keep the state in the local platform or use platform kind qianfan."
        )
    return replace(settings, bos=BosSettings(endpoint.rstrip("/"), location.bucket))
