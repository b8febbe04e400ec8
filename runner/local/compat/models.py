"""v1 ``/wenxinworkshop/modelrepo/modelVersionDetail``: a model version with its set id.

The SDK's ``Model(id=...)`` fills in its set id from ``result.modelIdStr`` here, not from the documented v2
DescribeModel (reference §1.2, [M8]); v1 also spells the status ``state``. The answer is built from the
store's version row, as v2 DescribeModel's is.
"""

from __future__ import annotations

from typing import Any

from runner.local.api_common import Body
from runner.local.api_models import version_or_404
from runner.local.compat.envelope import V1Context


def version_detail(v1: V1Context, body: Body) -> dict[str, Any]:
    version = version_or_404(v1.ctx, body.text("modelVersionId"))
    model = v1.ctx.store.model(version.model_id)
    compressed = version.source.startswith("compression:")
    return {
        "modelIdStr": version.model_id,
        "modelVersionIdStr": version.id,
        "modelName": model.name if model is not None else "",
        "version": str(version.version),
        "description": "",
        "state": "Ready",  # a version is registered only once its files are in place
        "sourceType": "Acceleration" if compressed else "Import",
        "sourceExtra": {},  # v1 fills this for trained versions only
        "ioMode": "chat",
        "createTime": version.created_at,  # ISO 8601, as the SDK's fixture of this route writes it
    }


ROUTES = {"modelrepo/modelVersionDetail": version_detail}
