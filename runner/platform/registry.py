"""The platform kinds a pipeline may run on, one entry each, and the typed platform spec built from the
pipeline's ``platform`` value once.

An entry says everything that differs between the local platform and Qianfan's cloud outside the wire: how
qfrun opens it (starting the local platform when it is not running), how often a stage asks for its task's
status, how fingerprints name it, and whether it runs on this machine for free (so a run asks before buying
nothing, and the plan says so). Everything else asks the entry rather than comparing the kind's name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.platform.settings import ENV_LOCAL_TOKEN, settings_from_pipeline

if TYPE_CHECKING:
    from runner.platform.client import PlatformClient

Notify = Callable[[str], None]


@dataclass(frozen=True)
class PollPolicy:
    """How often a task is asked for its status: soon at first, then backing off to ``maximum``."""

    initial: float = 0.2
    factor: float = 1.5
    maximum: float = 5.0
    progress_every: float = 1.0  # at most one state write per second for rows done


@dataclass(frozen=True)
class PlatformKind:
    name: str
    on_this_machine: bool  # free: nothing to confirm before a run, and the plan says what is free
    poll: PollPolicy
    identity: Callable[[Mapping[str, Any]], str]  # the platform as fingerprints see it
    # Opens a client, reading settings and credentials from the environment it is given.
    open: Callable[[Mapping[str, Any], Notify, Mapping[str, str]], PlatformClient]
    # Whether its settings also come from a .env file, as the official SDK reads Qianfan's (platform.envfile).
    reads_dot_env: bool = False


@dataclass(frozen=True)
class PlatformSpec:
    """A pipeline's platform: its kind's entry and the options as written (``kind`` included)."""

    kind: PlatformKind
    options: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def local(self) -> bool:
        return self.kind.on_this_machine

    def identity(self) -> str:
        return self.kind.identity(self.options)

    def open(self, notify: Notify, environ: Mapping[str, str] | None = None) -> PlatformClient:
        return self.kind.open(self.options, notify, os.environ if environ is None else environ)


def _open_local(options: Mapping[str, Any], notify: Notify, env: Mapping[str, str]) -> PlatformClient:
    """The local platform the pipeline names by ``url``, else the one qfrun runs (started when it is not)."""
    # Imported here: the local platform's launcher and the HTTP client are not needed for validate or plan.
    from runner.local.home import Home
    from runner.local.launcher import RestartingTransport, ensure_running, token_for
    from runner.platform.client import PlatformClient

    environ = dict(env)
    url = str(options.get("url") or "")
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
    settings = settings_from_pipeline(dict(options), environ=environ, local_base_url=url)
    return PlatformClient(settings, transport=transport)


def _open_qianfan(options: Mapping[str, Any], notify: Notify, env: Mapping[str, str]) -> PlatformClient:
    from runner.platform.client import PlatformClient

    return PlatformClient(settings_from_pipeline(dict(options), environ=env))


PLATFORM_KINDS: dict[str, PlatformKind] = {
    # On this machine a status request costs about a millisecond, so a finished task is noticed within 0.2 s;
    # a local platform's URL changes per start, so fingerprints leave it out.
    "local": PlatformKind(
        "local", True, PollPolicy(initial=0.05, maximum=0.2), lambda options: "local", _open_local
    ),
    # Qianfan keeps the documented, slower pacing.
    "qianfan": PlatformKind(
        "qianfan",
        False,
        PollPolicy(),
        lambda options: f"qianfan {options.get('url', 'default')}",
        _open_qianfan,
        reads_dot_env=True,
    ),
}


def platform_spec(value: Any) -> PlatformSpec:
    """The spec of a pipeline's ``platform`` value (``local``, ``qianfan`` or ``{kind: ..., ...}``); a kind
    the schema let through but no entry names is refused in one sentence."""
    options: Mapping[str, Any] = {"kind": value} if isinstance(value, str) else dict(value or {})
    name = str(options.get("kind", "local"))
    kind = PLATFORM_KINDS.get(name)
    if kind is None:
        raise ValueError(f"the platform kind {name!r} is not one qfrun knows ({', '.join(PLATFORM_KINDS)})")
    return PlatformSpec(kind, options)
