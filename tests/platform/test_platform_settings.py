"""Settings come from the pipeline's platform value plus the environment, and never show a credential."""

from __future__ import annotations

import pytest

from runner.errors import PlatformAuthError, PlatformError
from runner.platform.settings import settings_from_pipeline

AK, SK, TOKEN = "ak-secret-1234", "sk-secret-5678", "token-secret-9"


def test_local_platform_uses_the_given_address_and_the_local_token() -> None:
    settings = settings_from_pipeline(
        "local", environ={"QFRUN_LOCAL_TOKEN": TOKEN}, local_base_url="http://127.0.0.1:8765/"
    )
    assert settings.kind == "local"
    assert settings.console_base_url == settings.inference_base_url == "http://127.0.0.1:8765"
    assert settings.credentials.bearer_token == TOKEN
    assert settings.display_name == "local http://127.0.0.1:8765"
    assert TOKEN not in repr(settings)


def test_local_platform_without_an_address_is_a_sentence_naming_the_fix() -> None:
    with pytest.raises(PlatformError, match="qfrun platform start"):
        settings_from_pipeline("local", environ={})


def test_qianfan_reads_keys_and_base_url_overrides_from_the_environment() -> None:
    env = {
        "QIANFAN_ACCESS_KEY": AK,
        "QIANFAN_SECRET_KEY": SK,
        "QIANFAN_CONSOLE_API_BASE_URL": "https://console.example/",
        "QIANFAN_BASE_URL": "https://infer.example",
    }
    settings = settings_from_pipeline({"kind": "qianfan", "rps": 2}, environ=env)
    assert settings.console_base_url == "https://console.example"
    assert settings.inference_base_url == "https://infer.example"
    assert settings.rps == 2.0
    assert settings.credentials.has_signing_keys
    for text in (repr(settings), str(settings), repr(settings.credentials)):
        assert AK not in text
        assert SK not in text


def test_qianfan_defaults_to_the_official_base_urls() -> None:
    settings = settings_from_pipeline("qianfan", environ={"QIANFAN_ACCESS_KEY": AK, "QIANFAN_SECRET_KEY": SK})
    assert settings.console_base_url == "https://qianfan.baidubce.com"
    assert settings.inference_base_url == "https://aip.baidubce.com"


def test_missing_qianfan_credentials_name_the_variables_not_values() -> None:
    with pytest.raises(PlatformAuthError) as caught:
        settings_from_pipeline({"kind": "qianfan"}, environ={"QFRUN_LOCAL_TOKEN": TOKEN})
    text = str(caught.value)
    assert "QIANFAN_ACCESS_KEY" in text
    assert "QIANFAN_SECRET_KEY" in text
    assert TOKEN not in text


def test_a_bearer_token_alone_is_refused_for_the_console_which_takes_only_signed_requests() -> None:
    environ = {"QIANFAN_BEARER_TOKEN": TOKEN, "QIANFAN_AK": "app-key", "QIANFAN_SK": "app-secret"}
    with pytest.raises(PlatformAuthError) as caught:
        settings_from_pipeline("qianfan", environ=environ)
    text = str(caught.value)
    assert "QIANFAN_BEARER_TOKEN is set, but Qianfan takes a bearer token for inference only" in text
    assert "QIANFAN_AK/QIANFAN_SK are an application's keys" in text
    assert TOKEN not in text
    assert "app-secret" not in text


def test_half_a_key_pair_names_the_missing_variable_and_hides_the_other() -> None:
    with pytest.raises(PlatformAuthError, match="QIANFAN_SECRET_KEY is not set") as caught:
        settings_from_pipeline("qianfan", environ={"QIANFAN_ACCESS_KEY": AK})
    assert AK not in str(caught.value)
    assert AK not in repr(caught.value)


def test_unknown_kind_and_bad_rps_are_reported() -> None:
    with pytest.raises(PlatformError, match="'cloud' is unknown"):
        settings_from_pipeline({"kind": "cloud"}, environ={})
    with pytest.raises(PlatformError, match="rps must be a positive number"):
        settings_from_pipeline({"kind": "local", "rps": 0}, environ={}, local_base_url="http://127.0.0.1:1")


def test_the_local_token_is_never_sent_off_this_machine() -> None:
    with pytest.raises(PlatformError, match="not a loopback address; qfrun will not send it"):
        settings_from_pipeline(
            {"kind": "local", "url": "https://collector.example"}, environ={"QFRUN_LOCAL_TOKEN": TOKEN}
        )


def test_the_local_token_never_goes_to_a_bos_endpoint_off_this_machine() -> None:
    with pytest.raises(PlatformError, match=r"BOS endpoint https://bos\.example is not a loopback address"):
        settings_from_pipeline(
            {"kind": "local", "bos": {"endpoint": "https://bos.example", "bucket": "loot"}},
            environ={"QFRUN_LOCAL_TOKEN": TOKEN},
            local_base_url="http://127.0.0.1:8765",
        )
