"""Model versions [M2] and dataset versions [D3] as the protocol's values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.platform.protocol import (
    Dataset,
    ModelVersion,
)
from runner.platform.wire.fields import WireError, obj, opt_int, opt_str, req_str

MODEL_STATUS_READY = "Ready"
MODEL_STATUS_WORDS = ("Ready", "Creating", "Fail")  # DescribeModel `status` [M2]


def model_version(result: Any) -> ModelVersion:
    """A DescribeModel result [M2]. ``sizeBytes`` and ``details`` are local-platform additions."""
    data = obj(result, "result")
    details: dict[str, Any] = dict(obj(data.get("details") or {}, "result.details"))
    status = opt_str(data, "status")
    if status and status not in MODEL_STATUS_WORDS:
        raise WireError(
            f"the field 'result.status' has the unknown status {status!r} "
            f"(known: {', '.join(MODEL_STATUS_WORDS)})"
        )
    for key in ("status", "isSupportModelComp", "modelName", "model", "description"):
        if key in data:
            details.setdefault(key, data[key])
    source = obj(data.get("sourceInfo") or {}, "result.sourceInfo")
    source_type = opt_str(source, "sourceType", "result.sourceInfo")  # (name not captured)
    return ModelVersion(
        version_id=req_str(data, "modelId"),
        model_id=req_str(data, "modelSetId"),
        name=opt_str(data, "modelName"),
        version=opt_str(data, "version"),
        size_bytes=opt_int(data, "sizeBytes"),
        source=source_type.lower(),
        details=details,
    )


def dataset(result: Any) -> Dataset:
    """A DescribeDatasetVersion result [D3]; the row count is ``sampleCount`` or the v1 ``entityCount``."""
    data = obj(result, "result")
    rows = opt_int(data, "sampleCount")
    return Dataset(
        dataset_id=req_str(data, "versionId"),
        name=req_str(data, "datasetName"),
        rows=rows if rows is not None else opt_int(data, "entityCount"),
        sha256=opt_str(data, "sha256") or None,
    )


MODEL_ROUTE = "model"
MODEL_SETS_LIST = "DescribeCustomModelSets"  # the user's models, each with its version ids [M3]
CREATE_MODEL_SET = "CreateCustomModelSet"  # a new empty model; ``result`` is its id, a string [M4]
CREATE_MODEL_VERSION = "CreateCustomModel"  # a new version: an import from BOS, or a training's result [M5]
# CreateCustomModelSet's modelType values [M4] ("VioceGeneration" as the page spells it).
MODEL_TYPES = (
    "Text2Text",
    "Text2Image",
    "Embedding",
    "ImageUnderstanding",
    "VideoGeneration",
    "VioceGeneration",
    "Reasoning",
    "Reranker",
)
IMPORT_MODEL_FORMAT = "HuggingFace.Transformers"  # importMeta.modelFormat of a Hugging Face model [M5]
MAX_MODEL_DESCRIPTION = 300  # CreateCustomModel's description, [0, 300] characters [M5]
MODEL_SETS_FIELD = "customModelSetList"
# Deletes one of the user's model versions, {modelId} [M9]; the answer's shape is not captured.
DELETE_MODEL_VERSION = "DeleteModel"


def model_set_version_ids(item: Mapping[str, Any], where: str) -> list[str]:
    """The version ids a DescribeCustomModelSets item lists in ``modelIds`` [M3] (none when it has none)."""
    ids = item.get("modelIds")
    if ids is None:
        return []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise WireError(f"the field '{where}.modelIds' should be an array of strings")
    return list(ids)


def model_set_name(item: Mapping[str, Any], where: str) -> tuple[str, str]:
    """A DescribeCustomModelSets item's ``modelSetId`` and ``modelSetName`` [M3]."""
    return req_str(item, "modelSetId", where), opt_str(item, "modelSetName", where)


def created_model_set(result: Any) -> str:
    """CreateCustomModelSet's ``result``: the new model's id, a string [M4]."""
    if not isinstance(result, str) or not result:
        raise WireError("the field 'result' should be the new model's id, a string")
    return result


def import_version_body(
    model_set_id: str, bucket: str, object_path: str, description: str, transformer_version: str = ""
) -> dict[str, Any]:
    """CreateCustomModel [M5] importing the Hugging Face folder ``object_path`` of ``bucket`` as a chat model
    (the io mode and format of the page's import example), run with ``transformer_version`` when given."""
    return {
        "modelSetId": model_set_id,
        "sourceType": "Import",
        "description": description[:MAX_MODEL_DESCRIPTION],
        "importMeta": {
            "bucket": bucket,
            "objectPath": object_path,
            "modelFormat": IMPORT_MODEL_FORMAT,
            "modelApplicationType": "chat",
            **({"transformerVersion": transformer_version} if transformer_version else {}),
        },
    }


def created_version_id(result: Any) -> str:
    """CreateCustomModel's new version id: the ``modelId`` of its result [M2][M5]."""
    return req_str(obj(result, "result"), "modelId", "result")
