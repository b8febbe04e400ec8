"""Request authentication: bce-auth-v1 AK/SK signing and bearer tokens, as ``httpx.Auth`` objects.

The signer follows the algorithm Baidu's SDK implements (see docs/platform-api.md, "Authentication"); its
pieces are separate functions so tests can check each step against a hand computation.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from runner.platform.settings import Credentials

AUTH_VERSION = "bce-auth-v1"
# Headers qfrun signs when the request has them (x-bce-* headers are always signed).
SIGNED_HEADERS = frozenset({"host", "content-type", "content-length", "content-md5"})
_UNRESERVED = "-._~"


def uri_encode(text: str, *, keep_slash: bool = False) -> str:
    """RFC 3986 encoding: every byte outside ``A-Za-z0-9-._~`` (and ``/`` when kept) as %XX upper-case."""
    return quote(text, safe=_UNRESERVED + ("/" if keep_slash else ""))


def canonical_time(epoch_s: float) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC, the form of ``x-bce-date`` and the auth prefix."""
    return datetime.fromtimestamp(int(epoch_s), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Sorted ``key=value`` pairs, both encoded, ``authorization`` left out."""
    pairs = [f"{uri_encode(k)}={uri_encode(v)}" for k, v in params if k.lower() != "authorization"]
    return "&".join(sorted(pairs))


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """(canonical header block, signed header names) for the headers worth signing."""
    lines: list[str] = []
    names: list[str] = []
    for name, value in headers.items():
        lower = name.strip().lower()
        stripped = value.strip()
        if not stripped or not (lower in SIGNED_HEADERS or lower.startswith("x-bce-")):
            continue
        lines.append(f"{uri_encode(lower)}:{uri_encode(stripped)}")
        names.append(lower)
    return "\n".join(sorted(lines)), ";".join(sorted(names))


def canonical_request(
    method: str, path: str, query: Iterable[tuple[str, str]], headers: Mapping[str, str]
) -> str:
    block, _ = canonical_headers(headers)
    return "\n".join((method.upper(), uri_encode(path, keep_slash=True), canonical_query(query), block))


def signing_key(secret_key: str, auth_prefix: str) -> str:
    return hmac.new(secret_key.encode(), auth_prefix.encode(), hashlib.sha256).hexdigest()


def authorization(
    *,
    access_key: str,
    secret_key: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    timestamp: str,
    expiration_s: int,
) -> str:
    """The ``Authorization`` header value for one request."""
    prefix = f"{AUTH_VERSION}/{access_key}/{timestamp}/{expiration_s}"
    key = signing_key(secret_key, prefix)
    request_text = canonical_request(method, path, query, headers)
    signature = hmac.new(key.encode(), request_text.encode(), hashlib.sha256).hexdigest()
    _, signed = canonical_headers(headers)
    return f"{prefix}/{signed}/{signature}"


class RefreshableAuth(httpx.Auth):
    """An ``httpx.Auth`` that can renew itself once when the platform says its token expired."""

    def refresh(self) -> None:
        """Renew the credential; the default does nothing (a signature is fresh on every request)."""


class BceSigner(RefreshableAuth):
    """Signs each request with bce-auth-v1 and sets ``x-bce-date``."""

    def __init__(
        self, credentials: Credentials, *, expiration_s: int = 300, clock: Callable[[], float] = time.time
    ) -> None:
        self._credentials = credentials
        self._expiration_s = expiration_s
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        timestamp = canonical_time(self._clock())
        request.headers["x-bce-date"] = timestamp
        request.headers["Authorization"] = authorization(
            access_key=self._credentials.access_key,
            secret_key=self._credentials.secret_key,
            method=request.method,
            path=request.url.path,
            query=request.url.params.multi_items(),
            headers=dict(request.headers.items()),
            timestamp=timestamp,
            expiration_s=self._expiration_s,
        )
        yield request

    def __repr__(self) -> str:
        return "BceSigner()"


class BearerAuth(RefreshableAuth):
    """``Authorization: Bearer <token>``; ``refresh`` re-reads the token's environment variable."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._credentials.bearer_token
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request

    def refresh(self) -> None:
        self._credentials.refresh_bearer()

    def __repr__(self) -> str:
        return "BearerAuth()"


def auth_for(credentials: Credentials, *, expiration_s: int = 300) -> RefreshableAuth:
    """AK/SK signing when both keys are set (no expiry to manage), else a bearer token (maybe none)."""
    if credentials.has_signing_keys:
        return BceSigner(credentials, expiration_s=expiration_s)
    return BearerAuth(credentials)
