"""One model service process: an OpenAI-style chat API over a model folder, with micro-batching.

``python -m runner.local.engine.serve --model DIR --port 0`` loads the model, binds 127.0.0.1, prints
``listening http://127.0.0.1:PORT`` as its first stdout line (so a parent that asked for port 0 learns the
port) and serves until SIGTERM. Concurrent requests are generated together in left-padded batches, one
batch at a time (``batching``); a request whose client hangs up before its batch starts is dropped, and one
that finds the queue full is refused with 429.

Its port is reachable by every local user and, through a browser, by web pages, so it answers only the
platform's credentials (``QFRUN_LOCAL_TOKEN`` and/or ``QFRUN_LOCAL_ACCESS_KEY``/``QFRUN_LOCAL_SECRET_KEY`` in
its environment; it will not start without one) and applies the platform's Host and Origin checks; only
``/healthz`` answers without credentials. Bodies are cut off at ``CHAT_BODY_BYTES`` while they stream, and
a last message over ``MAX_LAST_MESSAGE_TOKENS`` tokens (Qianfan's documented limit for a custom service's
chat [S7]) is refused, so no single request holds the model for long.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.errors import PlatformError
from runner.local.access import Gate, browser_refusal
from runner.local.bodies import CHAT_BODY_BYTES, BadJson, BodyTooLarge, parse_json, read_limited
from runner.local.chat_limits import MAX_SEED, ChatLimitError, check_stop
from runner.local.credentials import LocalKeys
from runner.local.engine.batching import MAX_BATCH, MAX_WAITING, Batcher
from runner.local.engine.inference import InferenceParams
from runner.local.engine.loading import THREADS_ENV, LoadedModel, load_model
from runner.local.listen import loopback_listener
from runner.local.one_write import OneWriteH11Protocol
from runner.platform.settings import ENV_LOCAL_TOKEN

ROLES = {"system", "user", "assistant"}
MAX_LAST_MESSAGE_TOKENS = 3000  # [S7]: the last message's content may hold at most 3,000 tokens


class RequestError(Exception):
    """A request the API refuses; rendered as OpenAI's ``{"error": {...}}`` with its status."""

    def __init__(self, message: str, status: int = 422, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param


def error_response(
    message: str, status: int, kind: str = "invalid_request_error", param: str | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}}, status)


def parse_chat(body: Any) -> tuple[list[dict[str, Any]], InferenceParams]:
    """Validate an OpenAI chat request body; every refusal names the field."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.", 400)
    if body.get("stream"):
        raise RequestError("Streaming is not supported by this service; send 'stream': false.", 400, "stream")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(
            "'messages' must be a non-empty list of {role, content} objects.", param="messages"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise RequestError(
                f"messages[{index}] needs a 'role' of system, user or assistant.", param=f"messages[{index}]"
            )
        if not isinstance(message.get("content"), str):
            raise RequestError(f"messages[{index}].content must be a string.", param=f"messages[{index}]")
    if not any(m["role"] == "user" for m in messages):
        raise RequestError("'messages' has no user message, so there is nothing to answer.", param="messages")
    raw: dict[str, Any] = {}
    numbers = {"temperature": float, "top_p": float, "top_k": int, "seed": int}
    for name, kind in {**numbers, "max_tokens": int, "max_completion_tokens": int}.items():
        value = body.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (kind is int and not isinstance(value, int))
            or (isinstance(value, float) and not math.isfinite(value))
        ):
            raise RequestError(f"'{name}' must be a {'integer' if kind is int else 'number'}.", param=name)
        if name == "seed" and not 0 <= value <= MAX_SEED:
            raise RequestError(f"'seed' must be between 0 and {MAX_SEED}.", param=name)
        raw["max_output_tokens" if name.startswith("max_") else name] = value
    try:
        raw.update(check_stop(body))
    except ChatLimitError as error:
        raise RequestError(str(error), param="stop") from None
    if "temperature" in raw and raw["temperature"] > 2:
        raise RequestError(
            f"'temperature' must be between 0 and 2, not {raw['temperature']}.", param="temperature"
        )
    try:
        params = InferenceParams.from_dict(raw)
    except (ValueError, TypeError) as error:
        raise RequestError(str(error)) from None
    return messages, params


def last_message_is_short(messages: list[dict[str, Any]]) -> bool:
    """Whether the last message is too short to pass the limit, whatever the tokenizer makes of it."""
    # A token stands for at least one byte of text (a byte-fallback token for exactly one), give or take a
    # word-start marker, so a short message cannot be over the limit and skips the tokenizer.
    content: str = messages[-1]["content"]
    return len(content.encode("utf-8", "surrogatepass")) <= MAX_LAST_MESSAGE_TOKENS // 2


def check_last_message(model: LoadedModel, messages: list[dict[str, Any]]) -> None:
    """Refuse a last message over ``MAX_LAST_MESSAGE_TOKENS`` tokens of the model's own tokenizer."""
    if last_message_is_short(messages):
        return
    content = messages[-1]["content"]
    count = len(model.tokenizer(content, add_special_tokens=False)["input_ids"])
    if count > MAX_LAST_MESSAGE_TOKENS:
        raise RequestError(
            f"The last message has {count} tokens; the limit is {MAX_LAST_MESSAGE_TOKENS}.",
            400,
            f"messages[{len(messages) - 1}]",
        )


class ClientGone(Exception):
    """The client hung up before its answer was ready."""


T = TypeVar("T")


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result, or ``ClientGone`` (``work`` cancelled) once the client closes the connection.

    Called after the body was read: the server's next ``receive`` message is then ``http.disconnect``, which
    it sends when the connection closes (or once the response is complete).
    """

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    job = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
    if job.cancelled():
        raise ClientGone()
    return job.result()


def create_app(
    model: LoadedModel,
    served_name: str | None = None,
    max_batch: int = MAX_BATCH,
    *,
    gate: Gate,
    max_waiting: int = MAX_WAITING,
) -> Starlette:
    """The Starlette app for one loaded model, answering only requests ``gate`` lets in."""
    name = served_name or model.name
    batcher = Batcher(model, max_batch=max_batch, max_waiting=max_waiting)
    created = int(time.time())

    def refused(request: Request) -> JSONResponse | None:
        refusal = gate.check(request)
        if refusal is None:
            return None
        return error_response(refusal.message, refusal.status, "authentication_error")

    async def healthz(request: Request) -> JSONResponse:
        foreign = browser_refusal(request)
        if foreign is not None:
            return error_response(foreign.message, foreign.status, "authentication_error")
        return JSONResponse(
            {
                "status": "ok",
                "model": name,
                "batches": batcher.batches,
                "chats": batcher.chats,
                "waiting": batcher.queue.qsize(),
                "dropped": batcher.dropped,
            }
        )

    async def models(request: Request) -> JSONResponse:
        refusal = refused(request)
        if refusal is not None:
            return refusal
        card = {"id": name, "object": "model", "created": created, "owned_by": "qfrun-local"}
        return JSONResponse({"object": "list", "data": [card]})

    async def chat(request: Request) -> JSONResponse:
        refusal = refused(request)
        if refusal is not None:
            return refusal
        try:
            body = parse_json(await read_limited(request, CHAT_BODY_BYTES, "The chat request"))
        except BodyTooLarge as error:
            return error_response(str(error), 413)
        except BadJson as error:
            return error_response(f"The request body is not valid JSON ({error}).", 400)
        try:
            messages, params = parse_chat(body)
            if not last_message_is_short(messages):  # the tokenizer runs off the event loop
                await asyncio.to_thread(check_last_message, batcher.model, messages)
        except RequestError as error:
            return error_response(str(error), error.status, param=error.param)
        try:
            result = await unless_disconnected(request, batcher.submit(messages, params))
        except asyncio.QueueFull:
            refusal = error_response(
                f"The service has {batcher.max_waiting} chats waiting already; try again shortly.",
                429,
                "rate_limit_error",
            )
            refusal.headers["Retry-After"] = "1"
            return refusal
        except ClientGone:
            return error_response("The client closed the connection before its answer.", 499)
        except Exception as error:  # noqa: BLE001 - reported to the client in the API's error shape
            return error_response(f"Generation failed: {error}.", 500, "server_error")
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": result.text},
                        "finish_reason": result.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens,
                    "total_tokens": result.prompt_tokens + result.completion_tokens,
                },
            }
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = f"{request.method} {request.url.path} is not served here (HTTP {status})."
        return error_response(message, status, "invalid_request_error" if status < 500 else "server_error")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(batcher.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    routes = [  # the chat first: Starlette tries the routes in order, for every request
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})


def replica_gate(environ: Mapping[str, str]) -> Gate:
    """The platform's credentials from the environment the platform started this replica with."""
    token = environ.get(ENV_LOCAL_TOKEN, "").strip() or None
    keys = LocalKeys.from_env(environ)
    if token is None and keys is None:
        raise PlatformError(
            f"A model service needs the platform's credentials: set {ENV_LOCAL_TOKEN} (or the local key "
            "pair) in its environment; it never serves without them."
        )
    return Gate(token, keys)


def replica_threads(environ: Mapping[str, str]) -> int | None:
    """The replica's torch threads: 1, unless ``QFRUN_ENGINE_THREADS`` chooses (None: leave its choice).

    A replica runs one batch at a time of a model small enough for this machine's CPUs, beside the platform
    and its clients on the same cores. A second intra-op thread only waits for its share of tiny matrix
    products there: measured on 2 cores under 8 concurrent chats, the replica spent 3.1-4.1 ms of CPU per
    chat with 1 thread against 4.8-6.1 ms with 2, and no more wall time.
    """
    return None if environ.get(THREADS_ENV, "").strip() else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve one model folder over an OpenAI-style chat API.")
    parser.add_argument("--model", type=Path, required=True, help="the Hugging Face model folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--served-name", default=None, help="the model id the API reports")
    parser.add_argument("--max-batch", type=int, default=MAX_BATCH)
    args = parser.parse_args(argv)
    try:
        gate = replica_gate(os.environ)
    except (PlatformError, ValueError) as error:
        sys.stderr.write(f"{error}\n")
        return 2
    model = load_model(args.model)
    threads = replica_threads(os.environ)
    if threads is not None:
        torch.set_num_threads(threads)
    app = create_app(model, args.served_name, args.max_batch, gate=gate)
    sock = loopback_listener(args.host, args.port)
    host, port = sock.getsockname()[:2]
    sys.stdout.write(f"listening http://{host}:{port}\n")
    sys.stdout.flush()
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=5, http=OneWriteH11Protocol
    )
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal; with this handler in place the
    # re-raised signal is a no-op and the process exits 0, which is what an orderly stop should look like.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
