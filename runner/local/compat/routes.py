"""The Starlette routes of the v1 compatibility layer, mounted by runner.local.app.

``POST /wenxinworkshop/{path}`` dispatches to the handler tables of the compat modules under the same
authentication as the v2 console (the app passes its check in), in the v1 envelope. ``GET
/_compat/exports/...`` serves export archives to a signed link, with no credentials, as a pre-signed BOS link
would be fetched; its first segment cannot be a BOS bucket name, so it never hides an object of the BOS
routes that take every other path.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runner.local.api_common import INTERNAL, INVALID, NOT_FOUND, ApiError, Body, Context
from runner.local.bodies import BadJson, BodyTooLarge, parse_json, read_limited
from runner.local.compat import datasets, evals, models, services
from runner.local.compat.envelope import LinkSigner, V1Context, V1Handler, v1_error, v1_success

log = logging.getLogger(__name__)

V1_PREFIX = "/wenxinworkshop/"
HANDLERS: Mapping[str, V1Handler] = {**models.ROUTES, **datasets.ROUTES, **evals.ROUTES, **services.ROUTES}
ARCHIVES: Mapping[str, Callable[[V1Context, str], bytes]] = {
    "datasets": datasets.export_archive,
    "evals": evals.export_archive,
}
MAX_BODY_BYTES = 96 * 1024 * 1024  # as the v2 console's: a dataset upload travels inside the JSON
Authenticate = Callable[[Request], Awaitable[None]]
"""The app's check of a console request; raises ApiError (401) when it fails."""


def routes(ctx: Context, authenticate: Authenticate, signer: LinkSigner | None = None) -> list[Route]:
    v1 = V1Context(ctx, signer or LinkSigner())

    async def console_v1(request: Request) -> Response:
        path = request.path_params["path"]
        where = f"{V1_PREFIX}{path}"
        try:
            await authenticate(request)
            if not v1.ctx.base_url:
                # The bound address, never the Host header: links the platform signs must point at itself.
                host, port = request.scope.get("server") or ("127.0.0.1", 0)
                v1.ctx.base_url = f"http://{host}:{port}"
            handler = HANDLERS.get(path)
            if handler is None:
                raise ApiError(404, NOT_FOUND, f"{where} is not a v1 route this platform serves.")
            try:
                data = parse_json(await read_limited(request, MAX_BODY_BYTES, where))
            except BodyTooLarge as exc:
                raise ApiError(413, INVALID, str(exc)) from None
            except BadJson as exc:
                raise ApiError(400, INVALID, f"{where}: the body is not valid JSON ({exc}).") from None
            data = {} if data is None else data
            if not isinstance(data, dict):
                raise ApiError(400, INVALID, f"{where}: the body must be a JSON object.")
            result = await run_in_threadpool(handler, v1, Body(data, where))
        except ApiError as error:
            return JSONResponse(v1_error(error))
        except Exception:
            log.exception("%s failed", where)
            return JSONResponse(
                v1_error(ApiError(500, INTERNAL, f"{where} failed inside the local platform."))
            )
        return JSONResponse(v1_success(result, dataset=path.startswith("dataset/")))

    async def export_archive(request: Request) -> Response:
        kind, name = request.path_params["kind"], request.path_params["name"]
        build = ARCHIVES.get(kind)
        query = request.query_params
        if build is None or not name.endswith(".zip"):
            return Response(status_code=404)
        if not v1.signer.check(request.url.path, query.get("expires", ""), query.get("signature", "")):
            return Response("The link is not signed by this platform or has expired.", status_code=403)
        try:
            data = await run_in_threadpool(build, v1, name.removesuffix(".zip"))
        except ApiError as error:
            return Response(error.message, status_code=error.status)
        return Response(data, media_type="application/zip")

    return [
        Route(V1_PREFIX + "{path:path}", console_v1, methods=["POST"]),
        Route("/_compat/exports/{kind}/{name}", export_archive, methods=["GET"]),
    ]
