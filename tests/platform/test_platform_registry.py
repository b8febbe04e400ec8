"""The platform kinds' entries (runner.platform.registry): what each says about itself, the spec built from a
pipeline's ``platform`` value, and opening a local platform a pipeline names by URL, against a real one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.errors import PlatformAuthError, PlatformError
from runner.local.app import create_app
from runner.local.credentials import load_or_create
from runner.local.home import HOME_ENV, Home
from runner.platform.registry import PLATFORM_KINDS, PollPolicy, platform_spec
from runner.platform.settings import ENV_LOCAL_TOKEN
from runner.testing.serving import serve_app


@pytest.mark.parametrize(
    ("value", "name", "local"),
    [
        ("local", "local", True),
        ("qianfan", "qianfan", False),
        ({"kind": "qianfan", "rps": 2}, "qianfan", False),
        ({"kind": "local", "url": "http://127.0.0.1:1"}, "local", True),
        (None, "local", True),
        ({}, "local", True),
    ],
)
def test_a_platform_value_is_read_into_its_kinds_entry(value: object, name: str, local: bool) -> None:
    spec = platform_spec(value)
    assert (spec.name, spec.local, spec.kind is PLATFORM_KINDS[name]) == (name, local, True)


def test_a_kind_no_entry_names_is_refused_in_one_sentence_listing_the_kinds() -> None:
    with pytest.raises(ValueError, match="azure") as caught:
        platform_spec({"kind": "azure"})
    assert str(caught.value) == "the platform kind 'azure' is not one qfrun knows (local, qianfan)"


def test_fingerprints_see_the_local_platform_without_its_url_and_qianfan_with_its_own() -> None:
    assert platform_spec({"kind": "local", "url": "http://127.0.0.1:4444"}).identity() == "local"
    assert platform_spec("local").identity() == "local"
    assert platform_spec("qianfan").identity() == "qianfan default"
    assert platform_spec({"kind": "qianfan", "url": "https://qianfan.example"}).identity() == (
        "qianfan https://qianfan.example"
    )


def test_the_local_platform_is_polled_sooner_than_the_cloud_and_only_the_cloud_reads_dot_env() -> None:
    local, cloud = PLATFORM_KINDS["local"], PLATFORM_KINDS["qianfan"]
    assert local.poll.maximum < cloud.poll.maximum
    assert local.poll.initial < cloud.poll.initial
    assert cloud.poll == PollPolicy()
    assert (local.reads_dot_env, cloud.reads_dot_env) == (False, True)
    assert (local.on_this_machine, cloud.on_this_machine) == (True, False)


@pytest.fixture
def own_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Home]]:
    """A local platform of this user's home, served on 127.0.0.1, its platform.json saying where."""
    home = Home(tmp_path / "home").ensure()
    monkeypatch.setenv(HOME_ENV, str(home.root))
    monkeypatch.delenv(ENV_LOCAL_TOKEN, raising=False)
    with serve_app(create_app(home)) as url:
        home.info_path.write_text(json.dumps({"url": url, "pid": 1, "version": "test"}))
        yield url, home


def test_a_pipeline_naming_this_users_platform_by_url_gets_its_token(own_platform: tuple[str, Home]) -> None:
    url, _ = own_platform
    notes: list[str] = []
    with platform_spec({"kind": "local", "url": url}).open(notes.append, environ={}) as client:
        assert client.list_model_versions({"amv-missing"}) == frozenset()  # an authenticated request
    assert notes == []  # nothing was started, so nothing is said


def test_a_url_that_is_not_this_users_platform_gets_no_token_and_is_refused(
    own_platform: tuple[str, Home],
) -> None:
    url, _ = own_platform
    other = url.replace("127.0.0.1", "localhost")  # the same server, but not the URL platform.json names
    with (
        platform_spec({"kind": "local", "url": other}).open(lambda _: None, environ={}) as client,
        pytest.raises(PlatformAuthError),
    ):
        client.list_model_versions({"amv-missing"})


def test_a_token_in_the_environment_goes_to_a_url_the_pipeline_names(own_platform: tuple[str, Home]) -> None:
    url, home = own_platform
    token = load_or_create(home).token
    other = url.replace("127.0.0.1", "localhost")
    with platform_spec({"kind": "local", "url": other}).open(
        lambda _: None, environ={ENV_LOCAL_TOKEN: token}
    ) as client:
        assert client.list_model_versions({"amv-missing"}) == frozenset()


def test_a_local_url_off_this_machine_is_refused_before_any_request() -> None:
    with pytest.raises(PlatformError, match="is not a loopback address; qfrun will not send it"):
        platform_spec({"kind": "local", "url": "http://192.0.2.1:8080"}).open(lambda _: None, environ={})


def test_qianfan_opens_with_the_credentials_of_the_environment_it_is_given() -> None:
    environ = {"QIANFAN_ACCESS_KEY": "ak-registry-test-0001", "QIANFAN_SECRET_KEY": "sk-registry-test-0002"}
    with platform_spec("qianfan").open(lambda _: None, environ=environ) as client:
        assert client.settings.kind == "qianfan"
        assert "ak-registry-test-0001" not in repr(client)
