"""The SDK page's examples (reference/qianfan-model-doc.md), run by the official SDK on the local platform.

Each example lives in tests/sdk/examples as printed on the page, with the edits its header names; it runs
in a fresh interpreter that reaches the platform only through the SDK's ``QIANFAN_*`` variables. Besides
the outcome, each test pins the routes the SDK used, so docs/sdk-compat.md's inventory is checked, not
just written.
"""

from __future__ import annotations

import json

import pytest

from runner.testing.sdk_oracle import EVAL_ROWS, Call, SdkFailed, SdkPlatform

pytestmark = pytest.mark.slow

VERSION_DETAIL = "POST /wenxinworkshop/modelrepo/modelVersionDetail"  # v1, retired [M8]
DATASET_INFO = "POST /wenxinworkshop/dataset/info"  # v1, takes the version id [D7]
EVAL_CREATE = "POST /wenxinworkshop/modelrepo/eval/create"  # v1 [E11]
EVAL_DETAIL = "POST /wenxinworkshop/modelrepo/eval/detail"  # v1 state words [E8]


def routes(calls: list[Call]) -> list[str]:
    """The distinct routes in first-call order (polls collapse into one entry)."""
    seen: list[str] = []
    for call in calls:
        route = call.route if not call.path.startswith("/_compat/exports/") else "GET <export link>"
        if route not in seen:
            seen.append(route)
    return seen


def only(calls: list[Call], route: str) -> Call:
    matching = [call for call in calls if call.route == route]
    assert len(matching) == 1, f"{route} was called {len(matching)} times"
    return matching[0]


def assert_signed(calls: list[Call], access_key: str) -> None:
    """Every console call carries the SDK's bce-auth-v1 signature made with the AK the platform made."""
    for call in calls:
        if call.method == "POST":
            assert call.headers["authorization"].startswith(f"bce-auth-v1/{access_key}/"), call.route


def reference_rows() -> list[dict[str, str]]:
    lines = EVAL_ROWS.read_text(encoding="utf-8").splitlines()[:8]
    return [json.loads(line) for line in lines]


def test_the_pages_version_id_keyword_is_ignored_by_the_sdk(sdk_platform: SdkPlatform) -> None:
    result, calls = sdk_platform.run(sdk_platform.example("model_by_version_id.py"))

    assert result == {"id": None, "set_id": None}
    assert calls == []


def test_a_model_by_version_id_gets_its_set_id(sdk_platform: SdkPlatform) -> None:
    result, calls = sdk_platform.run(sdk_platform.example("model_by_id.py"))

    assert result == {"id": sdk_platform.version_id, "set_id": sdk_platform.set_id}
    assert routes(calls) == [VERSION_DETAIL]
    assert calls[0].body == {"modelVersionId": sdk_platform.version_id}
    assert calls[0].answer["result"]["modelIdStr"] == sdk_platform.set_id
    assert_signed(calls, sdk_platform.access_key)


def test_a_wrong_secret_key_is_refused_in_the_v1_envelope(sdk_platform: SdkPlatform) -> None:
    start = len(sdk_platform.recorder.calls)

    with pytest.raises(SdkFailed) as failure:
        sdk_platform.run(sdk_platform.example("model_by_id.py"), env={"QIANFAN_SECRET_KEY": "SKwrong"})

    (call,) = sdk_platform.recorder.since(start)
    assert call.route == VERSION_DETAIL
    assert call.answer["error_code"] == 14  # the SDK's IAMCertificationFailed
    assert "error code: 14" in failure.value.stderr


def test_batch_inference_over_a_platform_dataset_returns_every_answer(sdk_platform: SdkPlatform) -> None:
    result, calls = sdk_platform.run(sdk_platform.example("batch_inference.py"))

    expected = reference_rows()
    assert [row["prompt"] for row in result["rows"]] == [row["prompt"] for row in expected]
    assert [row["expected_output"] for row in result["rows"]] == [row["response"] for row in expected]
    answers = [row["llm_output"] for row in result["rows"]]
    assert all(answer.strip().isdigit() for answer in answers), answers
    assert sum(a.strip() == r["response"] for a, r in zip(answers, expected, strict=True)) >= 6
    assert routes(calls) == [
        DATASET_INFO,
        VERSION_DETAIL,
        EVAL_CREATE,
        EVAL_DETAIL,
        "POST /wenxinworkshop/dataset/exportRecord",
        "GET <export link>",
    ]
    create = only(calls, EVAL_CREATE)
    assert create.body["evalStandardConf"]["evalMode"] == "manual"
    assert create.body["versionEvalInfo"] == [
        {"modelId": sdk_platform.set_id, "modelVersionId": sdk_platform.version_id}
    ]
    assert create.body["datasetId"] == sdk_platform.dataset_id
    (download,) = [call for call in calls if call.method == "GET"]
    assert "authorization" not in download.headers  # the export link is fetched like a pre-signed URL
    assert_signed(calls, sdk_platform.access_key)


def test_rule_evaluation_reports_accuracy_and_similarity(sdk_platform: SdkPlatform) -> None:
    result, calls = sdk_platform.run(sdk_platform.example("evaluation.py"))

    metrics = result["metrics"]["tiny-adder_1"]
    assert set(metrics) == {"accuracy", "similarity"}
    assert 0.75 <= metrics["accuracy"] <= 1.0
    assert 0.75 <= metrics["similarity"] <= 1.0
    # the export's lines are one-element lists with the console's column names (the SDK's fixture shape)
    entries = [row[0] for row in result["rows"]]
    expected = reference_rows()
    assert [entry["Prompt问题"] for entry in entries] == [row["prompt"] for row in expected]
    assert [entry["预期回答"] for entry in entries] == [row["response"] for row in expected]
    assert all(entry["模型结果"].strip().isdigit() for entry in entries)
    assert {(entry["模型名称"], entry["模型版本"]) for entry in entries} == {("tiny-adder", "1")}
    assert routes(calls) == [
        DATASET_INFO,
        VERSION_DETAIL,
        EVAL_CREATE,
        EVAL_DETAIL,
        "POST /wenxinworkshop/modelrepo/eval/report",  # a list with effectMetric per model [E9]
        "POST /wenxinworkshop/modelrepo/eval/result/export",
        "POST /wenxinworkshop/modelrepo/eval/result/export/info",
        "GET <export link>",
    ]
    conf = only(calls, EVAL_CREATE).body["evalStandardConf"]
    assert conf == {"evalMode": "rule", "scoreModes": ["similarity", "accuracy"]}
    assert_signed(calls, sdk_platform.access_key)


def test_deploy_then_chat_answers_the_sum(sdk_platform: SdkPlatform) -> None:
    result, calls = sdk_platform.run(sdk_platform.example("deploy.py"))

    assert "68" in result["result"]
    assert result["endpoint"] == "your_sdk_suffix"
    assert routes(calls) == [
        VERSION_DETAIL,
        "POST /v2/service?Action=CreateService",
        "POST /v2/service?Action=DescribeService",
        "POST /wenxinworkshop/service/list",
        "POST /rpc/2.0/ai_custom/v1/wenxinworkshop/chat/your_sdk_suffix",  # [S7], signed with AK/SK
    ]
    create = only(calls, "POST /v2/service?Action=CreateService")
    assert create.body == {
        "modelSetId": sdk_platform.set_id,
        "modelId": sdk_platform.version_id,
        "name": "your_service_name",
        "urlSuffix": "your_sdk_suffix",
        "resourceConfig": {"type": "GPU-I-2", "replicasCount": 1},
        "billing": {
            "paymentTiming": "Prepaid",
            "reservation": {"reservationTimeUnit": "Hour", "reservationLength": 1},
        },
    }
    # ChatCompletion lists the services (once per resource object) to map model names to chat URLs
    listed = next(c for c in calls if c.route == "POST /wenxinworkshop/service/list").answer["result"]
    assert [entry["name"] for entry in listed["custom"]] == ["your_service_name"]
    assert_signed(calls, sdk_platform.access_key)


def test_compress_as_printed_cannot_run_in_this_sdk_version(sdk_platform: SdkPlatform) -> None:
    start = len(sdk_platform.recorder.calls)

    with pytest.raises(SdkFailed) as failure:
        sdk_platform.run(sdk_platform.example("compress.py"))

    assert "AttributeError: 'dict' object has no attribute 'ENABLE_PRIVATE'" in failure.value.stderr
    assert routes(sdk_platform.recorder.since(start)) == [
        VERSION_DETAIL,
        "POST /v2/model?Action=DescribeModel",
    ]


def test_compress_step_by_step_gives_a_new_version_in_the_same_model(sdk_platform: SdkPlatform) -> None:
    result, calls = sdk_platform.run(sdk_platform.example("compress_requests.py"))

    assert result["id"].startswith("amv-")
    assert result["id"] != sdk_platform.version_id
    assert result["set_id"] == sdk_platform.set_id
    assert routes(calls) == [
        VERSION_DETAIL,
        "POST /v2/model?Action=DescribeModel",
        "POST /v2/model?Action=CreateModelCompTask",
        "POST /v2/model?Action=DescribeModelCompTask",
    ]
    create = only(calls, "POST /v2/model?Action=CreateModelCompTask")
    assert create.body == {
        "name": "mco_sdkoracle01",
        "sourceModelId": sdk_platform.version_id,
        "modelSetId": sdk_platform.set_id,
        "config": {"strategy": "Quantization", "weight": "INT8-PTQ"},
        "description": f"mcomp_{sdk_platform.version_id}_Quantization_ModelQuantizationWeight.INT8PTQ",
    }
    assert create.answer["result"] == result["task_id"]  # a bare string, as documented [C1][C2]
    assert_signed(calls, sdk_platform.access_key)


def test_the_sdks_fine_tuning_calls_create_train_publish_and_stop_on_the_local_platform(
    sdk_platform: SdkPlatform,
) -> None:
    result, calls = sdk_platform.run(sdk_platform.example("finetune.py"))

    assert result["done"] == "Done"
    assert result["checkpoints"] == [{"step": 2}]
    assert result["version_source"]["sourceType"] == "Train"
    assert result["stopped"] == "Stopped"
    assert result["running_metrics"]["loss"] > 0  # the loss while Running, not only once Done
    assert result["running_metrics"]["step"] >= 1
    assert result["tasks"] == result["ids"]
    assert result["jobs"] == [result["job"]]
    assert routes(calls) == [
        "POST /v2/finetuning?Action=CreateFineTuningJob",
        "POST /v2/finetuning?Action=CreateFineTuningTask",
        "POST /v2/finetuning?Action=DescribeFineTuningTask",
        "POST /v2/model?Action=DescribeModel",
        "POST /v2/model?Action=CreateCustomModel",
        "POST /v2/finetuning?Action=StopFineTuningTask",
        "POST /v2/finetuning?Action=DescribeFineTuningTasks",
        "POST /v2/finetuning?Action=DescribeFineTuningJobs",
    ]
    job = only(calls, "POST /v2/finetuning?Action=CreateFineTuningJob")
    assert job.body == {"name": "sdk-job", "model": sdk_platform.version_id, "trainMode": "SFT"}
    publish = only(calls, "POST /v2/model?Action=CreateCustomModel")
    assert publish.body == {
        "modelSetId": sdk_platform.set_id,
        "sourceType": "Train",
        "trainMeta": {"taskId": result["trained"]},
    }
    assert_signed(calls, sdk_platform.access_key)
