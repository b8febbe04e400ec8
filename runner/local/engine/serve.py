"""One model service process: an OpenAI-style chat API over a model folder, with micro-batching.

``python -m runner.local.engine.serve --model DIR --port 0`` loads the model, binds 127.0.0.1, prints
``listening http://127.0.0.1:PORT`` as its first stdout line (so a parent that asked for port 0 learns the
port) and serves until SIGTERM. Concurrent requests are gathered for a few milliseconds and run as one
left-padded ``generate`` call per group of equal sampling settings: the model runs one batch at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runner.local.engine.inference import Generation, InferenceParams, generate
from runner.local.engine.loading import LoadedModel, load_model

ROLES = {"system", "user", "assistant"}
BATCH_WINDOW_S = 0.005
MAX_BATCH = 32


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


@dataclass
class _Pending:
    messages: list[dict[str, Any]]
    params: InferenceParams
    future: asyncio.Future[Generation] = field(repr=False)


class Batcher:
    """Collects concurrent requests and runs them in batches, one batch at a time."""

    def __init__(
        self, model: LoadedModel, window_s: float = BATCH_WINDOW_S, max_batch: int = MAX_BATCH
    ) -> None:
        self.model = model
        self.window_s = window_s
        self.max_batch = max_batch
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.batches = 0

    async def submit(self, messages: list[dict[str, Any]], params: InferenceParams) -> Generation:
        future: asyncio.Future[Generation] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(messages, params, future))
        return await future

    async def run(self) -> None:
        while True:
            pending = [await self.queue.get()]
            deadline = time.monotonic() + self.window_s
            while len(pending) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    pending.append(await asyncio.wait_for(self.queue.get(), left))
                except TimeoutError:
                    break
            groups: dict[InferenceParams, list[_Pending]] = {}
            for item in pending:
                groups.setdefault(item.params, []).append(item)
            for params, items in groups.items():
                await self._run_group(params, items)

    async def _run_group(self, params: InferenceParams, items: list[_Pending]) -> None:
        self.batches += 1
        try:
            results = await asyncio.to_thread(generate, self.model, [i.messages for i in items], params)
        except Exception as error:  # noqa: BLE001 - handed to every waiting request as a 500
            for item in items:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        for item, result in zip(items, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)


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
        ):
            raise RequestError(f"'{name}' must be a {'integer' if kind is int else 'number'}.", param=name)
        raw["max_output_tokens" if name.startswith("max_") else name] = value
    if "temperature" in raw and raw["temperature"] > 2:
        raise RequestError(
            f"'temperature' must be between 0 and 2, not {raw['temperature']}.", param="temperature"
        )
    try:
        params = InferenceParams.from_dict(raw)
    except ValueError as error:
        raise RequestError(str(error)) from None
    return messages, params


def create_app(model: LoadedModel, served_name: str | None = None, max_batch: int = MAX_BATCH) -> Starlette:
    """The Starlette app for one loaded model."""
    name = served_name or model.name
    batcher = Batcher(model, max_batch=max_batch)
    created = int(time.time())

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": name, "batches": batcher.batches})

    async def models(request: Request) -> JSONResponse:
        card = {"id": name, "object": "model", "created": created, "owned_by": "qfrun-local"}
        return JSONResponse({"object": "list", "data": [card]})

    async def chat(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error_response("The request body is not valid JSON.", 400)
        try:
            messages, params = parse_chat(body)
        except RequestError as error:
            return error_response(str(error), error.status, param=error.param)
        try:
            result = await batcher.submit(messages, params)
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

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve one model folder over an OpenAI-style chat API.")
    parser.add_argument("--model", type=Path, required=True, help="the Hugging Face model folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--served-name", default=None, help="the model id the API reports")
    parser.add_argument("--max-batch", type=int, default=MAX_BATCH)
    args = parser.parse_args(argv)
    model = load_model(args.model)
    app = create_app(model, args.served_name, args.max_batch)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    host, port = sock.getsockname()[:2]
    sys.stdout.write(f"listening http://{host}:{port}\n")
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal; with this handler in place the
    # re-raised signal is a no-op and the process exits 0, which is what an orderly stop should look like.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
