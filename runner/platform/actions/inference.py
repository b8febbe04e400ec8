"""Inference actions: a batch inference task's output read back from BOS, and one chat request to a
deployed service's endpoint."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from runner.platform import wire
from runner.platform.actions.session import Session
from runner.platform.protocol import JSON, ChatMessage, ChatReply

MAX_RESULTS_BYTES = 64 * 1024 * 1024  # batch output read back whole; larger results stay in BOS


class InferenceActions:
    def __init__(self, session: Session) -> None:
        self._session = session

    def batch_results(self, output_bos_uri: str, output_dir: str) -> list[dict[str, Any]] | None:
        """Every line of every output file in the task's folder, in key order; None past
        ``MAX_RESULTS_BYTES`` (the results stay in BOS, where the stage's outputs point)."""
        bucket, _, prefix = output_bos_uri.removeprefix("bos://").removeprefix("bos:/").partition("/")
        folder = f"{prefix.rstrip('/')}/{output_dir}/" if prefix.strip("/") else f"{output_dir}/"
        rows: list[dict[str, Any]] = []
        with self._session.bos() as bos:
            files = [item for item in bos.list_objects(bucket, folder) if not item.key.endswith("/")]
            if sum(item.size for item in files) > MAX_RESULTS_BYTES:
                return None
            for item in sorted(files, key=lambda item: item.key):
                text = bos.get_object(bucket, item.key).decode("utf-8")
                for number, line in enumerate(text.splitlines(), 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except ValueError:
                        raise self._session.refused(
                            f"the batch output bos:/{bucket}/{item.key} line {number} is not JSON"
                        ) from None
                    rows.append(row if isinstance(row, dict) else {"value": row})
        return rows

    def chat(self, endpoint: str, messages: Sequence[ChatMessage], **params: JSON) -> ChatReply:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            **params,
        }
        reply = self._session.http.chat(endpoint, body)
        return self._session.parse(reply, wire.chat_reply, reply.body, reply.request_id)
