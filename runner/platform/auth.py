"""Request authentication: bce-auth-v1 AK/SK signing and verification, and bearer tokens.

The signer follows the algorithm Baidu's SDK implements (see docs/platform-api.md, "Authentication"); its
pieces are separate functions so tests can check each step against a hand computation. The verifier (what
the local platform runs on each request) rebuilds the canonical request with the very same functions, so
signing and checking cannot drift apart.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
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


def canonical_headers(headers: Mapping[str, str], names: Iterable[str] | None = None) -> tuple[str, str]:
    """(canonical header block, signed header names).

    Without ``names``: the headers worth signing (``SIGNED_HEADERS`` and every ``x-bce-*``), which is both
    what the signer signs and what a verifier recomputes when an Authorization names no headers (BCE's
    default). With ``names``: exactly the headers named, as a verifier must when the client lists them.
    """
    wanted = None if names is None else {name.strip().lower() for name in names}
    lines: list[str] = []
    signed: list[str] = []
    for name, value in headers.items():
        lower = name.strip().lower()
        stripped = value.strip()
        if not stripped:
            continue
        if wanted is None and not (lower in SIGNED_HEADERS or lower.startswith("x-bce-")):
            continue
        if wanted is not None and lower not in wanted:
            continue
        lines.append(f"{uri_encode(lower)}:{uri_encode(stripped)}")
        signed.append(lower)
    return "\n".join(sorted(lines)), ";".join(sorted(signed))


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    names: Iterable[str] | None = None,
) -> str:
    """The text both sides sign: method, encoded path, canonical query and canonical headers."""
    block, _ = canonical_headers(headers, names)
    return "\n".join((method.upper(), uri_encode(path, keep_slash=True), canonical_query(query), block))


def signing_key(secret_key: str, auth_prefix: str) -> str:
    return hmac.new(secret_key.encode(), auth_prefix.encode(), hashlib.sha256).hexdigest()


def _signature(secret_key: str, auth_prefix: str, request_text: str) -> str:
    key = signing_key(secret_key, auth_prefix)
    return hmac.new(key.encode(), request_text.encode(), hashlib.sha256).hexdigest()


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
    signature = _signature(secret_key, prefix, canonical_request(method, path, query, headers))
    _, signed = canonical_headers(headers)
    return f"{prefix}/{signed}/{signature}"


# -- verification (the local platform's side) -----------------------------------------------------------


class SignatureRefused(Exception):
    """A request whose bce-auth-v1 Authorization does not hold; ``code`` is BCE's error code for it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ParsedAuthorization:
    """The six fields of ``bce-auth-v1/{ak}/{timestamp}/{expiration}/{signedHeaders}/{signature}``."""

    access_key: str
    timestamp: str
    epoch_s: float
    expiration_s: int
    signed_headers: tuple[str, ...]
    signature: str = field(repr=False)

    @property
    def prefix(self) -> str:
        return f"{AUTH_VERSION}/{self.access_key}/{self.timestamp}/{self.expiration_s}"


MALFORMED = "InvalidHTTPAuthHeader"
UNKNOWN_KEY = "InvalidAccessKeyId"
MISMATCH = "SignatureDoesNotMatch"
EXPIRED = "RequestExpired"
# How far a client's clock may run ahead of or behind this one before its timestamps are refused.
CLOCK_SKEW_S = 300


def parse_authorization(value: str) -> ParsedAuthorization:
    """The fields of a bce-auth-v1 Authorization value, or ``SignatureRefused`` saying what is wrong."""
    parts = value.strip().split("/")
    if len(parts) != 6 or parts[0] != AUTH_VERSION:
        raise SignatureRefused(
            MALFORMED,
            f"The Authorization header is not of the form {AUTH_VERSION}/{{accessKeyId}}/{{timestamp}}/"
            "{expirationPeriodInSeconds}/{signedHeaders}/{signature}.",
        )
    _, access_key, timestamp, expiration, signed, signature = parts
    try:
        epoch_s = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise SignatureRefused(
            MALFORMED, f"The Authorization timestamp {timestamp!r} is not of the form YYYY-MM-DDTHH:MM:SSZ."
        ) from None
    if not expiration.isdigit():
        raise SignatureRefused(
            MALFORMED, f"The Authorization expiration {expiration!r} is not a whole number of seconds."
        )
    if not access_key or not signature:
        raise SignatureRefused(MALFORMED, "The Authorization header has an empty access key or signature.")
    names = tuple(name for name in signed.lower().split(";") if name)
    return ParsedAuthorization(access_key, timestamp, epoch_s, int(expiration), names, signature)


def verify_authorization(
    value: str,
    *,
    access_key: str,
    secret_key: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    now_s: float,
    skew_s: int = CLOCK_SKEW_S,
) -> ParsedAuthorization:
    """Check a request's bce-auth-v1 ``Authorization`` against the one key pair this server knows.

    The canonical request is rebuilt with the same functions the signer uses, over exactly the headers the
    client says it signed (BCE's default set when it names none, as Baidu's SDKs send it), and ``host``
    must be among them so a signature cannot be replayed against another server. Raises
    ``SignatureRefused``; messages never contain a key or a signature.
    """
    parsed = parse_authorization(value)
    if not hmac.compare_digest(parsed.access_key.encode(), access_key.encode()):
        raise SignatureRefused(
            UNKNOWN_KEY, "The access key id in the Authorization header is not known here."
        )
    if parsed.epoch_s > now_s + skew_s:
        raise SignatureRefused(
            EXPIRED,
            f"The Authorization timestamp {parsed.timestamp} lies in the future (more than {skew_s} s "
            "ahead of this server's clock).",
        )
    if parsed.epoch_s + parsed.expiration_s < now_s - skew_s:
        raise SignatureRefused(
            EXPIRED,
            f"The signature expired: signed at {parsed.timestamp} for {parsed.expiration_s} s, and this "
            f"server's clock reads {canonical_time(now_s)}.",
        )
    present = {name.strip().lower() for name, value in headers.items() if value.strip()}
    names = parsed.signed_headers or tuple(
        sorted(n for n in present if n in SIGNED_HEADERS or n.startswith("x-bce-"))
    )
    if "host" not in names:
        raise SignatureRefused(MISMATCH, "The signature must cover the host header.")
    missing = sorted(set(names) - present)
    if missing:
        raise SignatureRefused(
            MISMATCH, f"The request lacks header(s) the signature names: {', '.join(missing)}."
        )
    expected = _signature(secret_key, parsed.prefix, canonical_request(method, path, query, headers, names))
    if not hmac.compare_digest(expected.encode(), parsed.signature.encode()):
        raise SignatureRefused(
            MISMATCH, "The request signature does not match the one computed with this server's key."
        )
    return parsed


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
