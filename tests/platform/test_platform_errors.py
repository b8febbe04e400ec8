"""Every failure maps onto the error tree with its coordinates, is retried only when that is safe, and never
shows a credential in str(), repr() or a log line."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

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
from runner.platform.client import PlatformClient
from runner.platform.ratelimit import TokenBucket
from runner.platform.settings import Credentials, PlatformSettings

if TYPE_CHECKING:
    from conftest import Harness

_SECRETS: list[str] = []


@pytest.fixture(autouse=True)
def _known_secrets(secrets: tuple[str, ...]) -> None:
    _SECRETS[:] = secrets


def leaky() -> str:
    """A message of a platform that echoes the credentials back (AK, SK, token)."""
    ak, sk, token = _SECRETS
    return f"token {token} of {ak} signed by {sk}"


def respond(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> Callable[..., httpx.Response]:
    def fault(request: httpx.Request) -> httpx.Response:
        content = body() if callable(body) else body
        if isinstance(content, bytes):
            return httpx.Response(status, content=content, headers=headers)
        return httpx.Response(status, json=content, headers=headers)

    return fault


def fail_with(exc_type: type[httpx.TransportError]) -> Callable[..., httpx.Response]:
    def fault(request: httpx.Request) -> httpx.Response:
        raise exc_type(f"transport broke while sending {leaky()}", request=request)

    return fault


def console_error(status: int, code: str) -> Callable[..., httpx.Response]:
    return respond(status, lambda: {"requestId": "req-err", "code": code, "message": f"refused: {leaky()}"})


def v1_error(code: int) -> Callable[..., httpx.Response]:
    return respond(200, lambda: {"error_code": code, "error_msg": f"refused: {leaky()}", "log_id": "req-err"})


GOOD_MODEL = {"modelId": "amv-1", "modelSetId": "am-1"}

# (case id, fault, expected class, status, request id, attempts the client makes)
CASES: list[tuple[str, Callable[..., httpx.Response], type[PlatformError], int | None, str | None, int]] = [
    ("connect error", fail_with(httpx.ConnectError), PlatformUnavailable, None, None, 4),
    ("read timeout", fail_with(httpx.ReadTimeout), PlatformUnavailable, None, None, 4),
    ("reset", fail_with(httpx.RemoteProtocolError), PlatformUnavailable, None, None, 4),
    ("401", console_error(401, "Unauthorized"), PlatformAuthError, 401, "req-err", 1),
    ("403", console_error(403, "AccessDenied"), PlatformAuthError, 403, "req-err", 1),
    ("error_code 14", v1_error(14), PlatformAuthError, 200, "req-err", 1),
    # a 404 also asks DescribeSystemModel [M7] (a preset's version); the error is the first one
    ("404", console_error(404, "ResourceNotFound"), PlatformNotFound, 404, "req-err", 2),
    ("429", console_error(429, "RateLimitExceeded"), PlatformRateLimited, 429, "req-err", 4),
    ("error_code 18", v1_error(18), PlatformRateLimited, 200, "req-err", 4),
    ("error_code 336501", v1_error(336501), PlatformRateLimited, 200, "req-err", 4),
    ("503 busy", console_error(503, "ServerHighLoad"), PlatformServerError, 503, "req-err", 4),
    ("500", console_error(500, "InternalError"), PlatformServerError, 500, "req-err", 4),
    ("error_code 336100", v1_error(336100), PlatformServerError, 200, "req-err", 4),
    ("400", console_error(400, "InvalidParameter"), PlatformStatusError, 400, "req-err", 1),
    ("error_code 336003", v1_error(336003), PlatformStatusError, 200, "req-err", 1),
    ("token expired", v1_error(111), PlatformAuthError, 200, "req-err", 2),
    (
        "not json",
        respond(200, b"<html>busy</html>", {"X-Bce-Request-Id": "hdr-1"}),
        PlatformProtocolError,
        200,
        "hdr-1",
        1,
    ),
    ("no result", respond(200, {"requestId": "req-ok"}), PlatformProtocolError, 200, "req-ok", 1),
    (
        "missing field",
        respond(200, {"requestId": "req-ok", "result": {"modelId": "amv-1"}}),
        PlatformProtocolError,
        200,
        "req-ok",
        1,
    ),
]


@pytest.mark.parametrize(
    ("fault", "expected", "status", "request_id", "attempts"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_each_failure_maps_to_its_error_with_coordinates_and_no_secret(
    qianfan_harness: Harness,
    caplog: pytest.LogCaptureFixture,
    fault: Callable[..., httpx.Response],
    expected: type[PlatformError],
    status: int | None,
    request_id: str | None,
    attempts: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    qianfan_harness.fake.faults["DescribeModel"] = [fault] * 10
    with pytest.raises(PlatformError) as caught:
        qianfan_harness.client.describe_model_version("amv-1")
    error = caught.value
    assert type(error) is expected
    assert (error.method, error.path, error.status, error.request_id) == (
        "POST",
        "/v2/model?Action=DescribeModel",
        status,
        request_id,
    )
    assert error.platform == "qianfan https://qianfan.test"
    assert len(qianfan_harness.fake.requests) == attempts
    assert str(error).endswith(".")
    for secret in _SECRETS:
        assert secret not in str(error)
        assert secret not in repr(error)
        assert secret not in caplog.text
        assert all(secret not in str(arg) for record in caplog.records for arg in (record.args or ()))


def test_a_protocol_error_names_the_missing_field(harness: Harness) -> None:
    harness.fake.faults["DescribeModel"] = [respond(200, {"requestId": "r", "result": {"modelId": "amv-1"}})]
    with pytest.raises(
        PlatformProtocolError, match=r"'result\.modelSetId' should be a non-empty string, not missing"
    ):
        harness.client.describe_model_version("amv-1")


def test_an_unknown_status_word_is_a_protocol_error_naming_the_field(harness: Harness) -> None:
    from runner.platform.protocol import TaskKind, TaskRef

    harness.fake.tasks["bi-1"] = {"taskId": "bi-1", "runStatus": "Exploded"}
    with pytest.raises(PlatformProtocolError, match=r"'result\.runStatus' has the unknown status 'Exploded'"):
        harness.client.describe_task(TaskRef(TaskKind.BATCH_INFERENCE, "bi-1", "n"))


def test_the_error_message_includes_the_platforms_own_message(harness: Harness) -> None:
    harness.fake.faults["DescribeModel"] = [console_error(400, "InvalidParameter")]
    with pytest.raises(PlatformStatusError) as caught:
        harness.client.describe_model_version("amv-1")
    assert str(caught.value).startswith(
        "platform local http://platform.test: POST /v2/model?Action=DescribeModel -> 400: "
        "the platform refused the request (InvalidParameter: refused: token ***"
    )
    assert str(caught.value).endswith("(request id req-err).")


def test_rate_limits_are_retried_and_retry_after_is_honoured(harness: Harness) -> None:
    harness.fake.models["amv-1"] = GOOD_MODEL
    harness.fake.faults["DescribeModel"] = [
        respond(
            429, {"requestId": "r", "code": "RateLimitExceeded", "message": "slow down"}, {"Retry-After": "7"}
        ),
        v1_error(18),
    ]
    assert harness.client.describe_model_version("amv-1").model_id == "am-1"
    assert len(harness.fake.requests) == 3
    assert harness.sleeps[0] >= 7.0
    assert 0 < harness.sleeps[1] < 7.0


def test_backoff_is_exponential_with_jitter(harness: Harness) -> None:
    harness.fake.faults["DescribeModel"] = [fail_with(httpx.ConnectError)] * 10
    with pytest.raises(PlatformUnavailable):
        harness.client.describe_model_version("amv-1")
    # base 0.01 s: attempt n waits within [0.01 * 2**n / 2, 0.01 * 2**n]
    assert len(harness.sleeps) == 3
    for attempt, delay in enumerate(harness.sleeps):
        ceiling = 0.01 * 2**attempt
        assert ceiling / 2 <= delay <= ceiling


def test_an_expired_token_is_refreshed_once_from_the_environment() -> None:
    env = {"QFRUN_LOCAL_TOKEN": "old-token"}
    creds = Credentials(bearer_token="old-token", bearer_env="QFRUN_LOCAL_TOKEN", environ=env)
    settings = PlatformSettings("local", "http://p.test", "http://p.test", creds, max_retries=3)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        if len(seen) == 1:
            env["QFRUN_LOCAL_TOKEN"] = "new-token"
            return httpx.Response(200, json={"error_code": 111, "error_msg": "expired"})
        return httpx.Response(200, json={"requestId": "r", "result": GOOD_MODEL})

    client = PlatformClient(settings, transport=httpx.MockTransport(handler), bucket=TokenBucket(1e6, 100))
    with client:
        assert client.describe_model_version("amv-1").version_id == "amv-1"
    assert seen == ["Bearer old-token", "Bearer new-token"]


def test_reads_recover_from_a_dropped_response(harness: Harness) -> None:
    harness.fake.models["amv-1"] = GOOD_MODEL
    harness.fake.faults["DescribeModel"] = [
        fail_with(httpx.ReadTimeout),
        fail_with(httpx.RemoteProtocolError),
    ]
    assert harness.client.describe_model_version("amv-1").model_id == "am-1"
    assert len(harness.fake.requests) == 3


def test_chat_errors_use_the_v1_shape(harness: Harness) -> None:
    from runner.platform.protocol import ChatMessage

    harness.fake.faults["qa"] = [
        respond(200, {"error_code": 336005, "error_msg": "API name not exist", "id": "as-9"})
    ]
    with pytest.raises(PlatformNotFound) as caught:
        harness.client.chat("qa", [ChatMessage("user", "hi")])
    assert caught.value.code == 336005
    assert caught.value.request_id == "as-9"
    assert caught.value.path == "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/qa"
