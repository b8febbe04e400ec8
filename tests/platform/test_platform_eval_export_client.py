"""The client's result-export path against a scripted Qianfan (httpx.MockTransport; the local platform's real
one is in tests/local/test_local_eval_results.py): Queued and Running are waited out, the export's id is
handed over before the first Describe, a failed export is one sentence, one still running after the wait
is read by a later attempt that names it, and a failed recorded export is replaced.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator

import httpx
import pytest

from runner.errors import PlatformStatusError
from runner.platform import polling
from runner.platform.client import PlatformClient
from runner.platform.protocol import TaskKind, TaskRef
from runner.platform.settings import settings_from_pipeline

REF = TaskRef(TaskKind.EVALUATION, "ame-1", "x")
ROW = {
    "模型名称": "m",
    "模型版本": "V1",
    "Prompt": "1+1=?",
    "预期回答": "2",
    "模型结果": "2",
    "BLEU-4": "50.00%",
}


def zipped_row() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.jsonl", json.dumps([ROW], ensure_ascii=False) + "\n")
    return buffer.getvalue()


class Qianfan:
    """Answers the two export actions from a script of states; serves the file at a BOS-like link."""

    def __init__(self, states: list[str]) -> None:
        self.states: Iterator[str] = iter(states)
        self.actions: list[str] = []
        self.created = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "bj.bcebos.com":
            assert "authorization" not in request.headers  # a link elsewhere is fetched bare
            return httpx.Response(200, content=zipped_row())
        action = request.url.params["Action"]
        self.actions.append(action)
        body = json.loads(request.content)
        if action == "CreateEvalResultExportTask":
            assert body == {
                "evalId": "ame-1",
                "storageType": "sysStorage",
                "exportContent": ["prompt", "prediction", "completion", "metrics"],
            }
            self.created += 1
            return httpx.Response(200, json={"requestId": "r", "result": {"taskId": f"amemt-{self.created}"}})
        state = next(self.states)
        result = {"taskId": body["taskId"], "evalId": "ame-1", "state": state, "storageType": "sysStorage"}
        if state == "Succeeded":
            result["downloadUrl"] = "https://bj.bcebos.com/exports/a.zip?authorization=signed"
        return httpx.Response(200, json={"requestId": "r", "result": result})


def client(fake: Qianfan, slept: list[float]) -> PlatformClient:
    settings = settings_from_pipeline(
        "qianfan", environ={"QIANFAN_ACCESS_KEY": "ak", "QIANFAN_SECRET_KEY": "sk"}
    )
    return PlatformClient(settings, transport=httpx.MockTransport(fake.handler), sleep=slept.append)


def test_queued_and_running_are_waited_out_and_the_id_is_kept_before_the_first_describe() -> None:
    fake, slept, kept = Qianfan(["Queued", "Running", "Succeeded"]), [], []
    with client(fake, slept) as qianfan:
        records = qianfan.eval_samples(REF, 10, on_export=lambda i: kept.append((i, list(fake.actions))))
    assert kept == [("amemt-1", ["CreateEvalResultExportTask"])]
    assert fake.actions.count("DescribeEvalResultExportTask") == 3
    assert slept == [polling.EXPORT_POLL_S] * 2
    (record,) = records or []
    assert (record.version_id, record.input, record.output, record.expected) == ("m/V1", "1+1=?", "2", "2")
    assert record.metrics == {"bleu": 0.5}


def test_a_failed_export_is_one_sentence() -> None:
    with client(Qianfan(["Running", "Failed"]), []) as qianfan:
        with pytest.raises(PlatformStatusError, match="the result export amemt-1 of evaluation ame-1 failed"):
            qianfan.eval_samples(REF, 10)


def test_an_export_still_running_after_the_wait_is_read_by_a_resumed_attempt_with_its_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(polling, "EXPORT_WAIT_S", 4.0)
    fake, kept = Qianfan(["Running"] * 5 + ["Succeeded"]), []
    with client(fake, []) as qianfan:
        with pytest.raises(
            PlatformStatusError, match="amemt-1 of evaluation ame-1 is still Running after 4 s"
        ):
            qianfan.eval_samples(REF, 10, on_export=kept.append)
        records = qianfan.eval_samples(REF, 10, export_id=kept[0], on_export=kept.append)
    assert kept == ["amemt-1"]
    assert fake.created == 1  # the later attempt read the same export
    assert len(records or []) == 1


def test_a_recorded_export_that_failed_is_replaced_by_a_new_one() -> None:
    fake, kept = Qianfan(["Failed", "Succeeded"]), []
    with client(fake, []) as qianfan:
        assert len(qianfan.eval_samples(REF, 10, export_id="amemt-old", on_export=kept.append) or []) == 1
    assert kept == ["amemt-1"]


def test_a_recorded_export_the_platform_refuses_to_describe_is_replaced() -> None:
    fake, kept = Qianfan(["Succeeded"]), []
    answer = fake.handler

    def refuse_the_old_one(request: httpx.Request) -> httpx.Response:
        if b"amemt-old" in request.content:
            return httpx.Response(
                400, json={"requestId": "r", "code": "InvalidParameter", "message": "no such id"}
            )
        return answer(request)

    fake.handler = refuse_the_old_one  # type: ignore[method-assign]
    with client(fake, []) as qianfan:
        assert len(qianfan.eval_samples(REF, 10, export_id="amemt-old", on_export=kept.append) or []) == 1
    assert kept == ["amemt-1"]
