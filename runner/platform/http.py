"""The one HTTP session of a platform: pacing, retries and the mapping of failures onto ``PlatformError``.

Reads are retried on any transient failure. A create is retried only when the platform certainly did not
act on it (connection refused, rate limited); when the outcome is unknown (the response was lost, a 5xx) it
raises ``AmbiguousCreate`` so that the client can look the task up by its deterministic name before it
creates again. Errors carry method, path (never a query string beyond ``Action``), status and request id;
any credential the platform echoes back is masked.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from runner.errors import (
    PlatformAuthError,
    PlatformError,
    PlatformNotFound,
    PlatformProtocolError,
    PlatformQueueFull,
    PlatformRateLimited,
    PlatformServerError,
    PlatformStatusError,
    PlatformUnavailable,
)
from runner.platform.auth import RefreshableAuth, auth_for
from runner.platform.polling import Backoff, Wait
from runner.platform.ratelimit import TokenBucket, shared_bucket
from runner.platform.settings import PlatformSettings

log = logging.getLogger(__name__)

CHAT_PATH = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"

# Qianfan's numeric error codes (python/qianfan/consts.py, APIErrorCode) and the console's string codes.
RATE_CODES: frozenset[int | str] = frozenset(
    {4, 17, 18, 19, 336501, 336502, "RateLimitExceeded", "QPSLimitReached", "TooManyRequests"}
)
SERVER_CODES: frozenset[int | str] = frozenset(
    {1, 2, 336000, 336100, 500000, "InternalError", "ServerHighLoad", "ServiceUnavailable"}
)
AUTH_CODES: frozenset[int | str] = frozenset(
    {6, 13, 14, 336004, "AccessDenied", "Unauthorized", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
)
QUEUE_FULL_CODE = "TaskRunningNumberExceedLimit"  # 20 queued or running batch inference tasks [B1]
TOKEN_CODES: frozenset[int | str] = frozenset({110, 111})
NOT_FOUND_CODES: frozenset[int | str] = frozenset({336005, "ResourceNotFound", "NotFound", "NoSuchResource"})

# How a failure may be retried: not at all, always (nothing happened), or only if it is a read.
NO_RETRY, SAFE, AMBIGUOUS, REFRESH = "no", "safe", "ambiguous", "refresh"


@dataclass(frozen=True)
class Reply:
    """A successful answer: the decoded JSON object and where it came from (for protocol errors)."""

    body: Mapping[str, Any]
    method: str
    path: str
    status: int
    request_id: str | None


class AmbiguousCreate(Exception):
    """A create whose outcome is unknown; ``error`` is what to report if it cannot be resolved."""

    def __init__(self, error: PlatformError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Failure:
    error: PlatformError
    retry: str
    retry_after: float | None = None


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    parsed = email.utils.parsedate_to_datetime(value) if "," in value else None
    return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _as_code(value: Any) -> int | str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else text or None


class PlatformHttp:
    """One ``httpx.Client`` per platform with the shared rate budget, retries and error mapping."""

    def __init__(
        self,
        settings: PlatformSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        bucket: TokenBucket | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._auth: RefreshableAuth = auth_for(settings.credentials, expiration_s=settings.sign_expiration_s)
        self._client = httpx.Client(
            transport=transport,
            auth=self._auth,
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            follow_redirects=False,
            headers={"User-Agent": "qfrun"},
        )
        self._bucket = bucket or shared_bucket(settings.console_base_url, settings.rps, settings.burst)
        self._sleep = sleep
        self._backoff = Backoff(settings.backoff_base_s, settings.backoff_cap_s, rng)
        self._secrets = settings.credentials.secrets()

    def close(self) -> None:
        self._client.close()

    # -- public calls -------------------------------------------------------------------------------

    def console(
        self,
        route: str,
        action: str,
        body: Mapping[str, Any],
        *,
        create: bool = False,
        result_required: bool = True,
    ) -> Reply:
        """``POST /v2/{route}?Action={action}``; the reply's body holds ``result`` unless the action is one
        that answers only ``{"requestId"}`` (``result_required=False``, e.g. CancelModelCompTask [C4])."""
        path = f"/v2/{route}"
        reply = self._call(
            f"{self.settings.console_base_url}{path}",
            f"{path}?Action={action}",
            body,
            {"Action": action},
            create,
        )
        if result_required and "result" not in reply.body:
            raise self.protocol_error(reply, "the field 'result' is missing from the response")
        return reply

    def chat(self, endpoint_suffix: str, body: Mapping[str, Any]) -> Reply:
        path = f"{CHAT_PATH}{endpoint_suffix}"
        return self._call(f"{self.settings.inference_base_url}{path}", path, body, {}, False)

    def protocol_error(self, reply: Reply, detail: str) -> PlatformProtocolError:
        return PlatformProtocolError(
            detail,
            platform=self.settings.display_name,
            method=reply.method,
            path=reply.path,
            status=reply.status,
            request_id=reply.request_id,
        )

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Jittered exponential delay for retry ``attempt`` (0-based), at least a Retry-After."""
        return self._backoff(attempt, retry_after)

    def pause(self, seconds: float) -> None:
        self._sleep(seconds)

    # -- the loop -----------------------------------------------------------------------------------

    def _call(
        self, url: str, shown: str, body: Mapping[str, Any], params: Mapping[str, str], create: bool
    ) -> Reply:
        retries = Wait(self._sleep, self._backoff, tries=self.settings.max_retries)
        refreshed = False
        while True:
            self._bucket.acquire()
            started = time.monotonic()
            outcome = self._send_once(url, shown, body, params)
            elapsed_ms = (time.monotonic() - started) * 1000
            if isinstance(outcome, Reply):
                log.debug(
                    "POST %s -> %s in %.0f ms (request id %s)",
                    shown,
                    outcome.status,
                    elapsed_ms,
                    outcome.request_id,
                )
                return outcome
            log.debug("POST %s failed in %.0f ms: %s", shown, elapsed_ms, outcome.error)
            if outcome.retry == REFRESH and not refreshed:
                refreshed = True
                self._auth.refresh()
                log.info("The platform said the token expired; retrying once with a refreshed token.")
                continue
            retryable = outcome.retry == SAFE or (outcome.retry == AMBIGUOUS and not create)
            if outcome.retry == AMBIGUOUS and create:
                raise AmbiguousCreate(outcome.error)
            if not retryable or retries.spent:
                raise outcome.error
            delay = self._backoff(retries.pauses, outcome.retry_after)
            log.info("Retry %d of %s in %.1f s: %s", retries.pauses + 1, shown, delay, outcome.error)
            retries.pause(delay)

    def _send_once(
        self, url: str, shown: str, body: Mapping[str, Any], params: Mapping[str, str]
    ) -> Reply | _Failure:
        try:
            response = self._client.post(url, params=params, json=dict(body))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return _Failure(self._unavailable(shown, f"could not connect ({self._describe(exc)})"), SAFE)
        except httpx.TimeoutException as exc:
            return _Failure(self._unavailable(shown, f"no answer in time ({self._describe(exc)})"), AMBIGUOUS)
        except httpx.TransportError as exc:
            return _Failure(
                self._unavailable(shown, f"the connection failed ({self._describe(exc)})"), AMBIGUOUS
            )
        return self._classify(response, shown)

    def _describe(self, exc: Exception) -> str:
        text = str(exc).strip()
        return _redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, self._secrets)

    def _unavailable(self, shown: str, message: str) -> PlatformUnavailable:
        return PlatformUnavailable(message, platform=self.settings.display_name, method="POST", path=shown)

    def _classify(self, response: httpx.Response, shown: str) -> Reply | _Failure:
        status = response.status_code
        request_id: str | None = response.headers.get("x-bce-request-id") or None
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            found = body.get("requestId") or body.get("log_id") or body.get("id")
            if isinstance(found, str | int) and not isinstance(found, bool) and str(found):
                request_id = str(found)
        code: int | str | None = None
        message = ""
        if isinstance(body, dict) and _as_code(body.get("error_code")) not in (None, 0):
            code = _as_code(body.get("error_code"))
            message = str(body.get("error_msg") or "")
        elif status >= 300:
            if isinstance(body, dict):
                code = _as_code(body.get("code"))
                message = str(body.get("message") or "")
            message = message or response.reason_phrase or "no message"
        elif not isinstance(body, dict):
            what = "not JSON" if body is None else "not a JSON object"
            return _Failure(
                PlatformProtocolError(
                    f"the response body is {what}",
                    platform=self.settings.display_name,
                    method="POST",
                    path=shown,
                    status=status,
                    request_id=request_id,
                ),
                NO_RETRY,
            )
        else:
            return Reply(body, "POST", shown, status, request_id)
        return self._failure(status, code, _redact(message, self._secrets), shown, request_id, response)

    def _failure(
        self,
        status: int,
        code: int | str | None,
        message: str,
        shown: str,
        request_id: str | None,
        response: httpx.Response,
    ) -> _Failure:
        detail = f"{code}: {message}" if code is not None else message
        common: dict[str, Any] = {
            "platform": self.settings.display_name,
            "method": "POST",
            "path": shown,
            "status": status,
            "request_id": request_id,
            "code": code,
        }
        if code == QUEUE_FULL_CODE:
            return _Failure(
                PlatformQueueFull(f"the account runs as many tasks as it may ({detail})", **common), NO_RETRY
            )
        if code in TOKEN_CODES:
            return _Failure(PlatformAuthError(f"the access token was refused ({detail})", **common), REFRESH)
        if code in RATE_CODES or (code not in SERVER_CODES and status == 429):
            return _Failure(
                PlatformRateLimited(f"the platform's rate limit was hit ({detail})", **common),
                SAFE,
                _retry_after(response),
            )
        if code in SERVER_CODES or (code not in AUTH_CODES and status >= 500):
            return _Failure(
                PlatformServerError(f"the platform failed on its side ({detail})", **common),
                AMBIGUOUS,
                _retry_after(response),
            )
        if code in AUTH_CODES or status in (401, 403):
            return _Failure(
                PlatformAuthError(f"the platform refused the credentials ({detail})", **common), NO_RETRY
            )
        if code in NOT_FOUND_CODES or status == 404:
            return _Failure(
                PlatformNotFound(f"the platform has no such resource ({detail})", **common), NO_RETRY
            )
        return _Failure(
            PlatformStatusError(f"the platform refused the request ({detail})", **common), NO_RETRY
        )
