"""When the background platform cannot be had, the launcher and ``qfrun platform`` say why in one sentence:
a server that exits while starting hands its reason up from its log, a port in use is named, and the
platform commands tell a user with no running platform how to start one."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import filelock
import httpx
import pytest

from runner.errors import PlatformError, PlatformUnavailable
from runner.local import launcher, server
from runner.local.home import HOME_ENV, Home
from runner.testing.cli import invoke as qfrun


@pytest.mark.slow  # starts the server process
def test_a_server_that_exits_while_starting_hands_its_reason_up(platform_home: Home) -> None:
    platform_home.ensure()
    # Another server holds this home: the one start launches refuses and exits.
    with filelock.FileLock(str(platform_home.root / "serve.lock")):
        with pytest.raises(PlatformUnavailable) as caught:
            launcher.start(platform_home)
    message = str(caught.value)
    assert message.startswith(f"The local platform for {platform_home.root} exited while starting; see ")
    assert f"Another local platform already serves {platform_home.root}" in message
    assert "\n" not in message


def test_serve_names_a_port_it_cannot_listen_on(platform_home: Home) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    mask = os.umask(0o022)  # read the umask (serve sets its own before it binds) to restore it after
    os.umask(mask)
    try:
        with pytest.raises(PlatformError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use"):
            server.serve(platform_home, port=port)
    finally:
        os.umask(mask)
        taken.close()
    assert not platform_home.info_path.exists()
    # The home is free again: the lock went with the refusal.
    with filelock.FileLock(str(platform_home.root / "serve.lock"), timeout=0):
        pass


def test_the_server_module_exits_1_with_the_reason_in_its_log(
    platform_home: Home, caplog: pytest.LogCaptureFixture
) -> None:
    platform_home.ensure()
    with filelock.FileLock(str(platform_home.root / "serve.lock")):
        code = server.main(["serve", "--home", str(platform_home.root)])
    assert code == 1
    assert f"Another local platform already serves {platform_home.root}" in caplog.text


def test_stop_and_status_forget_a_platform_json_of_a_dead_process(platform_home: Home) -> None:
    platform_home.ensure()
    dead = {"url": "http://127.0.0.1:9", "pid": 2**22 + 4321}
    platform_home.info_path.write_text(json.dumps(dead))
    assert launcher.stop(platform_home) is False
    assert not platform_home.info_path.exists()
    assert launcher.stop(platform_home) is False  # nothing recorded at all
    platform_home.info_path.write_text("{not json")
    assert launcher.status(platform_home) is None


def test_a_pipelines_url_gets_this_users_token_only_for_this_users_platform(platform_home: Home) -> None:
    platform_home.ensure()
    platform_home.info_path.write_text(json.dumps({"url": "http://127.0.0.1:4567/", "pid": os.getpid()}))
    token = launcher.token_for("http://127.0.0.1:4567", platform_home)
    assert token is not None
    assert len(token) >= 32
    assert launcher.token_for("http://127.0.0.1:4568", platform_home) is None
    platform_home.info_path.unlink()
    assert launcher.token_for("http://127.0.0.1:4567", platform_home) is None


def test_the_log_tail_keeps_the_last_lines_that_say_something(tmp_path: Path) -> None:
    log = tmp_path / "platform.log"
    assert launcher._log_tail(log) == "(no log)."
    log.write_text("\n  \n")
    assert launcher._log_tail(log) == "(empty log)."
    log.write_text("".join(f"line {n}\n\n" for n in range(8)))
    assert launcher._log_tail(log) == "line 3 | line 4 | line 5 | line 6 | line 7"


class _Refusing(httpx.BaseTransport):
    def __init__(self) -> None:
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise httpx.ConnectError("refused", request=request)


def test_a_refused_connection_to_another_address_is_not_a_reason_to_start_a_platform(
    platform_home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []
    monkeypatch.setattr(launcher, "start", lambda home, token, port: started.append(port))
    inner = _Refusing()
    transport = launcher.RestartingTransport(platform_home, "http://127.0.0.1:4567", None, inner)
    with pytest.raises(httpx.ConnectError):
        transport.handle_request(httpx.Request("GET", "http://127.0.0.1:9999/healthz"))
    assert started == []
    # Its own address: started again on the same port, at most MAX_RESTARTS times in one run.
    for _ in range(launcher.MAX_RESTARTS):
        with pytest.raises(httpx.ConnectError):
            transport.handle_request(httpx.Request("GET", "http://127.0.0.1:4567/healthz"))
    with pytest.raises(httpx.ConnectError):
        transport.handle_request(httpx.Request("GET", "http://127.0.0.1:4567/healthz"))
    assert started == [4567] * launcher.MAX_RESTARTS
    transport.close()


def test_platform_commands_tell_a_user_with_no_platform_how_to_start_one(
    platform_home: Home, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(HOME_ENV, str(platform_home.root))
    code, out, err = qfrun(capsys, "platform", "status")
    assert code == 1
    assert (
        out.strip() == f"No local platform runs for {platform_home.root}; `qfrun platform start` starts one."
    )
    code, out, err = qfrun(capsys, "platform", "stop")
    assert (code, out.strip()) == (0, f"No local platform runs for {platform_home.root}.")
    code, out, err = qfrun(capsys, "platform", "env")
    assert code == 1
    assert out == ""
    assert f"No local platform runs for {platform_home.root}; `qfrun platform start` starts one." in err


def test_platform_status_says_when_the_recorded_platform_does_not_answer(
    platform_home: Home, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(HOME_ENV, str(platform_home.root))
    platform_home.ensure()
    # A live process (this one) recorded at an address where nothing answers.
    info = {"url": "http://127.0.0.1:9", "pid": os.getpid(), "started_at": "2026-12-07T20:00:00Z"}
    platform_home.info_path.write_text(json.dumps(info))
    code, out, _ = qfrun(capsys, "platform", "status")
    assert code == 1
    assert out.strip() == (
        f"The local platform runs at http://127.0.0.1:9 (pid {os.getpid()}, started 2026-12-07T20:00:00Z), "
        "NOT answering."
    )
    code, out, _ = qfrun(capsys, "platform", "env")
    assert code == 0
    assert "export QIANFAN_" in out
    assert "http://127.0.0.1:9" in out
