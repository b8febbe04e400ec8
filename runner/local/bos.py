"""The local platform's BOS API: the object routes Baidu's BOS SDKs call, answered from ``bos_store``.

Paths are BOS's path style, ``/{bucket}`` and ``/{bucket}/{key}`` (bce-python-sdk's ``BosClient`` sends
these), also under the ``/v1`` prefix of BOS's API pages. Served: list buckets, create/head/delete a
bucket, list objects (``prefix``, ``marker``, ``maxKeys``, ``delimiter``), and put/get/head/delete an
object, with ``Range`` on get and BOS's conditional put (``If-Match: <etag>``, ``If-None-Match: *``, 412
``PreconditionFailed`` when it does not hold), which the state backend's lock and writes rely on.
Bodies are JSON in BOS's camelCase; every answer carries
``x-bce-request-id``; every refusal is BOS's error JSON ``{code, message, requestId}``. docs/bos.md lists
the sources and what is local-only.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from runner.local.access import Gate, header_text
from runner.local.bos_store import (
    CHUNK,
    MAX_LIST_KEYS,
    STANDARD,
    BosError,
    Condition,
    Digests,
    Listing,
    ObjectInfo,
    ObjectStore,
    check_bucket_name,
)

log = logging.getLogger(__name__)

REQUEST_ID = "x-bce-request-id"
META_PREFIX = "x-bce-meta-"
OWNER = {"id": "qfrun-local", "displayName": "qfrun"}
LIST_PARAMS = frozenset({"prefix", "marker", "maxKeys", "delimiter"})
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

Handler = Callable[[Request, str], Awaitable[Response]]


def iso_time(epoch_s: float) -> str:
    """BOS's JSON time, ``2016-04-05T10:20:35Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def _error(request_id: str, error: BosError) -> Response:
    body = {"code": error.code, "message": error.message, "requestId": request_id}
    return JSONResponse(body, status_code=error.status, headers={REQUEST_ID: request_id})


def _object_headers(info: ObjectInfo, request_id: str) -> dict[str, str]:
    headers = {
        "Content-Type": info.content_type,
        "Content-Length": str(info.size),
        "ETag": f'"{info.etag}"',
        "Last-Modified": email.utils.formatdate(info.modified_at, usegmt=True),
        "Accept-Ranges": "bytes",
        "x-bce-content-crc32": str(info.crc32),
        "x-bce-storage-class": STANDARD,
        REQUEST_ID: request_id,
    }
    # Starlette writes header values as latin-1; the UTF-8 bytes of the text go out as those code points.
    wire = {META_PREFIX + name: value.encode().decode("latin-1") for name, value in info.user_meta.items()}
    headers.update(wire)
    return headers


def listing_json(page: Listing) -> dict[str, Any]:
    """ListObjects' JSON body for one page."""
    body: dict[str, Any] = {
        "name": page.bucket,
        "prefix": page.prefix,
        "delimiter": page.delimiter,
        "marker": page.marker,
        "maxKeys": page.max_keys,
        "isTruncated": page.is_truncated,
        "contents": [
            {
                "key": info.key,
                "lastModified": iso_time(info.modified_at),
                "eTag": info.etag,
                "size": info.size,
                "storageClass": STANDARD,
                "owner": OWNER,
            }
            for info in page.contents
        ],
        "commonPrefixes": [{"prefix": prefix} for prefix in page.common_prefixes],
    }
    if page.is_truncated:
        body["nextMarker"] = page.next_marker
    return body


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``(first, last)`` for a single ``bytes=`` range, None when absent; BosError when unsatisfiable."""
    if not header:
        return None
    found = _RANGE.match(header.strip())
    if found is None or found.groups() == ("", ""):
        raise BosError(400, "InvalidArgument", f"The Range header {header!r} is not a single bytes range.")
    first, last = found.groups()
    if not first:  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise BosError(416, "InvalidRange", f"The Range {header!r} lies outside the object's {size} bytes.")
    return start, end


def _stream(handle: BinaryIO, remaining: int) -> Iterator[bytes]:
    with handle:
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


class _FallbackRoute(Route):
    """A route that does not claim a path for methods it does not serve.

    A plain Route answers 405 to ``POST /anything`` because its path matched; as the app's fallback that
    would shadow the console's 404 for unknown paths, so a method mismatch here is simply no match.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        return (Match.NONE, {}) if match is Match.PARTIAL else (match, child)


class BosApi:
    """The BOS routes over one ``ObjectStore``, behind the platform's access gate."""

    def __init__(self, objects: ObjectStore, gate: Gate) -> None:
        self.objects = objects
        self.gate = gate

    def routes(self) -> list[BaseRoute]:
        """Fallback routes: the app lists them after its console and chat routes."""
        methods = ["GET", "HEAD", "PUT", "DELETE"]
        routes: list[BaseRoute] = [_FallbackRoute("/", self._wrap(self._service), methods=["GET", "HEAD"])]
        for base in ("/v1", ""):
            routes.append(_FallbackRoute(base + "/{bucket}", self._wrap(self._bucket), methods=methods))
            routes.append(
                _FallbackRoute(base + "/{bucket}/{key:path}", self._wrap(self._object), methods=methods)
            )
        return routes

    def _wrap(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            refusal = self.gate.check(request)
            if refusal is not None:
                return _error(request_id, BosError(refusal.status, refusal.code, refusal.message))
            try:
                return await handler(request, request_id)
            except BosError as error:
                return _error(request_id, error)
            except Exception:
                log.exception("%s %s failed (request id %s)", request.method, request.url.path, request_id)
                message = (
                    f"The request failed inside the local platform; see its log (request id {request_id})."
                )
                return _error(request_id, BosError(500, "InternalError", message))

        return endpoint

    # -- service and buckets -------------------------------------------------------------------------

    async def _service(self, request: Request, request_id: str) -> Response:
        self._no_subresources(request, frozenset())
        buckets = await run_in_threadpool(self.objects.buckets)
        body = {
            "owner": OWNER,
            "buckets": [
                {"name": b.name, "location": "local", "creationDate": iso_time(b.created_at)} for b in buckets
            ],
        }
        return JSONResponse(body, headers={REQUEST_ID: request_id})

    async def _bucket(self, request: Request, request_id: str) -> Response:
        bucket = check_bucket_name(request.path_params["bucket"])
        method = request.method
        if method == "GET":
            self._no_subresources(request, LIST_PARAMS)
            page = await run_in_threadpool(self._list, request, bucket)
            return JSONResponse(listing_json(page), headers={REQUEST_ID: request_id})
        self._no_subresources(request, frozenset())
        if method == "PUT":
            await run_in_threadpool(self.objects.create_bucket, bucket)
            return Response(headers={REQUEST_ID: request_id, "Location": f"/{bucket}"})
        if method == "HEAD":
            await run_in_threadpool(self.objects.bucket, bucket)
            return Response(headers={REQUEST_ID: request_id})
        await run_in_threadpool(self.objects.delete_bucket, bucket)
        return Response(status_code=204, headers={REQUEST_ID: request_id})

    def _list(self, request: Request, bucket: str) -> Listing:
        params = request.query_params
        raw = params.get("maxKeys", "")
        if raw and not raw.isdigit():
            raise BosError(400, "InvalidArgument", f"maxKeys must be a whole number, not {raw!r}.")
        delimiter = params.get("delimiter", "")
        if len(delimiter) > 1:
            raise BosError(400, "InvalidArgument", "delimiter must be a single character.")
        return self.objects.list(
            bucket,
            prefix=params.get("prefix", ""),
            marker=params.get("marker", ""),
            max_keys=int(raw) if raw else MAX_LIST_KEYS,
            delimiter=delimiter,
        )

    # -- objects ---------------------------------------------------------------------------------------

    async def _object(self, request: Request, request_id: str) -> Response:
        key = request.path_params["key"]
        if not key:  # "/bucket/" is the bucket itself
            return await self._bucket(request, request_id)
        bucket = check_bucket_name(request.path_params["bucket"])
        self._no_subresources(request, frozenset())
        if request.method == "PUT":
            return await self._put(request, request_id, bucket, key)
        if request.method == "DELETE":
            await run_in_threadpool(self.objects.delete, bucket, key)
            return Response(status_code=204, headers={REQUEST_ID: request_id})
        if request.method == "HEAD":
            info = await run_in_threadpool(self.objects.head, bucket, key)
            return Response(headers=_object_headers(info, request_id))
        info, handle = await run_in_threadpool(self.objects.open, bucket, key)
        headers = _object_headers(info, request_id)
        try:
            window = _byte_range(request.headers.get("range", ""), info.size)
            if window is None:
                return StreamingResponse(_stream(handle, info.size), headers=headers)
            start, end = window
            await run_in_threadpool(handle.seek, start)
        except BaseException:
            handle.close()
            raise
        headers["Content-Length"] = str(end - start + 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
        return StreamingResponse(_stream(handle, end - start + 1), status_code=206, headers=headers)

    async def _put(self, request: Request, request_id: str, bucket: str, key: str) -> Response:
        headers = request.headers
        if headers.get("x-bce-copy-source"):
            raise BosError(
                501, "NotImplemented", "The local platform does not copy objects (x-bce-copy-source)."
            )
        length = headers.get("content-length", "")
        digests = Digests(
            md5_b64=headers.get("content-md5", "").strip(),
            sha256_hex=headers.get("x-bce-content-sha256", "").strip(),
            crc32=headers.get("x-bce-content-crc32", "").strip(),
        )
        meta = {
            name[len(META_PREFIX) :].lower(): header_text(value)
            for name, value in headers.items()
            if name.lower().startswith(META_PREFIX)
        }
        writer = await run_in_threadpool(
            self.objects.writer,
            bucket,
            key,
            content_type=headers.get("content-type", ""),
            digests=digests,
            user_meta=meta,
            declared_size=int(length) if length.isdigit() else None,
            condition=Condition(headers.get("if-match", ""), headers.get("if-none-match", "")),
        )
        with writer:
            # Chunks go to disk as they arrive, so the size limit holds however large the body claims to be;
            # a local disk write of one chunk is short enough to do on the event loop.
            async for chunk in request.stream():
                writer.write(chunk)
            info = await run_in_threadpool(writer.commit)
        return Response(
            headers={"ETag": f'"{info.etag}"', "x-bce-content-crc32": str(info.crc32), REQUEST_ID: request_id}
        )

    @staticmethod
    def _no_subresources(request: Request, allowed: frozenset[str]) -> None:
        """Refuse BOS sub-resources (``?acl``, ``?location``, ...) the local platform does not serve."""
        extra = sorted(set(request.query_params.keys()) - allowed)
        if extra:
            raise BosError(
                501,
                "NotImplemented",
                f"The local platform's BOS does not serve {request.method} with ?{', ?'.join(extra)}.",
            )
