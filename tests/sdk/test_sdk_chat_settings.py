"""The official SDK's chat on a deployed local service with per-chat settings: ``stop`` and
``max_output_tokens`` reach the replica, and chats the SDK sends at the same time (which the replica may
batch together) each keep their own."""

from __future__ import annotations

import pytest

from runner.testing.sdk_oracle import SdkPlatform

pytestmark = pytest.mark.slow

SCRIPT = """
from concurrent.futures import ThreadPoolExecutor
from qianfan import ChatCompletion
from qianfan.model import DeployConfig, Model, Service
from qianfan.model.consts import ServiceType
from qianfan.resources.console.consts import DeployPoolType

service: Service = Model(id="amv-xx").deploy(DeployConfig(
    name="settings", endpoint_suffix="settings", replicas=1,
    pool_type=DeployPoolType.PrivateResource, service_type=ServiceType.Chat, hours=1,
))
chat: ChatCompletion = service.get_res()

def ask(settings):
    return chat.do(messages=[{"content": "97+57=?", "role": "user"}], **settings)["result"]

asked = [{}, {"stop": ["5"]}, {"max_output_tokens": 2}, {"stop": ["4"], "temperature": 0.9}]
with ThreadPoolExecutor(4) as pool:
    together = list(pool.map(ask, asked))
report({"alone": [ask(settings) for settings in asked], "together": together})
"""


def test_the_sdks_concurrent_chats_each_keep_their_own_stop_and_token_limit(
    sdk_platform: SdkPlatform,
) -> None:
    result, calls = sdk_platform.run(SCRIPT.replace("amv-xx", sdk_platform.version_id))

    chats = [
        call for call in calls if call.route.startswith("POST /rpc/2.0/ai_custom/v1/wenxinworkshop/chat/")
    ]
    assert [call.body.get("stop") for call in chats[4:]] == [None, ["5"], None, ["4"]]
    # 154 alone; cut before its "5"; two tokens (a leading space and "1"); sampled, but cut before any "4"
    assert result["alone"][:3] == ["154", "1", "1"]
    assert result["together"][:3] == result["alone"][:3]
    assert "4" not in result["together"][3]
    assert "4" not in result["alone"][3]
