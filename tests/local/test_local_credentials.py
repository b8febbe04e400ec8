"""A token by default: a platform the user gave no credentials makes its own at the first start, stores them
where only this user reads them, requires them on every API, and qfrun and the official SDK find them."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from runner.errors import PlatformError
from runner.local.access import Gate
from runner.local.credentials import credentials_path, effective, load_or_create
from runner.local.home import Home

if TYPE_CHECKING:
    from conftest import Api

LIST = "/v2/batchinference?Action=DescribeBatchInferenceTasks"


def test_a_platform_given_no_credentials_requires_the_token_it_made(platform_api: Api, platform_home: Home):
    path = credentials_path(platform_home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    made = load_or_create(platform_home)
    assert len(made.token) >= 40  # 32 random bytes from `secrets`
    assert made.token not in repr(made)
    assert made.keys.secret_key not in repr(made)
    assert httpx.post(platform_api.url + LIST, json={}, timeout=30).status_code == 401
    wrong = httpx.post(
        platform_api.url + LIST, json={}, headers={"Authorization": "Bearer guess"}, timeout=30
    )
    assert wrong.status_code == 401
    assert made.token not in wrong.text
    right = httpx.post(
        platform_api.url + LIST, json={}, headers={"Authorization": f"Bearer {made.token}"}, timeout=30
    )
    assert right.status_code == 200, right.text
    assert httpx.get(f"{platform_api.url}/qfrun-local", timeout=30).status_code == 401  # BOS too


def test_the_credentials_are_made_once_and_every_first_start_agrees_on_them(tmp_path: Path):
    home = Home(tmp_path / "home")
    seen: list[str] = []

    def first_start() -> None:
        seen.append(load_or_create(home).token)

    threads = [threading.Thread(target=first_start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1
    assert load_or_create(home).token == seen[0]
    assert [p.name for p in home.root.iterdir() if "credentials" in p.name] == ["credentials.json"]


def test_a_credentials_file_others_could_read_or_a_link_is_refused(tmp_path: Path):
    home = Home(tmp_path / "home")
    path = credentials_path(home)
    load_or_create(home)
    path.chmod(0o644)
    with pytest.raises(PlatformError, match=r"readable by other users \(mode 644\); run `chmod 600"):
        load_or_create(home)
    path.unlink()
    (tmp_path / "elsewhere.json").write_text("{}")
    path.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(PlatformError, match="must be a regular file, not a link"):
        load_or_create(home)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "is damaged; delete it and restart the platform to make new credentials."),
        ('{"token": "t"}', "is damaged; delete it and restart the platform to make new credentials."),
        ('["token"]', "is damaged; delete it"),
        (
            '{"token": " ", "access_key": "ak", "secret_key": "sk"}',
            "has an empty field; delete it and restart the platform to make new credentials.",
        ),
        ("x" * 5000, "is not one qfrun wrote."),
    ],
)
def test_a_damaged_credentials_file_is_refused_with_what_to_do(tmp_path: Path, content: str, words: str):
    home = Home(tmp_path / "home")
    home.ensure()
    path = credentials_path(home)
    path.write_text(content, encoding="utf-8")
    path.chmod(0o600)
    with pytest.raises(PlatformError) as caught:
        load_or_create(home)
    assert str(caught.value).startswith(f"The local platform's credentials file {path} ")
    assert words in str(caught.value)
    assert path.read_text(encoding="utf-8") == content  # never replaced behind the user's back


def test_a_folder_in_place_of_the_credentials_file_is_refused(tmp_path: Path):
    home = Home(tmp_path / "home")
    home.ensure()
    credentials_path(home).mkdir()
    with pytest.raises(PlatformError, match="is not one qfrun wrote"):
        load_or_create(home)


def test_the_environments_token_and_keys_take_the_place_of_the_files(tmp_path: Path):
    home = Home(tmp_path / "home")
    stored = load_or_create(home)
    chosen = effective(
        home,
        {"QFRUN_LOCAL_TOKEN": "mine", "QFRUN_LOCAL_ACCESS_KEY": "ak", "QFRUN_LOCAL_SECRET_KEY": "sk"},
    )
    assert (chosen.token, chosen.keys.access_key) == ("mine", "ak")
    assert effective(home, {}) == stored


def test_no_gate_can_be_built_open():
    with pytest.raises(ValueError, match="never runs open"):
        Gate()


@pytest.mark.slow
def test_qfrun_platform_start_says_where_the_token_is_and_the_sdk_recipe_reaches_it(tmp_path: Path):
    """As a user: `qfrun platform start` in a fresh QFRUN_HOME, curl without and with the token, and the
    official SDK configured only by `eval "$(qfrun platform env)"`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QFRUN_", "QIANFAN_"))}
    env["QFRUN_HOME"] = str(tmp_path / "home")
    qfrun = [sys.executable, "-m", "runner"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*qfrun, *args], env=env, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
        )

    started = run("platform", "start")
    try:
        assert started.returncode == 0, started.stderr
        home = Home(tmp_path / "home")
        made = load_or_create(home)
        said = started.stdout + started.stderr
        assert str(credentials_path(home)) in said
        assert 'eval "$(qfrun platform env)"' in said
        assert made.token not in said
        assert made.keys.secret_key not in said
        url = said.split("answers at ", 1)[1].split(";", 1)[0]
        assert httpx.post(url + LIST, json={}, timeout=30).status_code == 401
        bearer = {"Authorization": f"Bearer {made.token}"}
        assert httpx.post(url + LIST, json={}, headers=bearer, timeout=30).status_code == 200
        printed = run("platform", "env")
        assert printed.returncode == 0, printed.stderr
        sdk_env = dict(env)
        for line in printed.stdout.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            sdk_env[name] = shlex.split(value)[0]
        assert sdk_env["QIANFAN_CONSOLE_API_BASE_URL"] == url
        code = (
            "from qianfan.resources import Model\n"
            "try:\n    Model.detail(model_version_id='amv-missing')\n"
            "except Exception as error:\n    print('SDK-ERROR', error)\n"
        )
        sdk = subprocess.run(
            [sys.executable, "-c", code],
            env=sdk_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        # Signed with the platform's keys, the SDK's request gets past the gate to the handler's 404.
        assert "does not exist on this platform" in sdk.stdout + sdk.stderr, sdk.stdout + sdk.stderr
    finally:
        run("platform", "stop")
