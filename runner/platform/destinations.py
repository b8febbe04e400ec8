"""Where a pipeline's platform makes qfrun send credentials: each host, what it is for, and what it receives.

The plan shows this (never a value, only which kind of credential and the variable it comes from), so
whoever reviews a pipeline sees what leaves the machine before anything runs. It follows what the client
does: ``auth.auth_for`` signs with an AK/SK pair when one is set and sends a bearer token otherwise, and
``settings.settings_from_pipeline`` picks the hosts. The plan needs no credentials to be set, so this does
not build the settings themselves (which refuse to exist without Qianfan's keys).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from runner.errors import PlatformError
from runner.platform.envfile import Environment
from runner.platform.settings import (
    DEFAULT_CONSOLE_BASE_URL,
    DEFAULT_INFERENCE_BASE_URL,
    ENV_ACCESS_KEY,
    ENV_BOS_ENDPOINT,
    ENV_CONSOLE_BASE_URL,
    ENV_INFERENCE_BASE_URL,
    ENV_LOCAL_ACCESS_KEY,
    ENV_LOCAL_SECRET_KEY,
    ENV_LOCAL_TOKEN,
    ENV_SECRET_KEY,
    bos_settings,
)

LOCAL_UNSTARTED = "127.0.0.1:PORT"  # the port is chosen when the platform starts


@dataclass(frozen=True)
class Destination:
    host: str  # host[:port], or a sentence when not known before a run
    role: str  # what qfrun calls there
    credential: str  # which kind of credential, and the variable it comes from; never its value

    def sentence(self) -> str:
        return f"{self.host} ({self.role}) receives {self.credential}"


def credential_destinations(
    platform: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> list[Destination]:
    """Each host the pipeline's platform would send a credential to, in the order qfrun first calls them."""
    env = environ if environ is not None else os.environ
    if platform.get("kind", "local") == "qianfan":
        return list(_qianfan(platform, env))
    return list(_local(platform, env))


def _signature(access: str, secret: str) -> str:
    return f"the access key {access} and a bce-auth-v1 signature made with {secret} (never the secret key)"


def _local(platform: Mapping[str, Any], env: Mapping[str, str]) -> Iterator[Destination]:
    if env.get(ENV_LOCAL_ACCESS_KEY, "").strip() and env.get(ENV_LOCAL_SECRET_KEY, "").strip():
        credential = _signature(ENV_LOCAL_ACCESS_KEY, ENV_LOCAL_SECRET_KEY)
    else:
        credential = (
            f"the local platform's bearer token ({ENV_LOCAL_TOKEN}, else the one in QFRUN_HOME's "
            "credentials.json)"
        )
    url = platform.get("url")
    host = _host(url) if isinstance(url, str) else LOCAL_UNSTARTED
    role = "the local platform on this machine" + (
        "" if isinstance(url, str) else ", its port chosen at start"
    )
    yield Destination(host, f"{role}: console, chat and BOS", credential)
    bos = platform.get("bos")
    endpoint = bos.get("endpoint") if isinstance(bos, Mapping) else None
    if isinstance(endpoint, str) and _host(endpoint) != host:
        yield Destination(_host(endpoint), "BOS, from platform.bos.endpoint", credential)


def _qianfan(platform: Mapping[str, Any], env: Mapping[str, str]) -> Iterator[Destination]:
    # Qianfan needs the AK/SK pair (settings.qianfan_credentials), so every request is signed with it:
    # a bearer token in the environment is never sent there.
    credential = _signature(ENV_ACCESS_KEY, ENV_SECRET_KEY)
    if isinstance(env, Environment):  # the reviewer sees which file the keys come from, never their values
        read = [name for name in (ENV_ACCESS_KEY, ENV_SECRET_KEY) if env.from_file(name)]
        credential += f"; {' and '.join(read)} read from {env.file}" if read else ""
    console = env.get(ENV_CONSOLE_BASE_URL) or DEFAULT_CONSOLE_BASE_URL
    inference = env.get(ENV_INFERENCE_BASE_URL) or DEFAULT_INFERENCE_BASE_URL
    yield Destination(_host(console), f"Qianfan's console API{_from(env, ENV_CONSOLE_BASE_URL)}", credential)
    yield Destination(
        _host(inference), f"chat with deployed services{_from(env, ENV_INFERENCE_BASE_URL)}", credential
    )
    try:
        bos = bos_settings(platform.get("bos"), env, None)
    except PlatformError:
        return  # half a BOS setting: the run stops before sending anything there, and says why
    if bos is not None:
        given = isinstance(platform.get("bos"), Mapping) and "endpoint" in platform["bos"]
        source = "platform.bos.endpoint" if given else ENV_BOS_ENDPOINT
        yield Destination(
            _host(bos.endpoint), f"BOS, from {source}; uploaded dataset files go there", credential
        )


def _from(env: Mapping[str, str], variable: str) -> str:
    return f", from {variable}" if env.get(variable) else ""


def _host(url: str) -> str:
    try:
        parts = urlsplit(url)
        return parts.netloc.rpartition("@")[2] or url
    except ValueError:
        return url
