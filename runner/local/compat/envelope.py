"""The v1 envelope, and the signed download links the SDK fetches without credentials.

v1 console answers are ``{"log_id": ..., "result": ...}``; refusals are ``{"log_id", "error_code",
"error_msg"}`` with HTTP 200, the way Baidu's v1 gateways answer (reference §7.2 [E10]); the SDK's console
requestor raises on ``error_code`` in the body. Error numbers are not documented per route, so a refusal's
HTTP status maps onto the codes the SDK itself knows (consts.py): 14 (IAM certification failed) for refused
credentials, 336003 for a bad or unknown parameter, 500000 for the console's internal error.

Export downloads are plain ``GET``s (the SDK uses ``requests.get(url)`` with no signature, as for a
pre-signed BOS link), so a link carries its own expiry and an HMAC made with a secret that lives only as
long as the app.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner.local.api_common import ApiError, Body, Context

LINK_SECONDS = 3600
IAM_CERTIFICATION_FAILED, INVALID_PARAMETER, CONSOLE_INTERNAL_ERROR = 14, 336003, 500000


def v1_code(status: int) -> int:
    if status in (401, 403):
        return IAM_CERTIFICATION_FAILED
    return INVALID_PARAMETER if 400 <= status < 500 else CONSOLE_INTERNAL_ERROR


def log_id() -> str:
    """A v1 ``log_id``: Baidu's are decimal numbers, sent as a string."""
    return str(uuid.uuid4().int % 10**16)


def v1_success(result: Any, *, dataset: bool = False) -> dict[str, Any]:
    """The v1 answer; the dataset routes also carry ``status`` and ``success`` ([D7]; the SDK checks both)."""
    body = {"log_id": log_id(), "result": result}
    if dataset:
        body.update(status=200, success=True)
    return body


def v1_error(error: ApiError) -> dict[str, Any]:
    return {
        "log_id": log_id(),
        "error_code": v1_code(error.status),
        "error_msg": error.message,
    }


@dataclass
class LinkSigner:
    """Makes and checks expiring download links for paths this app serves."""

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def _mac(self, path: str, expires: int) -> str:
        return hmac.new(self.secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def sign(self, base_url: str, path: str, *, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + LINK_SECONDS)
        return f"{base_url}{path}?expires={expires}&signature={self._mac(path, expires)}"

    def check(self, path: str, expires: str, signature: str, *, now: float | None = None) -> bool:
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(self._mac(path, int(expires)), signature)


@dataclass
class V1Context:
    """What a v1 handler needs: the platform's context and the signer of its download links."""

    ctx: Context
    signer: LinkSigner

    def link(self, path: str) -> str:
        return self.signer.sign(self.ctx.base_url, path)


V1Handler = Callable[[V1Context, Body], Any]
