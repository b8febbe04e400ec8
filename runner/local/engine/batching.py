"""Dynamic batching for one replica: concurrent chats are generated together, one batch at a time.

A chat that arrives while the model is idle starts at once. Chats that arrive while it is busy wait in a
bounded queue and go together into the next batch, which also waits up to ``window_s`` for as many chats as
the last batch answered: the clients just answered are likely to ask again, and a batch that starts with the
first of them alone would leave the rest to the batch after it. So a lone client never waits for a window,
and 8 clients in a loop get batches of 8, not alternating batches of 1 and 7.

A batch holds chats with different token limits, stop strings and sampling settings (one padded
``generate`` call, per-row controls); only chats that differ in what ``inference.batch_key`` names run as
separate batches. A full queue is refused at once (``asyncio.QueueFull``; the API answers 429), and a chat
whose caller went away before its batch started never takes a place in one.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from runner.local.engine.inference import Generation, InferenceParams, batch_key, generate
from runner.local.engine.loading import LoadedModel

BATCH_WINDOW_S = 0.005
MAX_BATCH = 32
MAX_PATIENCE_S = 0.05  # the longest a batch waits for the chats it expects
MAX_WAITING = 256  # chats queued behind the running batch; more are refused with 429


@dataclass
class _Pending:
    messages: list[dict[str, Any]]
    params: InferenceParams
    future: asyncio.Future[Generation] = field(repr=False)
    started: bool = False


class Batcher:
    """Collects concurrent chats and runs them in batches, one batch at a time."""

    def __init__(
        self,
        model: LoadedModel,
        window_s: float = BATCH_WINDOW_S,
        max_batch: int = MAX_BATCH,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        self.model = model
        self.window_s = window_s
        self.max_batch = max_batch
        self.max_waiting = max_waiting
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max_waiting)
        self.batches = 0
        self.chats = 0
        self.dropped = 0  # chats whose caller went away before their batch started
        self._expected = 1  # chats the next batch waits for: the last one's plus those queued behind it
        self._patience = window_s  # how long it waits for them: as long as the last batch took, within limits

    async def submit(self, messages: list[dict[str, Any]], params: InferenceParams) -> Generation:
        """The chat's answer; ``asyncio.QueueFull`` at once when ``max_waiting`` chats are waiting already."""
        future: asyncio.Future[Generation] = asyncio.get_running_loop().create_future()
        item = _Pending(messages, params, future)
        self.queue.put_nowait(item)
        try:
            return await future
        except asyncio.CancelledError:
            # Cancelling this caller cancelled the future too, so no batch will take the chat.
            if not item.started:
                self.dropped += 1
            raise

    async def run(self) -> None:
        while True:
            batch = await self._gather()
            started = time.monotonic()
            groups: dict[tuple[float, int | None], list[_Pending]] = {}
            for item in batch:
                groups.setdefault(batch_key(item.params), []).append(item)
            for items in groups.values():
                await self._run_group(items)
            self._expected = min(self.max_batch, max(1, len(batch) + self.queue.qsize()))
            self._patience = min(MAX_PATIENCE_S, max(self.window_s, time.monotonic() - started))

    async def _gather(self) -> list[_Pending]:
        batch = [await self.queue.get()]
        deadline = time.monotonic() + self._patience
        while len(batch) < self.max_batch:
            if not self.queue.empty():
                batch.append(self.queue.get_nowait())
                continue
            left = deadline - time.monotonic()
            if len(batch) >= self._expected or left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except TimeoutError:
                break
        live = [item for item in batch if not item.future.done()]
        for item in live:
            item.started = True
        return live

    async def _run_group(self, items: list[_Pending]) -> None:
        self.batches += 1
        self.chats += len(items)
        try:
            results = await asyncio.to_thread(
                generate, self.model, [i.messages for i in items], [i.params for i in items]
            )
        except Exception as error:  # noqa: BLE001 - handed to every waiting request as a 500
            for item in items:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        for item, result in zip(items, results, strict=True):
            if not item.future.done():  # a caller that went away mid-batch: its answer is dropped
                item.future.set_result(result)
