"""The official SDK as the oracle of the result export: the documented calls [E14] (``call_action`` on
``/v2/eval`` with the pages' own example bodies) made by qianfan 0.4.12.3 against the local platform, signed
with bce-auth-v1, answer the documented fields, and the file behind ``downloadUrl`` reads back with qfrun's
reader to the evaluation's records.
"""

from __future__ import annotations

import httpx
import pytest

from runner.local.engine.evaluators import evaluate
from runner.local.kinds.evaluation import KIND, write_records
from runner.local.rows import SUCCEEDED
from runner.platform.eval_export_file import read_export
from runner.testing.sdk_oracle import SdkPlatform

pytestmark = pytest.mark.slow  # the SDK runs in its own process (its import takes seconds)

ROWS = [
    {"prompt": "1+1=?", "response": "2", "output": "2"},
    {"prompt": "2+2=?", "response": "4", "output": "5"},
]
SCRIPT = """\
from qianfan import resources

created = resources.console.utils.call_action(
    "/v2/eval",
    "CreateEvalResultExportTask",
    {{"evalId": {eval_id!r}, "storageType": "sysStorage",
      "exportContent": ["prompt", "prediction", "completion", "metrics"]}},
)
described = resources.console.utils.call_action(
    "/v2/eval", "DescribeEvalResultExportTask", {{"taskId": created.body["result"]["taskId"]}}
)
report({{"created": created.body, "described": described.body}})
"""


def finished_evaluation(platform: SdkPlatform) -> str:
    """An evaluation as its job leaves it (records written by the job's own evaluators), no model run."""
    store = platform.recorder.app.state.context.store  # type: ignore[attr-defined]
    metrics, records = evaluate(ROWS, [{"kind": "rule", "accuracy": True}])
    path = write_records(platform.workdir / "records-export.jsonl", records)
    task = store.create_task(task_id="ame-exported", kind=KIND.store_kind, name="exported", params={})
    result = {"models": {platform.version_id: {"metrics": metrics, "samples": 2, "records_path": str(path)}}}
    store.update_task(task.id, status=SUCCEEDED, result=result)
    return str(task.id)


def test_the_sdk_creates_and_describes_an_export_whose_file_holds_the_records(
    sdk_platform: SdkPlatform,
) -> None:
    eval_id = finished_evaluation(sdk_platform)
    answer, calls = sdk_platform.run(SCRIPT.format(eval_id=eval_id))

    assert [call.query.get("Action") for call in calls] == [
        "CreateEvalResultExportTask",
        "DescribeEvalResultExportTask",
    ]
    assert all(call.headers["authorization"].startswith("bce-auth-v1/") for call in calls)
    export_id = answer["created"]["result"]["taskId"]
    assert export_id.startswith("amemt-")
    described = answer["described"]["result"]
    assert {key: described[key] for key in ("taskId", "evalId", "state", "storageType")} == {
        "taskId": export_id,
        "evalId": eval_id,
        "state": "Succeeded",
        "storageType": "sysStorage",
    }
    assert described["exportContent"] == ["prompt", "prediction", "completion", "metrics"]

    token = sdk_platform.credentials.token
    response = httpx.get(described["downloadUrl"], headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200
    records = read_export(response.content, 10)
    assert [(r.version_id, r.index, r.input, r.output, r.expected, r.passed) for r in records] == [
        (sdk_platform.version_id, 1, "1+1=?", "2", "2", True),
        (sdk_platform.version_id, 2, "2+2=?", "5", "4", False),
    ]
