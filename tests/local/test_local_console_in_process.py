"""Every console action, called in-process, keeps the documented contract on each way a request can be wrong.

The tables name every action of the app's route table (``BASE_ROUTES`` and every task kind's) and every v1
route of the compatibility layer, so an action added without an entry here fails
``test_every_action_is_in_the_tables``. Each refusal must
be the route's error envelope (console: ``requestId``, ``code``, ``message`` with the HTTP status and the
``X-Bce-Request-Id`` header; v1: ``log_id``, ``error_code``, ``error_msg`` with HTTP 200), one sentence,
never a 500.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from runner.local import api_services
from runner.local import app as app_module
from runner.local.compat.routes import HANDLERS
from runner.local.credentials import load_or_create
from runner.local.home import Home
from runner.local.kinds import console_routes
from runner.testing.in_process import in_process

if TYPE_CHECKING:
    from conftest import Api

# What each action says of an empty body: the first field it needs, or None when {} is a valid request.
FIRST_FIELD: dict[tuple[str, str], str | None] = {
    ("model", "DescribeModel"): "modelId",
    ("model", "ImportLocalModel"): "name",
    ("model", "DescribeCustomModelSets"): None,
    ("model", "DeleteModel"): "modelId",
    ("model", "CreateCustomModelSet"): "modelSetName",
    ("model", "CreateCustomModel"): "modelSetId",
    ("model", "CreateModelCompTask"): "name",
    ("model", "DescribeModelCompTask"): "modelCompTaskId",
    ("model", "DescribeModelCompTasks"): None,
    ("model", "CancelModelCompTask"): "modelCompTaskId",
    ("dataset", "ImportLocalDataset"): "name",
    ("dataset", "DescribeDatasetVersion"): "versionId",
    ("dataset", "ExportDatasetVersion"): "versionId",
    ("dataset", "CreateDataset"): "datasetName",
    ("dataset", "DescribeDatasets"): None,
    ("dataset", "DescribeDatasetVersions"): "datasetId",
    ("dataset", "CreateImportTask"): "versionId",
    ("dataset", "DescribeImportTask"): "taskId",
    ("batchinference", "CreateBatchInferenceTask"): "name",
    ("batchinference", "DescribeBatchInferenceTask"): "taskId",
    ("batchinference", "DescribeBatchInferenceTasks"): None,
    ("batchinference", "StopBatchInferenceTask"): "taskId",
    ("eval", "CreateEvalTask"): "taskName",
    ("eval", "DescribeEvalTask"): "taskId",
    ("eval", "DescribeEvalTaskReport"): "taskId",
    ("eval", "DescribeEvalTasks"): "evalType",
    ("eval", "StopEvalTask"): "taskId",
    ("eval", "DescribeEvalManualSamples"): "taskId",
    ("eval", "SubmitEvalManualScores"): "taskId",
    ("eval", "CreateEvalResultExportTask"): "evalId",
    ("eval", "DescribeEvalResultExportTask"): "taskId",
    ("finetuning", "CreateFineTuningTask"): "model",  # without a jobId, the base version (local)
    ("finetuning", "CreateFineTuningJob"): "name",
    ("finetuning", "DescribeFineTuningJobs"): None,
    ("finetuning", "DescribeFineTuningTask"): "taskId",
    ("finetuning", "DescribeFineTuningTasks"): None,
    ("finetuning", "StopFineTuningTask"): "taskId",
    ("service", "CreateService"): "name",
    ("service", "DescribeService"): "serviceId",
    ("service", "DescribeServices"): None,
    ("service", "ModifyService"): "serviceId",
    ("serviceresources", "ReleaseComputeUnit"): "serviceId",
    ("computeunit", "ReleaseComputeUnit"): "instanceId",
    ("charge", "ReleaseComputeUnit"): "serviceId",
    ("charge", "ReleaseServiceResource"): "serviceId",
}
# The actions that name one resource by id, with the id field: an unknown id is a 404 that names it.
BY_ID: dict[tuple[str, str], dict[str, Any]] = {
    ("model", "DescribeModel"): {"modelId": "amv-none"},
    ("model", "DeleteModel"): {"modelId": "amv-none"},
    ("model", "CreateCustomModel"): {"modelSetId": "am-none"},
    ("model", "DescribeModelCompTask"): {"modelCompTaskId": "amva-none"},
    ("model", "CancelModelCompTask"): {"modelCompTaskId": "amva-none"},
    ("dataset", "DescribeDatasetVersion"): {"versionId": "ds-none"},
    ("dataset", "ExportDatasetVersion"): {"versionId": "ds-none"},
    ("dataset", "DescribeDatasetVersions"): {"datasetId": "dg-none"},
    ("dataset", "CreateImportTask"): {"versionId": "ds-none", "files": ["bos:/qfrun-local/a.jsonl"]},
    ("dataset", "DescribeImportTask"): {"taskId": "task-none"},
    ("batchinference", "DescribeBatchInferenceTask"): {"taskId": "infer-none"},
    ("batchinference", "StopBatchInferenceTask"): {"taskId": "infer-none"},
    ("eval", "DescribeEvalTask"): {"taskId": "ame-none"},
    ("eval", "DescribeEvalTaskReport"): {"taskId": "ame-none"},
    ("eval", "StopEvalTask"): {"taskId": "ame-none"},
    ("eval", "DescribeEvalManualSamples"): {"taskId": "ame-none"},
    ("eval", "SubmitEvalManualScores"): {"taskId": "ame-none", "scores": []},
    ("eval", "CreateEvalResultExportTask"): {"evalId": "ame-none", "exportContent": ["prompt"]},
    ("eval", "DescribeEvalResultExportTask"): {"taskId": "amemt-none"},
    ("finetuning", "DescribeFineTuningTask"): {"taskId": "task-none"},
    ("finetuning", "StopFineTuningTask"): {"taskId": "task-none"},
    ("service", "DescribeService"): {"serviceId": "svco-none"},
    ("service", "ModifyService"): {"serviceId": "svco-none", "modelId": "amv-x", "modelSetId": "am-x"},
    ("serviceresources", "ReleaseComputeUnit"): {"serviceId": "svco-none", "instanceId": "unit-x"},
    ("computeunit", "ReleaseComputeUnit"): {"instanceId": "unit-none"},
    ("charge", "ReleaseComputeUnit"): {"serviceId": "svco-none", "instanceId": "unit-x"},
    ("charge", "ReleaseServiceResource"): {"serviceId": "svco-none", "instanceId": "unit-x"},
}
LISTS = {
    "model": ("DescribeModelCompTasks", {}, "modelCompTaskList"),
    "batchinference": ("DescribeBatchInferenceTasks", {}, "taskList"),
    "eval": ("DescribeEvalTasks", {"evalType": "auto"}, "evalTaskList"),
    "finetuning": ("DescribeFineTuningTasks", {}, "taskList"),
    "service": ("DescribeServices", {}, "serviceList"),
    "dataset": ("DescribeDatasets", {}, "datasetList"),
}
V1_FIRST_FIELD = {
    "modelrepo/modelVersionDetail": "modelVersionId",
    "dataset/info": "datasetId",
    "dataset/export": "datasetId",
    "dataset/exportRecord": "datasetId",
    "modelrepo/eval/create": "name",
    "modelrepo/eval/detail": "id",
    "modelrepo/eval/report": "id",
    "modelrepo/eval/cancel": "id",
    "modelrepo/eval/result/export": "id",
    "modelrepo/eval/result/export/info": "exportID",
    "service/list": None,
}
ACTIONS = sorted(FIRST_FIELD)


def refusal(response: httpx.Response, status: int, code: str) -> str:
    """The console error envelope, exactly; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"requestId", "code", "message"}
    assert body["code"] == code
    assert body["requestId"] == response.headers["X-Bce-Request-Id"]
    message = str(body["message"])
    assert message.endswith(".")
    assert "\n" not in message
    assert "Traceback" not in message
    return message


def v1_refusal(response: httpx.Response) -> str:
    """The v1 envelope: HTTP 200 with the error in the body, as Baidu's v1 gateways answer."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"log_id", "error_code", "error_msg"}
    assert body["log_id"].isdigit()
    return str(body["error_msg"])


def test_every_action_is_in_the_tables() -> None:
    routes = console_routes(app_module.BASE_ROUTES)  # as the app builds its table, task kinds included
    served = {(route, action) for route, actions in routes.items() for action in actions}
    assert served == set(FIRST_FIELD)
    assert set(BY_ID) <= served
    assert set(HANDLERS) == set(V1_FIRST_FIELD)


@pytest.mark.parametrize(("route", "action"), ACTIONS)
def test_an_empty_body_names_the_first_missing_field_or_is_a_valid_request(
    asgi_api: Api, route: str, action: str
) -> None:
    response = asgi_api.post(f"/v2/{route}?Action={action}", {})
    field = FIRST_FIELD[(route, action)]
    if field is None:
        assert response.status_code == 200, response.text
        assert response.json()["requestId"] == response.headers["X-Bce-Request-Id"]
    else:
        message = refusal(response, 400, "InvalidParameter")
        assert message.startswith(f"{action} needs the field {field!r}")


@pytest.mark.parametrize(("route", "action"), ACTIONS)
def test_a_body_that_is_not_json_or_not_an_object_is_a_400_before_the_handler_runs(
    asgi_api: Api, route: str, action: str
) -> None:
    path = f"/v2/{route}?Action={action}"
    broken = asgi_api.post(path, content=b'{"name": ', headers={"Content-Type": "application/json"})
    assert f"{action} on /v2/{route}: the body is not valid JSON" in refusal(broken, 400, "InvalidParameter")
    listed = asgi_api.post(path, ["a", "list"])
    assert refusal(listed, 400, "InvalidParameter").endswith("the body must be a JSON object.")
    form = asgi_api.post(path, content=b"name=x", headers={"Content-Type": "text/plain"})
    assert "not text/plain" in refusal(form, 415, "InvalidParameter")


@pytest.mark.parametrize(("route", "action"), ACTIONS)
def test_no_action_runs_without_the_platforms_credentials(asgi_api: Api, route: str, action: str) -> None:
    path = f"/v2/{route}?Action={action}"
    assert "needs" in refusal(asgi_api.post(path, {}, token=""), 401, "AccessDenied")
    wrong = asgi_api.post(path, {}, token=asgi_api.token + "x")
    message = refusal(wrong, 401, "AccessDenied")
    assert asgi_api.token is not None
    assert asgi_api.token not in message


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"Host": "attacker.example"}, "is not this platform's address"),
        ({"Host": "127.0.0.1.attacker.example:8765"}, "is not this platform's address"),
        ({"Origin": "https://attacker.example"}, "Requests from the web page"),
        ({"Origin": "null"}, "Requests from the web page"),
        ({"Origin": "file://localhost"}, "Requests from the web page"),
    ],
)
def test_what_a_web_page_could_send_is_refused_even_with_the_token(
    asgi_api: Api, headers: dict[str, str], fragment: str
) -> None:
    for route, action in (("service", "DescribeServices"), ("dataset", "ImportLocalDataset")):
        response = asgi_api.post(f"/v2/{route}?Action={action}", {}, headers=headers)
        assert fragment in refusal(response, 403, "AccessDenied")
    v1 = asgi_api.post("/wenxinworkshop/service/list", {}, headers=headers)
    assert fragment in v1_refusal(v1)
    assert v1.json()["error_code"] == 14  # the SDK's "IAM certification failed"


@pytest.mark.parametrize("origin", ["http://127.0.0.1:9000", "http://localhost", "https://[::1]:8443"])
def test_a_loopback_origin_is_let_in(asgi_api: Api, origin: str) -> None:
    response = asgi_api.post("/v2/service?Action=DescribeServices", {}, headers={"Origin": origin})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("route", "action"), sorted(BY_ID))
def test_an_unknown_id_is_a_404_that_names_it(asgi_api: Api, route: str, action: str) -> None:
    body = BY_ID[(route, action)]
    message = refusal(asgi_api.post(f"/v2/{route}?Action={action}", body), 404, "ResourceNotFound")
    assert "-none'" in message
    assert "does not exist" in message or "does not run" in message


@pytest.mark.parametrize("route", sorted(LISTS))
def test_a_list_refuses_a_bad_marker_page_size_or_order(asgi_api: Api, route: str) -> None:
    action, base, key = LISTS[route]
    path = f"/v2/{route}?Action={action}"
    empty = asgi_api.call(route, action, dict(base))
    assert empty == {key: [], "pageInfo": {"marker": "", "maxKeys": 10, "isTruncated": False}}
    capped = asgi_api.call(route, action, {**base, "maxKeys": 1000})
    assert capped["pageInfo"]["maxKeys"] == 100
    for bad, fragment in (
        ({"marker": "nothing-1"}, "the marker 'nothing-1' is not an id of this list"),
        ({"maxKeys": 0}, "'maxKeys' must be between 1"),
        ({"maxKeys": "ten"}, "'maxKeys' must be an integer, not a string"),
        ({"pageReverse": "yes"}, "pageReverse must be a boolean"),
    ):
        assert fragment in refusal(asgi_api.post(path, {**base, **bad}), 400, "InvalidParameter")


def test_a_handler_that_fails_answers_500_with_the_request_id_and_no_detail(
    platform_home: Home, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(ctx: Any, body: Any) -> Any:
        raise RuntimeError("secret internals /home/user/.qfrun")

    # The app copies its route table when it is built, so the handler is replaced before that.
    monkeypatch.setitem(api_services.ACTIONS, "DescribeServices", broken)
    with in_process(platform_home) as (client, _):
        token = load_or_create(platform_home).token
        response = client.post(
            "/v2/service?Action=DescribeServices", json={}, headers={"Authorization": f"Bearer {token}"}
        )
    message = refusal(response, 500, "InternalError")
    request_id = response.headers["X-Bce-Request-Id"]
    assert message == (
        "DescribeServices on /v2/service failed inside the local platform; "
        f"see its log (request id {request_id})."
    )
    assert "secret internals" in caplog.text  # the log keeps what the client is not told
    assert request_id in caplog.text


def test_a_v1_route_that_fails_answers_in_the_v1_envelope_without_detail(
    asgi_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(ctx: Any, body: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setitem(HANDLERS, "service/list", broken)  # type: ignore[index]
    response = asgi_api.post("/wenxinworkshop/service/list", {})
    assert v1_refusal(response) == "/wenxinworkshop/service/list failed inside the local platform."
    assert response.json()["error_code"] == 500000


@pytest.mark.parametrize("path", sorted(V1_FIRST_FIELD))
def test_a_v1_route_names_its_first_missing_field_in_the_v1_envelope(asgi_api: Api, path: str) -> None:
    response = asgi_api.post(f"/wenxinworkshop/{path}", {})
    field = V1_FIRST_FIELD[path]
    if field is None:
        assert response.json()["result"] == {"common": [], "custom": []}
    else:
        assert v1_refusal(response) == f"/wenxinworkshop/{path} needs the field {field!r} (a string)."
        assert response.json()["error_code"] == 336003


def test_a_v1_body_that_is_not_a_json_object_is_refused_in_the_v1_envelope(asgi_api: Api) -> None:
    broken = asgi_api.post("/wenxinworkshop/dataset/info", content=b"{", headers={})
    assert "the body is not valid JSON" in v1_refusal(broken)
    listed = asgi_api.post("/wenxinworkshop/dataset/info", [1])
    assert v1_refusal(listed) == "/wenxinworkshop/dataset/info: the body must be a JSON object."
    unknown = asgi_api.post("/wenxinworkshop/modelrepo/nothing", {})
    assert v1_refusal(unknown) == "/wenxinworkshop/modelrepo/nothing is not a v1 route this platform serves."


def test_health_answers_without_credentials_and_a_wrong_method_is_named(asgi_api: Api) -> None:
    assert asgi_api.client is not None
    health = asgi_api.client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["version"]
    wrong = asgi_api.client.patch("/v2/model?Action=DescribeModel", json={})
    assert refusal(wrong, 405, "InvalidParameter") == (
        "PATCH /v2/model is not an API of this platform (HTTP 405)."
    )
