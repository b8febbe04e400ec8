"""Who may call the local platform and its replicas: a bearer token, a bce-auth-v1 key pair, or both.

There is no open gate: every port on 127.0.0.1 is reachable by every local user, so a gate is built with a
token, a key pair or both (the platform's own come from ``runner.local.credentials``). With a key pair every
console, chat and BOS request may carry a bce-auth-v1 signature, as Qianfan and BOS demand; with a token,
the bearer token is accepted as well. The gate answers with a ``Refusal`` and each API renders it in its own
error shape.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from runner.local.credentials import LocalKeys
from runner.platform.auth import AUTH_VERSION, SignatureRefused, verify_authorization

DENIED = "AccessDenied"


def header_text(value: str) -> str:
    """A header value as the client's text: Starlette decodes header bytes as latin-1, but BCE clients send
    (and sign) UTF-8, so a value such as ``x-bce-meta-note: 模型`` is decoded again; bytes that are not UTF-8
    stay as they came."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


@dataclass(frozen=True)
class Refusal:
    """Why a request was not let in: HTTP status, BCE error code and a sentence without any credential."""

    status: int
    code: str
    message: str


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def _host_name(authority: str) -> str:
    """``127.0.0.1`` of ``127.0.0.1:8765``, ``::1`` of ``[::1]:8765``."""
    if authority.startswith("["):
        return authority[1 : authority.find("]")] if "]" in authority else authority
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def browser_refusal(request: Request) -> Refusal | None:
    """Refuse what a web page in the user's browser could send: a ``Host`` that is not this machine's
    loopback name (DNS rebinding points a foreign name at 127.0.0.1) and an ``Origin`` that is a web page's.
    qfrun, the SDKs and curl send neither a foreign Host nor any Origin."""
    host = request.headers.get("host", "")
    if _host_name(host.strip().lower()) not in LOOPBACK_NAMES:
        return Refusal(
            403, DENIED, f"The Host {host!r} is not this platform's address; it answers 127.0.0.1."
        )
    origin = request.headers.get("origin")
    if origin is not None:
        scheme, _, authority = origin.strip().lower().partition("://")
        if scheme not in ("http", "https") or _host_name(authority) not in LOOPBACK_NAMES:
            return Refusal(403, DENIED, f"Requests from the web page {origin!r} are refused.")
    return None


@dataclass(frozen=True)
class Gate:
    """Checks one request's ``Authorization`` against the configured token and key pair."""

    token: str | None = field(default=None, repr=False)
    keys: LocalKeys | None = None
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if not self.token and self.keys is None:
            raise ValueError("a gate needs a token or a key pair: the local platform never runs open")

    def check(self, request: Request) -> Refusal | None:
        """None when the request may proceed, else the refusal to send."""
        foreign = browser_refusal(request)
        if foreign is not None:
            return foreign
        header = request.headers.get("authorization", "").strip()
        scheme, _, value = header.partition(" ")
        if self.token is not None and scheme.lower() == "bearer":
            if hmac.compare_digest(value.strip().encode(), self.token.encode()):
                return None
            return Refusal(401, DENIED, "The bearer token is not the platform's token.")
        if header.startswith(AUTH_VERSION + "/"):
            return self._signed(request, header)
        return Refusal(401, DENIED, f"The request needs {self._wanted()} in its Authorization header.")

    def _signed(self, request: Request, header: str) -> Refusal | None:
        if self.keys is None:
            return Refusal(
                403, DENIED, "This platform has no AK/SK configured; send the platform's bearer token."
            )
        try:
            verify_authorization(
                header,
                access_key=self.keys.access_key,
                secret_key=self.keys.secret_key,
                method=request.method,
                # The decoded path straight from the scope: request.url.path would cut a key at "#" or "?".
                path=request.scope["path"],
                query=request.query_params.multi_items(),
                headers={name: header_text(value) for name, value in request.headers.items()},
                now_s=self.clock(),
            )
        except SignatureRefused as refused:
            return Refusal(403, refused.code, refused.message)
        return None

    def _wanted(self) -> str:
        if self.keys is not None and self.token is not None:
            return "a bce-auth-v1 signature or the platform's bearer token"
        return "a bce-auth-v1 signature" if self.keys is not None else "the platform's bearer token"
