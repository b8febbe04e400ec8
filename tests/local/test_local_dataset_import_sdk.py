"""The official SDK as the oracle of the local platform's dataset management: ``qianfan``'s own v2 dataset
calls (``Data.V2``: CreateDataset [D1], CreateImportTask [D5], DescribeImportTask [D6], DescribeDatasetVersion
[D3], DescribeDatasets [D9], DescribeDatasetVersions [D4]) and Baidu's BOS SDK putting the file, in a fresh
process against the real platform over HTTP, signed with the platform's own keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.testing.sdk_oracle import SdkPlatform, serve_recorded

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

# Lines in the layouts of the Prompt+Response import page [D8]: the SDK's nested answer, and a plain string.
SAMPLES = (
    '[{"prompt": "12+30=?", "response": [["42"]]}]\n'
    '[{"system": "You add numbers.", "prompt": "1+1=?", "response": "2"}]\n'
)

SDK_CODE = """
from baidubce.auth.bce_credentials import BceCredentials
from baidubce.bce_client_configuration import BceClientConfiguration
from baidubce.services.bos.bos_client import BosClient
from qianfan.resources.console.consts import V2 as V2Consts
from qianfan.resources.console.data import Data
import os

bos = BosClient(BceClientConfiguration(
    credentials=BceCredentials(os.environ["QIANFAN_ACCESS_KEY"], os.environ["QIANFAN_SECRET_KEY"]),
    endpoint=os.environ["QIANFAN_CONSOLE_API_BASE_URL"]))
bos.put_object_from_string("qfrun-local", "sdk/{file}", {samples!r})
made = Data.V2.create_dataset("sdk_{name}", V2Consts.DatasetFormat.PromptResponse,
                              V2Consts.StorageType.SysStorage).body["result"]
source = ["bos:/qfrun-local/sdk/{file}"]
task = Data.V2.create_dataset_version_import_task(made["versionId"], source).body["result"]
report({{
    "made": made,
    "task": Data.V2.get_dataset_version_import_task_info(task).body["result"],
    "version": Data.V2.get_dataset_version_info(made["versionId"]).body["result"],
    "listed": Data.V2.get_dataset_list(filter={{"datasetName": "sdk_{name}"}}).body["result"],
    "finished": Data.V2.get_dataset_version_list(
        made["datasetId"], filter={{"importStatusList": ["ImportFinished"]}}).body["result"],
}})
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SdkPlatform]:
    with serve_recorded(tmp_path_factory.mktemp("sdk-datasets")) as served:
        yield served


def run(platform: SdkPlatform, name: str, samples: str) -> tuple[dict[str, Any], list[str]]:
    code = SDK_CODE.format(name=name, file=f"{name}.jsonl", samples=samples)
    result, calls = platform.run(code, timeout=120)
    return result, [call.query.get("Action") or call.method for call in calls]


def test_the_sdks_v2_dataset_calls_create_import_and_describe_a_dataset(platform: SdkPlatform) -> None:
    result, actions = run(platform, "adds", SAMPLES)
    assert actions == [
        "PUT",
        "CreateDataset",
        "CreateImportTask",
        "DescribeImportTask",
        "DescribeDatasetVersion",
        "DescribeDatasets",
        "DescribeDatasetVersions",
    ]
    made = result["made"]
    assert made["datasetId"].startswith("dg-")
    assert made["versionId"].startswith("ds-")
    assert result["task"]["importStatus"] == "ImportFinished"
    assert result["task"]["sampleCount"] == 2
    assert result["version"]["versionId"] == made["versionId"]
    assert result["version"]["importStatus"] == "ImportFinished"
    assert [item["datasetName"] for item in result["listed"]["datasetList"]] == ["sdk_adds"]
    assert [item["versionId"] for item in result["finished"]["versionList"]] == [made["versionId"]]


def test_an_sdk_import_of_a_bad_line_fails_and_says_which(platform: SdkPlatform) -> None:
    result, _ = run(platform, "broken", '[{"prompt": "1+1=?", "response": [["2"]]}]\n{"prompt": 3}\n')
    assert result["task"]["importStatus"] == "ImportFailed"
    assert result["task"]["errorMessage"] == (
        "bos:/qfrun-local/sdk/broken.jsonl line 2: the turn has no string 'prompt'"
    )
    assert result["finished"]["versionList"] == []


def test_the_dataset_the_sdk_imported_is_one_a_qfrun_evaluation_reads(
    platform: SdkPlatform, tmp_path: Path
) -> None:
    result, _ = run(platform, "evalset", SAMPLES)
    version_id = result["made"]["versionId"]
    exported, _ = platform.run(
        "from qianfan.resources import console\n"
        "resp = console.utils.call_action('/v2/dataset', 'ExportDatasetVersion', "
        f"{{'versionId': {version_id!r}}})\n"
        "report(resp.body['result']['content'])\n"
    )
    assert exported.splitlines() == [
        '{"prompt": "12+30=?", "response": "42"}',
        '{"prompt": "1+1=?", "response": "2"}',
    ]
