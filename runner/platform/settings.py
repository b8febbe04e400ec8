"""How to reach a platform: its kind, base URLs, pacing, timeouts and credentials.

Built from the pipeline's ``platform`` value plus the environment, because credentials never live in a
pipeline file. Credentials sit in ``Credentials``, whose ``repr``/``str`` show only which kinds are set, so a
settings object can be logged or put into an error without leaking a key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from runner.errors import PlatformAuthError, PlatformError

PlatformKind = Literal["local", "qianfan"]

ENV_ACCESS_KEY = "QIANFAN_ACCESS_KEY"
ENV_SECRET_KEY = "QIANFAN_SECRET_KEY"
ENV_BEARER_TOKEN = "QIANFAN_BEARER_TOKEN"
ENV_APP_KEY = "QIANFAN_AK"
ENV_APP_SECRET = "QIANFAN_SK"
ENV_DOT_ENV = "QIANFAN_DOT_ENV_CONFIG_FILE"
# Every other credential the official SDK reads (qianfan/config.py: AK, SK, ACCESS_TOKEN, BEARER_TOKEN,
# ACCESS_CODE under the QIANFAN_ prefix) is named where credentials are missing, so none is silently ignored.
UNUSED_SDK_CREDENTIALS = (
    f"the SDK's other credentials cannot sign a console request, so qfrun does not use them: {ENV_APP_KEY}/"
    f"{ENV_APP_SECRET} and QIANFAN_ACCESS_TOKEN (an application's key pair and its OAuth token, for "
    f"inference), {ENV_BEARER_TOKEN} (inference only) and QIANFAN_ACCESS_CODE (private deployments)"
)
ENV_CONSOLE_BASE_URL = "QIANFAN_CONSOLE_API_BASE_URL"
ENV_INFERENCE_BASE_URL = "QIANFAN_BASE_URL"
ENV_LOCAL_TOKEN = "QFRUN_LOCAL_TOKEN"
ENV_LOCAL_ACCESS_KEY = "QFRUN_LOCAL_ACCESS_KEY"
ENV_LOCAL_SECRET_KEY = "QFRUN_LOCAL_SECRET_KEY"
ENV_BOS_ENDPOINT = "QIANFAN_BOS_ENDPOINT"
ENV_BOS_BUCKET = "QIANFAN_BOS_BUCKET"
# The bucket the local platform creates at its first start; local uploads and task outputs go there.
LOCAL_BOS_BUCKET = "qfrun-local"

DEFAULT_CONSOLE_BASE_URL = "https://qianfan.baidubce.com"
DEFAULT_INFERENCE_BASE_URL = "https://aip.baidubce.com"


class Credentials:
    """AK/SK and bearer token; never shown by ``repr`` or ``str``.

    The token is re-read from the environment by ``refresh_bearer`` (the one refresh an expired token gets),
    so a rotated token is picked up without restarting qfrun.
    """

    __slots__ = ("_access_key", "_bearer_env", "_bearer_token", "_environ", "_secret_key")

    def __init__(
        self,
        *,
        access_key: str = "",
        secret_key: str = "",
        bearer_token: str = "",
        bearer_env: str = "",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self._bearer_token = bearer_token
        self._bearer_env = bearer_env
        self._environ = environ

    @property
    def access_key(self) -> str:
        return self._access_key

    @property
    def secret_key(self) -> str:
        return self._secret_key

    @property
    def bearer_token(self) -> str:
        return self._bearer_token

    @property
    def has_signing_keys(self) -> bool:
        return bool(self._access_key and self._secret_key)

    def refresh_bearer(self) -> None:
        """Re-read the bearer token from the environment variable it came from."""
        if self._bearer_env:
            source = self._environ if self._environ is not None else os.environ
            self._bearer_token = source.get(self._bearer_env, "").strip()

    def secrets(self) -> tuple[str, ...]:
        """Every secret value held, for redaction; empty strings left out."""
        return tuple(s for s in (self._access_key, self._secret_key, self._bearer_token) if s)

    def __repr__(self) -> str:
        kinds = [
            name
            for name, value in (("ak/sk", self.has_signing_keys), ("bearer", self._bearer_token))
            if value
        ]
        return f"Credentials({', '.join(kinds) or 'none'})"

    __str__ = __repr__


@dataclass(frozen=True)
class BosSettings:
    """Where qfrun keeps its files in BOS: the endpoint (``https://bj.bcebos.com``) and one bucket."""

    endpoint: str
    bucket: str


@dataclass(frozen=True)
class PlatformSettings:
    """Everything the HTTP client needs to reach one platform."""

    kind: PlatformKind
    console_base_url: str
    inference_base_url: str
    credentials: Credentials = field(default_factory=Credentials)
    rps: float = 10.0
    burst: int = 1
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    sign_expiration_s: int = 300
    bos: BosSettings | None = None

    @property
    def display_name(self) -> str:
        return f"{self.kind} {self.console_base_url}"


LOCAL_RPS = 500.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names this machine: where the local platform's token and keys may go."""
    try:
        return urlsplit(url).hostname in LOOPBACK_HOSTS
    except ValueError:
        return False


def _positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise PlatformError(f"the platform setting {what} must be a positive number, not {value!r}")
    return float(value)


def settings_from_pipeline(
    platform: str | Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    local_base_url: str = "",
) -> PlatformSettings:
    """Settings for a pipeline's ``platform`` value (``local``, ``qianfan`` or ``{kind: ..., rps: ...}``).

    ``local_base_url`` is where the local platform listens (the CLI knows it once it started the server);
    a mapping may also name it as ``url``. Credentials and Qianfan base URLs come only from ``environ``.
    """
    env = environ if environ is not None else os.environ
    spec: Mapping[str, Any] = {"kind": platform} if isinstance(platform, str) else platform
    kind = spec.get("kind", "local")
    tuning: dict[str, Any] = {}
    if "rps" in spec:
        tuning["rps"] = _positive(spec["rps"], "rps")
    if "timeout_s" in spec:
        tuning["read_timeout_s"] = _positive(spec["timeout_s"], "timeout_s")
    if kind == "local":
        base = str(spec.get("url") or local_base_url).rstrip("/")
        if not base:
            raise PlatformError(
                "the local platform's address is not known; start it with `qfrun platform start` "
                "or let `qfrun run` start it"
            )
        if not is_loopback_url(base):
            # The local token and keys go with every request: never to a host off this machine.
            raise PlatformError(
                f"the local platform's URL {base} is not a loopback address; qfrun will not send it"
            )
        token = env.get(ENV_LOCAL_TOKEN, "").strip()
        # A local platform started with QFRUN_LOCAL_ACCESS_KEY/SECRET_KEY verifies signatures; sign alike.
        creds = Credentials(
            access_key=env.get(ENV_LOCAL_ACCESS_KEY, "").strip(),
            secret_key=env.get(ENV_LOCAL_SECRET_KEY, "").strip(),
            bearer_token=token,
            bearer_env=ENV_LOCAL_TOKEN,
            environ=environ,
        )
        tuning["bos"] = bos_settings(spec.get("bos"), {}, BosSettings(base, LOCAL_BOS_BUCKET))
        if not is_loopback_url(tuning["bos"].endpoint):  # its BOS client signs with the same credentials
            raise PlatformError(
                f"the local platform's BOS endpoint {tuning['bos'].endpoint} is not a loopback address; "
                "qfrun will not send it the local token or keys"
            )
        # The local platform has no quota to protect: Qianfan's budget of 10 requests a second would only
        # throttle its chat services (measured: 8 concurrent chats capped at 10 req/s, no faster than 1).
        tuning.setdefault("rps", LOCAL_RPS)
        return PlatformSettings("local", base, base, creds, **tuning)
    if kind == "qianfan":
        return PlatformSettings(
            "qianfan",
            (env.get(ENV_CONSOLE_BASE_URL) or DEFAULT_CONSOLE_BASE_URL).rstrip("/"),
            (env.get(ENV_INFERENCE_BASE_URL) or DEFAULT_INFERENCE_BASE_URL).rstrip("/"),
            qianfan_credentials(env, environ),
            bos=bos_settings(spec.get("bos"), env, None),
            **tuning,
        )
    raise PlatformError(f"the platform kind {kind!r} is unknown; use 'local' or 'qianfan'")


def bos_settings(value: Any, env: Mapping[str, str], default: BosSettings | None) -> BosSettings | None:
    """BOS settings from a pipeline's ``platform.bos`` mapping, else the environment, else ``default``.

    Each of ``endpoint`` and ``bucket`` comes from the mapping when it names it, else from
    ``QIANFAN_BOS_ENDPOINT`` / ``QIANFAN_BOS_BUCKET``, else from ``default``; a half-known pair is an error.
    """
    if value is not None and not isinstance(value, Mapping):
        raise PlatformError(
            f"the platform setting bos must be a mapping of endpoint and bucket, not {value!r}"
        )
    spec: Mapping[str, Any] = value or {}
    fields: dict[str, str] = {}
    for name, variable in (("endpoint", ENV_BOS_ENDPOINT), ("bucket", ENV_BOS_BUCKET)):
        given = spec.get(name, env.get(variable, ""))
        if not isinstance(given, str):
            raise PlatformError(f"the platform setting bos.{name} must be a string, not {given!r}")
        fields[name] = given.strip()
    endpoint = fields["endpoint"].rstrip("/") or (default.endpoint if default else "")
    bucket = fields["bucket"] or (default.bucket if default else "")
    if not (endpoint or bucket):
        return None
    if not (endpoint and bucket):
        missing = "endpoint" if bucket else "bucket"
        variable = ENV_BOS_ENDPOINT if bucket else ENV_BOS_BUCKET
        raise PlatformError(
            f"the BOS {missing} is not set; set platform.bos.{missing} in the pipeline or {variable} "
            "in the environment"
        )
    return BosSettings(endpoint, bucket)


def qianfan_credentials(env: Mapping[str, str], environ: Mapping[str, str] | None = None) -> Credentials:
    """Qianfan credentials from the environment, or an error naming the variables to set.

    Every console page documents only AK/SK signing (bce-auth-v1) [B4][C1][S1][M2]; a bearer token is
    documented for inference only [S8], so it cannot stand in for the keys.
    """
    ak = env.get(ENV_ACCESS_KEY, "").strip()
    sk = env.get(ENV_SECRET_KEY, "").strip()
    token = env.get(ENV_BEARER_TOKEN, "").strip()
    if bool(ak) != bool(sk):
        missing = ENV_SECRET_KEY if ak else ENV_ACCESS_KEY
        raise PlatformAuthError(
            f"Qianfan credentials are incomplete: {missing} is not set; set both {ENV_ACCESS_KEY} and "
            f"{ENV_SECRET_KEY}",
            platform="qianfan",
        )
    if not ak:
        also = []
        if token:
            also.append(f"{ENV_BEARER_TOKEN} is set, but Qianfan takes a bearer token for inference only")
        if env.get(ENV_APP_KEY) or env.get(ENV_APP_SECRET):
            also.append(
                f"{ENV_APP_KEY}/{ENV_APP_SECRET} are an application's keys for the inference API, not the "
                "console's"
            )
        why = f" ({'; '.join(also)})" if also else ""
        raise PlatformAuthError(
            f"no Qianfan console credentials are set{why}; set {ENV_ACCESS_KEY} and {ENV_SECRET_KEY} (the "
            "account's access key pair, which signs every console request) in the environment or in the "
            f"repository's .env file ({ENV_DOT_ENV} names another); {UNUSED_SDK_CREDENTIALS}",
            platform="qianfan",
        )
    return Credentials(
        access_key=ak, secret_key=sk, bearer_token=token, bearer_env=ENV_BEARER_TOKEN, environ=environ
    )
