"""What the plan says about credentials before anything runs: every host a pipeline's platform sends one to,
which kind, and from which variable, never a value; it follows what the client will actually do."""

from __future__ import annotations

from runner.platform.destinations import LOCAL_UNSTARTED, Destination, credential_destinations

KEYS = {"QFRUN_LOCAL_ACCESS_KEY": "ak-value", "QFRUN_LOCAL_SECRET_KEY": "sk-value"}
QIANFAN_KEYS = {"QIANFAN_ACCESS_KEY": "qak-value", "QIANFAN_SECRET_KEY": "qsk-value"}


def _sentences(destinations: list[Destination]) -> list[str]:
    return [destination.sentence() for destination in destinations]


def test_a_local_platform_not_yet_started_gets_the_token_at_a_port_chosen_later() -> None:
    (only,) = credential_destinations({"kind": "local"}, {})
    assert only.host == LOCAL_UNSTARTED
    assert only.role == "the local platform on this machine, its port chosen at start: console, chat and BOS"
    assert (
        "bearer token (QFRUN_LOCAL_TOKEN, else the one in QFRUN_HOME's credentials.json)" in only.credential
    )


def test_a_local_key_pair_signs_instead_and_a_separate_bos_endpoint_is_named() -> None:
    platform = {"kind": "local", "url": "http://127.0.0.1:8765", "bos": {"endpoint": "http://127.0.0.1:9000"}}
    console, bos = credential_destinations(platform, KEYS)
    assert console.host == "127.0.0.1:8765"
    assert bos.host == "127.0.0.1:9000"
    assert bos.role == "BOS, from platform.bos.endpoint"
    signature = (
        "the access key QFRUN_LOCAL_ACCESS_KEY and a bce-auth-v1 signature made with QFRUN_LOCAL_SECRET_KEY "
        "(never the secret key)"
    )
    assert console.credential == bos.credential == signature
    same_host = {**platform, "bos": {"endpoint": "http://127.0.0.1:8765/"}}
    assert len(credential_destinations(same_host, KEYS)) == 1  # one host, named once
    for sentence in _sentences(credential_destinations(platform, KEYS)):
        assert "ak-value" not in sentence
        assert "sk-value" not in sentence


def test_qianfan_hosts_follow_the_environments_overrides_and_never_get_a_bearer_token() -> None:
    env = {
        **QIANFAN_KEYS,
        "QIANFAN_BEARER_TOKEN": "bearer-value",
        "QIANFAN_CONSOLE_API_BASE_URL": "https://user:pw@console.example:8443/v2",
        "QIANFAN_BOS_ENDPOINT": "https://bj.bcebos.com",
        "QIANFAN_BOS_BUCKET": "datasets",
    }
    console, chat, bos = credential_destinations({"kind": "qianfan"}, env)
    assert console.host == "console.example:8443"  # never the user:password part of a URL
    assert console.role == "Qianfan's console API, from QIANFAN_CONSOLE_API_BASE_URL"
    assert (chat.host, chat.role) == ("aip.baidubce.com", "chat with deployed services")
    assert (bos.host, bos.role) == (
        "bj.bcebos.com",
        "BOS, from QIANFAN_BOS_ENDPOINT; uploaded dataset files go there",
    )
    assert all("QIANFAN_ACCESS_KEY" in d.credential for d in (console, chat, bos))
    assert not any("bearer" in sentence for sentence in _sentences([console, chat, bos]))


def test_half_a_bos_setting_sends_nothing_to_bos() -> None:
    env = {**QIANFAN_KEYS, "QIANFAN_BOS_BUCKET": "datasets"}  # no endpoint: the run stops and says why
    assert [d.host for d in credential_destinations({"kind": "qianfan"}, env)] == [
        "qianfan.baidubce.com",
        "aip.baidubce.com",
    ]
    named = {"kind": "qianfan", "bos": {"endpoint": "https://su.bcebos.com", "bucket": "b"}}
    assert credential_destinations(named, QIANFAN_KEYS)[2].role.startswith("BOS, from platform.bos.endpoint")


def test_a_url_that_cannot_be_parsed_is_shown_as_written() -> None:
    (only,) = credential_destinations({"kind": "local", "url": "http://[::1"}, {})
    assert only.host == "http://[::1"
