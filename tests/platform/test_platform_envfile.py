"""Qianfan settings: the process environment over the repository's .env, as the official SDK reads them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.errors import PlatformAuthError, PlatformError
from runner.platform.envfile import environment_for
from runner.platform.settings import settings_from_pipeline
from runner.run.connect import open_platform
from runner.testing.cli import invoke

AK, SK = "ak-from-dotenv-1234", "sk-from-dotenv-5678"
PIPELINE = """\
version: 1
name: cloud
platform: {kind: qianfan}
stages:
  base: {type: model, version_id: amv-1}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git work tree (a ``.git`` folder marks it) holding one Qianfan pipeline in ``pipelines/``."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "cloud.yaml").write_text(PIPELINE, encoding="utf-8")
    return tmp_path


def dotenv(folder: Path, text: str, name: str = ".env") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_keys_in_the_repositorys_dotenv_make_qianfan_settings(repo: Path) -> None:
    dotenv(repo, f"QIANFAN_ACCESS_KEY={AK}\nexport QIANFAN_SECRET_KEY='{SK}'\n")
    env = environment_for(repo / "pipelines" / "cloud.yaml", environ={}, cwd=repo)
    credentials = settings_from_pipeline("qianfan", environ=env).credentials
    assert (credentials.access_key, credentials.secret_key) == (AK, SK)
    assert AK not in repr(env)
    assert SK not in repr(env)


def test_the_process_environment_wins_over_the_file_even_when_set_empty(repo: Path) -> None:
    dotenv(repo, f"QIANFAN_ACCESS_KEY={AK}\nQIANFAN_SECRET_KEY={SK}\nQIANFAN_BASE_URL=https://file.example\n")
    env = environment_for(
        repo / "pipelines" / "cloud.yaml",
        environ={"QIANFAN_ACCESS_KEY": "ak-env", "QIANFAN_BASE_URL": ""},
        cwd=repo,
    )
    assert env["QIANFAN_ACCESS_KEY"] == "ak-env"
    assert env["QIANFAN_SECRET_KEY"] == SK
    assert env["QIANFAN_BASE_URL"] == ""
    assert (env.from_file("QIANFAN_ACCESS_KEY"), env.from_file("QIANFAN_SECRET_KEY")) == (False, True)


def test_qfrun_reads_what_the_official_sdk_reads_from_the_same_file_and_environment(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qianfan.config import Config  # the oracle: the SDK's own settings class, not a copy of its rules

    path = dotenv(
        repo,
        "QIANFAN_AK=app-key\nQIANFAN_SK=app-secret\nQIANFAN_ACCESS_KEY=${HOME_AK}-x\n"
        'QIANFAN_SECRET_KEY="quoted # not a comment"\nQIANFAN_BEARER_TOKEN=bt # a comment\n',
    )
    for name in list(os.environ):
        if name.startswith("QIANFAN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME_AK", "interpolated")
    monkeypatch.setenv("QIANFAN_SK", "from-the-environment")
    sdk = Config(_env_file=str(path))  # type: ignore[call-arg]
    ours = environment_for(repo / "pipelines" / "cloud.yaml", cwd=repo)
    for name in ("AK", "SK", "ACCESS_KEY", "SECRET_KEY", "BEARER_TOKEN"):
        assert ours[f"QIANFAN_{name}"] == getattr(sdk, name), name


def test_only_qianfan_names_are_taken_from_the_file(repo: Path) -> None:
    dotenv(repo, "QIANFAN_BOS_BUCKET=b1\nQFRUN_LOCAL_TOKEN=t\nPATH=/evil\nQIANFAN_NO_VALUE\n")
    env = environment_for(repo / "pipelines" / "cloud.yaml", environ={}, cwd=repo)
    assert dict(env) == {"QIANFAN_BOS_BUCKET": "b1"}


def test_the_working_folders_dotenv_is_read_when_it_lies_in_the_repository(repo: Path) -> None:
    dotenv(repo, "QIANFAN_BOS_BUCKET=root\n")
    dotenv(repo / "pipelines", "QIANFAN_BOS_BUCKET=pipelines\n")
    pipeline = repo / "pipelines" / "cloud.yaml"
    assert environment_for(pipeline, environ={}, cwd=repo / "pipelines")["QIANFAN_BOS_BUCKET"] == "pipelines"
    assert environment_for(pipeline, environ={}, cwd=repo)["QIANFAN_BOS_BUCKET"] == "root"


def test_a_dotenv_outside_the_repository_is_never_read(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("home")
    dotenv(elsewhere, f"QIANFAN_ACCESS_KEY={AK}\n")
    pipeline = repo / "pipelines" / "cloud.yaml"
    # Run from outside: the repository's own .env (none here), not the one where the shell is.
    assert dict(environment_for(pipeline, environ={}, cwd=elsewhere)) == {}
    with pytest.raises(PlatformError, match=r"QIANFAN_DOT_ENV_CONFIG_FILE names .*, outside the pipeline's"):
        environment_for(pipeline, environ={"QIANFAN_DOT_ENV_CONFIG_FILE": str(elsewhere / ".env")}, cwd=repo)
    (repo / ".env").symlink_to(elsewhere / ".env")
    with pytest.raises(PlatformError, match=r"is a link to .*, outside the pipeline's repository"):
        environment_for(pipeline, environ={}, cwd=repo)


def test_the_sdks_variable_names_another_file_relative_to_the_working_folder(repo: Path) -> None:
    dotenv(repo, "QIANFAN_BOS_BUCKET=default\n")
    dotenv(repo, "QIANFAN_BOS_BUCKET=staging\n", name="staging.env")
    env = environment_for(
        repo / "pipelines" / "cloud.yaml", environ={"QIANFAN_DOT_ENV_CONFIG_FILE": "staging.env"}, cwd=repo
    )
    assert env["QIANFAN_BOS_BUCKET"] == "staging"
    with pytest.raises(PlatformError, match=r"names .*missing\.env, which does not exist"):
        environment_for(
            repo / "pipelines" / "cloud.yaml",
            environ={"QIANFAN_DOT_ENV_CONFIG_FILE": "missing.env"},
            cwd=repo,
        )


def test_a_fifo_named_dotenv_is_refused_without_waiting_for_a_writer(repo: Path) -> None:
    os.mkfifo(repo / ".env")
    with pytest.raises(PlatformError, match="not a regular file"):
        environment_for(repo / "pipelines" / "cloud.yaml", environ={}, cwd=repo)


@pytest.mark.parametrize(
    "name",
    ["QIANFAN_AK", "QIANFAN_SK", "QIANFAN_ACCESS_TOKEN", "QIANFAN_BEARER_TOKEN", "QIANFAN_ACCESS_CODE"],
)
def test_missing_credentials_name_every_credential_the_sdk_reads_that_qfrun_does_not_use(name: str) -> None:
    with pytest.raises(PlatformAuthError) as caught:
        settings_from_pipeline("qianfan", environ={})
    text = str(caught.value)
    assert name in text
    assert "QIANFAN_ACCESS_KEY and QIANFAN_SECRET_KEY" in text
    assert ".env" in text


def test_open_platform_signs_with_the_keys_of_the_pipelines_dotenv(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("QIANFAN_ACCESS_KEY", "QIANFAN_SECRET_KEY", "QIANFAN_DOT_ENV_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    dotenv(repo, f"QIANFAN_ACCESS_KEY={AK}\nQIANFAN_SECRET_KEY={SK}\n")
    monkeypatch.chdir(repo)
    client = open_platform({"kind": "qianfan"}, notify=print, pipeline_file=repo / "pipelines" / "cloud.yaml")
    try:
        assert client.settings.credentials.has_signing_keys
    finally:
        client.close()


def test_the_plan_says_the_keys_come_from_dotenv_and_never_shows_them(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("QIANFAN_ACCESS_KEY", "QIANFAN_SECRET_KEY", "QIANFAN_DOT_ENV_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    dotenv(repo, f"QIANFAN_ACCESS_KEY={AK}\nQIANFAN_SECRET_KEY={SK}\n")
    monkeypatch.chdir(repo)
    code, out, err = invoke(capsys, "plan", "pipelines/cloud.yaml")
    assert code == 0, err
    dotenv_file = repo.resolve() / ".env"
    assert f"(never the secret key); QIANFAN_ACCESS_KEY and QIANFAN_SECRET_KEY read from {dotenv_file}" in out
    assert AK not in out + err
    assert SK not in out + err
