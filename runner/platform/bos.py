"""A small BOS client: put, head, get and list objects, and the upload of a pipeline's dataset file.

It speaks BOS's path-style REST API (``/{bucket}/{key}``) over httpx, signs with the platform's bce-auth-v1
keys (``runner.platform.auth``) and takes its pace from the same rate budget as the platform's other calls
to that endpoint. Every call is safe to repeat (a put of the same bytes to the same key is the same
object), so transient failures are retried with jittered backoff; what remains becomes a ``PlatformError``
naming the method, the ``bos:/`` location, the status and the request id, never a credential.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from runner import content_hash
from runner.errors import (
    PlatformAuthError,
    PlatformError,
    PlatformNotFound,
    PlatformProtocolError,
    PlatformRateLimited,
    PlatformServerError,
    PlatformStatusError,
    PlatformUnavailable,
)
from runner.files import MAX_DATASET_BYTES, PathRefused, read_regular
from runner.platform.auth import auth_for, uri_encode
from runner.platform.borrowed import borrowed
from runner.platform.dataset_rows import dataset_rows
from runner.platform.polling import Backoff, Wait
from runner.platform.ratelimit import TokenBucket, shared_bucket
from runner.platform.settings import ENV_BOS_BUCKET, ENV_BOS_ENDPOINT, BosSettings, PlatformSettings

log = logging.getLogger(__name__)

DATASETS_PREFIX = "qfrun/datasets"
BATCH_INPUT_PREFIX = "qfrun/batch-input"
BATCH_OUTPUT_PREFIX = "qfrun/batch-output"
OCTET_STREAM = "application/octet-stream"
E = TypeVar("E", bound=PlatformError)


@dataclass(frozen=True)
class BosObject:
    """An object as HEAD or a listing describes it; ``etag`` without its quotes."""

    key: str
    size: int
    etag: str
    last_modified: str = ""


class _Retry(Exception):
    """A failure worth another try (connection trouble, 429, 5xx); ``error`` is what to raise at the end."""

    def __init__(self, error: PlatformError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def configured_bos(settings: PlatformSettings) -> BosSettings:
    """The platform's BOS settings, or an error naming where to set them."""
    if settings.bos is None:
        raise PlatformError(
            f"no BOS is configured for the platform {settings.display_name}; set {ENV_BOS_ENDPOINT} and "
            f"{ENV_BOS_BUCKET}, or platform.bos in the pipeline"
        )
    return settings.bos


def batch_output_folder(settings: PlatformSettings) -> str:
    """Where qfrun's batch inference tasks write: each task gets its own sub-folder there [B2]."""
    return f"bos:/{configured_bos(settings).bucket}/{BATCH_OUTPUT_PREFIX}/"


class BosClient:
    """One ``httpx.Client`` on the BOS endpoint of ``settings.bos``."""

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
        self.bos: BosSettings = configured_bos(settings)
        self._client = httpx.Client(
            base_url=self.bos.endpoint,
            transport=borrowed(
                transport
            ),  # a transport handed in is the platform client's: not ours to close
            auth=auth_for(settings.credentials, expiration_s=settings.sign_expiration_s),
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            follow_redirects=False,
            headers={"User-Agent": "qfrun"},
        )
        # Keyed by endpoint: the local platform serves BOS itself and so shares its console's budget.
        self._pace = bucket or shared_bucket(self.bos.endpoint, settings.rps, settings.burst)
        self._sleep = sleep
        self._backoff = Backoff(settings.backoff_base_s, settings.backoff_cap_s, rng)
        self._secrets = settings.credentials.secrets()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> BosClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- objects ---------------------------------------------------------------------------------------

    def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str = OCTET_STREAM,
        if_match: str = "",
        if_none_match: str = "",
    ) -> str:
        """Store ``data`` at ``bucket``/``key``; returns the ETag, checked to be the data's MD5.

        ``if_match`` (an ETag) and ``if_none_match`` (``*``) make it BOS's conditional put: when the object
        is not as stated, BOS answers 412 and this raises ``PlatformStatusError`` with ``status == 412``.
        """
        digest = hashlib.md5(data, usedforsecurity=False)
        headers = {
            "Content-Type": content_type,
            "Content-MD5": base64.b64encode(digest.digest()).decode(),
        }
        if if_match:
            headers["If-Match"] = f'"{if_match}"'
        if if_none_match:
            headers["If-None-Match"] = if_none_match
        response = self._send("PUT", bucket, key, content=data, headers=headers)
        etag = response.headers.get("etag", "").strip('"')
        if etag and etag != digest.hexdigest():
            raise self._protocol("PUT", bucket, key, response, "the ETag is not the MD5 of the bytes sent")
        return etag or digest.hexdigest()

    def head_object(self, bucket: str, key: str) -> BosObject | None:
        """The object's size and ETag, or None when there is no such object (a HEAD's 404 has no body to
        tell a missing key from a missing bucket)."""
        try:
            response = self._send("HEAD", bucket, key)
        except PlatformNotFound:
            return None
        size = response.headers.get("content-length", "")
        if not size.isdigit():
            raise self._protocol("HEAD", bucket, key, response, "Content-Length is missing")
        return BosObject(
            key,
            int(size),
            response.headers.get("etag", "").strip('"'),
            response.headers.get("last-modified", ""),
        )

    def get_object(self, bucket: str, key: str) -> bytes:
        return self._send("GET", bucket, key).content

    def get_versioned(self, bucket: str, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag (what a later ``if_match`` names), or None when it does not exist."""
        try:
            response = self._send("GET", bucket, key)
        except PlatformNotFound as missing:
            if missing.code == "NoSuchBucket":
                raise
            return None
        return response.content, response.headers.get("etag", "").strip('"')

    def delete_object(self, bucket: str, key: str) -> bool:
        """Delete the object; False when there was none (a retried delete finds it gone)."""
        try:
            self._send("DELETE", bucket, key)
        except PlatformNotFound as missing:
            if missing.code == "NoSuchBucket":
                raise
            return False
        return True

    def list_objects(self, bucket: str, prefix: str = "") -> list[BosObject]:
        """Every object under ``prefix``, following ``nextMarker`` page by page."""
        found: list[BosObject] = []
        marker = ""
        while True:
            params = {"prefix": prefix, "maxKeys": "1000", **({"marker": marker} if marker else {})}
            response = self._send("GET", bucket, "", params=params)
            body = self._json(response, bucket)
            contents = body.get("contents", [])  # an empty page may leave the list out
            if not isinstance(contents, list):
                raise self._protocol("GET", bucket, "", response, "the listing has no 'contents' list")
            for item in contents:
                found.append(self._listed(item, response, bucket))
            if body.get("isTruncated") is not True:
                return found
            following = body.get("nextMarker")
            if not isinstance(following, str) or following <= marker:
                raise self._protocol(
                    "GET", bucket, "", response, "a truncated listing has no usable nextMarker"
                )
            marker = following

    # -- datasets --------------------------------------------------------------------------------------

    def dataset_key(self, path: Path, sha256: str) -> str:
        return f"{DATASETS_PREFIX}/{sha256}/{path.name}"

    def upload_dataset(self, path: Path, sha256: str) -> str:
        """Upload a local dataset file under its content hash; returns its ``bos:/bucket/key``.

        The key names the content, so an object already there with the file's MD5 as ETag is this file:
        the upload is skipped, and a re-run uploads nothing.
        """
        try:
            data = read_regular(path, MAX_DATASET_BYTES)
        except PathRefused as refused:
            raise PlatformError(str(refused).rstrip(".")) from None
        actual = content_hash.of_bytes(data)
        if actual != sha256:
            raise PlatformError(f"{path} changed since it was hashed: its sha256 is {actual}, not {sha256}")
        return self.put_once(self.dataset_key(path, sha256), data, what=str(path))

    def upload_batch_input(self, text: str, sha256: str, *, where: str) -> tuple[str, int]:
        """The dataset as batch inference reads it [B2]: ``{"id", "query"}`` lines, one per row's
        ``prompt``, in a folder of its own named by the dataset's hash. Returns the folder's
        ``bos:/bucket/folder/`` and the number of rows."""
        lines = [
            json.dumps({"id": str(number), "query": row["prompt"]}, ensure_ascii=False)
            for number, row in enumerate(dataset_rows(text, where), start=1)
        ]
        folder = f"{BATCH_INPUT_PREFIX}/{sha256}/"
        self.put_once(
            folder + "input.jsonl", ("\n".join(lines) + "\n").encode("utf-8"), what=f"{where} (batch input)"
        )
        return f"bos:/{self.bos.bucket}/{folder}", len(lines)

    def put_once(self, key: str, data: bytes, *, what: str) -> str:
        """Put ``data`` at ``key`` of the configured bucket unless an object with its MD5 is there."""
        bucket = self.bos.bucket
        uri = f"bos:/{bucket}/{key}"
        existing = self.head_object(bucket, key)
        if existing is not None and existing.etag == hashlib.md5(data, usedforsecurity=False).hexdigest():
            log.info("%s is already at %s; not uploading it again.", what, uri)
            return uri
        self.put_object(bucket, key, data, content_type="application/jsonl")
        log.info("Uploaded %s (%d bytes) to %s.", what, len(data), uri)
        return uri

    # -- the loop --------------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        bucket: str,
        key: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        path = f"/{bucket}/{uri_encode(key, keep_slash=True)}" if key else f"/{bucket}"
        retries = Wait(self._sleep, self._backoff, tries=self.settings.max_retries)
        while True:
            self._pace.acquire()
            try:
                return self._once(method, path, bucket, key, content, headers, params)
            except _Retry as failure:
                if retries.spent:
                    raise failure.error from None
                delay = self._backoff(retries.pauses, failure.retry_after)
                log.info(
                    "Retry %d of %s %s in %.1f s: %s", retries.pauses + 1, method, path, delay, failure.error
                )
                retries.pause(delay)

    def _once(
        self,
        method: str,
        path: str,
        bucket: str,
        key: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
    ) -> httpx.Response:
        where = self._where(bucket, key)
        try:
            response = self._client.request(method, path, content=content, headers=headers, params=params)
        except httpx.TimeoutException as exc:
            raise _Retry(
                self._error(PlatformUnavailable, method, where, f"no answer in time ({exc!r})")
            ) from exc
        except httpx.TransportError as exc:
            message = f"the connection failed ({type(exc).__name__}: {exc})"
            raise _Retry(self._error(PlatformUnavailable, method, where, message)) from exc
        if response.status_code < 300:
            return response
        raise self._refusal(method, where, response)

    def _refusal(self, method: str, where: str, response: httpx.Response) -> PlatformError | _Retry:
        status = response.status_code
        request_id = response.headers.get("x-bce-request-id") or None
        code: str | None = None
        message = response.reason_phrase or "no message"
        try:
            body: Any = response.json() if response.content else None
        except ValueError:
            body = None
        if isinstance(body, dict):
            code = str(body.get("code") or "") or None
            message = str(body.get("message") or message)
            request_id = str(body.get("requestId") or request_id or "") or None
        for secret in self._secrets:
            message = message.replace(secret, "***")
        detail = f"{code}: {message}" if code else message
        kind: type[PlatformError] = PlatformStatusError
        if status in (401, 403):
            kind = PlatformAuthError
        elif status == 404:
            kind = PlatformNotFound
        elif status == 429:
            kind = PlatformRateLimited
        elif status >= 500:
            kind = PlatformServerError
        error = self._error(kind, method, where, detail, status=status, request_id=request_id, code=code)
        if status == 429 or status >= 500:
            after = response.headers.get("retry-after", "")
            return _Retry(error, float(after) if after.isdigit() else None)
        return error

    def _error(
        self,
        kind: type[E],
        method: str,
        where: str,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
    ) -> E:
        return kind(
            message,
            platform=f"BOS {self.bos.endpoint}",
            method=method,
            path=where,
            status=status,
            request_id=request_id,
            code=code,
        )

    def _protocol(
        self, method: str, bucket: str, key: str, response: httpx.Response, detail: str
    ) -> PlatformProtocolError:
        return self._error(
            PlatformProtocolError,
            method,
            self._where(bucket, key),
            detail,
            status=response.status_code,
            request_id=response.headers.get("x-bce-request-id") or None,
        )

    def _json(self, response: httpx.Response, bucket: str) -> Mapping[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self._protocol("GET", bucket, "", response, "the listing is not a JSON object")
        return body

    def _listed(self, item: Any, response: httpx.Response, bucket: str) -> BosObject:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("key"), str)
            and isinstance(item.get("size"), int)
            and not isinstance(item.get("size"), bool)
        ):
            raise self._protocol(
                "GET", bucket, "", response, f"a listed object is not {{key, size, ...}}: {item!r}"
            )
        return BosObject(
            item["key"], item["size"], str(item.get("eTag", "")).strip('"'), str(item.get("lastModified", ""))
        )

    @staticmethod
    def _where(bucket: str, key: str) -> str:
        return f"bos:/{bucket}/{key}"
