"""The local platform's ASGI app: the Qianfan console and chat API of docs/platform-api.md, on this machine.

``create_app`` wires the store, the task runner and the service manager into a Starlette app. Console calls
are ``POST /v2/{route}?Action=Name`` dispatched to the handler tables of the ``api_*`` modules; every answer
carries a request id (body ``requestId`` and header ``X-Bce-Request-Id``); every refusal is Qianfan's error
JSON with its HTTP status, never a 500 for a bad request. Every request must send the platform's token,
``Authorization: Bearer <token>`` (compared in constant time), or a bce-auth-v1 signature made with its AK/SK
pair (``runner.local.access``); both are the caller's or else the home's ``credentials.json``
(``runner.local.credentials``), so no platform runs open. ``/healthz`` stays open for ``start``. Any other
GET/PUT/HEAD/DELETE path is the BOS object API of ``runner.local.bos``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runner import __version__
from runner.local import api_datasets, api_eval_results, api_models, api_publish, api_services
from runner.local.access import DENIED, Gate
from runner.local.api_common import (
    INTERNAL,
    INVALID,
    NO_RESULT,
    NOT_FOUND,
    ApiError,
    Body,
    Context,
    Handler,
)
from runner.local.api_services import ChatError, chat_request, forward, live_replica
from runner.local.bodies import CHAT_BODY_BYTES, BadJson, BodyTooLarge, parse_json, read_limited
from runner.local.bos import BosApi
from runner.local.bos_store import ObjectStore
from runner.local.chat_dialects import OPENAI, QIANFAN, ChatDialect
from runner.local.compat import routes as compat_routes
from runner.local.credentials import LocalCredentials, LocalKeys, load_or_create
from runner.local.home import Home
from runner.local.kinds import console_routes
from runner.local.replica_http import ReplicaClient
from runner.local.services import ServiceManager
from runner.local.store import Store
from runner.local.workers import TaskRunner

log = logging.getLogger(__name__)

# The routes of what is not a task kind; each kind's actions join their route from runner.local.kinds.
BASE_ROUTES: dict[str, Mapping[str, Handler]] = {
    "model": {**api_models.ACTIONS, **api_publish.ACTIONS},
    "dataset": api_datasets.ACTIONS,
    "service": api_services.ACTIONS,
    "serviceresources": api_services.RESOURCE_ACTIONS,
    "computeunit": api_services.UNIT_ACTIONS,
    "charge": api_services.CHARGE_ACTIONS,
}
MAX_BODY_BYTES = 96 * 1024 * 1024
REQUEST_ID_HEADER = "X-Bce-Request-Id"


def _reply(request_id: str, body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={REQUEST_ID_HEADER: request_id})


def _error(request_id: str, error: ApiError) -> JSONResponse:
    body = {"requestId": request_id, "code": error.code, "message": error.message}
    return _reply(request_id, body, error.status)


async def _json_body(request: Request, where: str, limit: int = MAX_BODY_BYTES) -> Any:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind not in ("", "application/json"):
        # A web page can send text/plain or a form without asking the browser first; JSON it cannot.
        raise ApiError(
            415, INVALID, f"{where}: the body must be JSON (Content-Type: application/json), not {kind}."
        )
    try:
        raw = await read_limited(request, limit, where)
        data = parse_json(raw)
    except BodyTooLarge as exc:
        raise ApiError(413, INVALID, str(exc)) from None
    except BadJson as exc:
        raise ApiError(400, INVALID, f"{where}: the body is not valid JSON ({exc}).") from None
    return {} if data is None else data


def create_app(home: Home | Path, token: str | None = None, keys: LocalKeys | None = None) -> Starlette:
    """The platform app over ``home`` (a Home or its folder); tasks and services live with its lifespan.

    Every request must carry ``token`` or be signed with ``keys``; either left out is the home's own
    (made at the first start), so a platform is never open.
    """
    home = home if isinstance(home, Home) else Home(Path(home))
    home.ensure()
    stored = load_or_create(home)
    credentials = LocalCredentials(token or stored.token, keys or stored.keys)
    gate = Gate(credentials.token, credentials.keys)
    objects = ObjectStore.for_home(home)
    bos = BosApi(objects, gate)
    store = Store(home.db_path)
    ctx = Context(
        home=home,
        store=store,
        runner=TaskRunner(home, store, replica_token=credentials.token),
        services=ServiceManager(home, store, credentials=credentials),
        objects=objects,
    )
    clients: list[ReplicaClient] = []
    routes_by_name = console_routes(BASE_ROUTES)  # from the kinds registered now, a plugin's included

    def learn_url(request: Request) -> None:
        # The address the server is bound to, never a request header: a client cannot make the platform
        # report a URL of its choosing (in a service's url, and from there in qfrun's output and reports).
        if not ctx.base_url:
            server = request.scope.get("server") or ("127.0.0.1", 0)
            ctx.base_url = f"http://{server[0]}:{server[1]}"

    async def console(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        route = request.path_params["route"]
        action = request.query_params.get("Action", "")
        where = f"{action or 'the request'} on /v2/{route}"
        try:
            refusal = gate.check(request)
            if refusal is not None:
                raise ApiError(refusal.status, DENIED, refusal.message)
            learn_url(request)
            actions = routes_by_name.get(route)
            if actions is None:
                raise ApiError(404, NOT_FOUND, f"/v2/{route} is not a route of this platform.")
            if not action:
                raise ApiError(400, INVALID, f"A request to /v2/{route} needs the query parameter Action.")
            handler = actions.get(action)
            if handler is None:
                known = ", ".join(sorted(actions))
                raise ApiError(400, INVALID, f"/v2/{route} has no action {action!r}; it has {known}.")
            data = await _json_body(request, where)
            if not isinstance(data, dict):
                raise ApiError(400, INVALID, f"{where}: the body must be a JSON object.")
            result = await run_in_threadpool(handler, ctx, Body(data, action))
        except ApiError as error:
            return _error(request_id, error)
        except Exception:
            log.exception("%s failed (request id %s)", where, request_id)
            message = f"{where} failed inside the local platform; see its log (request id {request_id})."
            return _error(request_id, ApiError(500, INTERNAL, message))
        if result is NO_RESULT:
            return _reply(request_id, {"requestId": request_id})
        return _reply(request_id, {"requestId": request_id, "result": result})

    def chat_endpoint(dialect: ChatDialect) -> Callable[[Request], Awaitable[Response]]:
        """One chat handler; the dialect says where the service is named and how answers are shaped."""

        async def chat(request: Request) -> Response:
            request_id = dialect.new_id()
            where = dialect.where(request.path_params)
            try:
                refusal = gate.check(request)
                if refusal is not None:
                    raise ChatError(refusal.status, 13, refusal.message)
                try:
                    data = await _json_body(request, where, CHAT_BODY_BYTES)
                except ApiError as exc:
                    raise ChatError(exc.status, 336003, exc.message) from exc
                upstream = chat_request(data, where)
                suffix = dialect.service(request.path_params, data)
                # On the event loop, not in a worker thread: one indexed read of the loop thread's own
                # WAL connection, which never waits for a writer, costs less than the hop to a thread
                # and back, and this path is paid by every chat.
                _, url = live_replica(ctx, suffix)
                answer = await forward(clients[0], url, upstream, ctx.services.replica_headers())
            except ChatError as error:
                return _reply(request_id, dialect.refusal(error, request_id), error.status)
            return _reply(request_id, dialect.reply(answer, request_id, data))

        return chat

    async def authenticate(request: Request) -> None:
        refusal = gate.check(request)
        if refusal is not None:
            raise ApiError(refusal.status, refusal.code, refusal.message)

    async def healthz(request: Request) -> Response:
        return _reply(str(uuid.uuid4()), {"status": "ok", "version": __version__, "time": int(time.time())})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        clients.append(ReplicaClient(timeout_s=300.0, connect_timeout_s=5.0))
        await run_in_threadpool(ctx.runner.recover)
        await run_in_threadpool(ctx.services.recover)
        try:
            yield
        finally:
            await run_in_threadpool(ctx.runner.shutdown)
            await run_in_threadpool(ctx.services.shutdown)
            await clients.pop().aclose()
            store.close()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v2/{route}", console, methods=["POST"]),
        Route(api_services.CHAT_PATH + "{suffix}", chat_endpoint(QIANFAN), methods=["POST"]),
        Route("/v1/chat/completions", chat_endpoint(OPENAI), methods=["POST"]),
        *compat_routes.routes(ctx, authenticate),  # the v1 routes the official SDK still calls
        *api_eval_results.routes(ctx, authenticate),  # a result export's downloadUrl
        *bos.routes(),  # last: GET/PUT/HEAD/DELETE on any other path is BOS's
    ]

    async def unknown_path(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        code = NOT_FOUND if status == 404 else INVALID
        message = f"{request.method} {request.url.path} is not an API of this platform (HTTP {status})."
        return _error(str(uuid.uuid4()), ApiError(status, code, message))

    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={404: unknown_path, 405: unknown_path}
    )
    app.state.context = ctx
    app.state.objects = bos.objects
    return app
