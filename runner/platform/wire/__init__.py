"""Qianfan's documented console API as data: actions, field names, status words, paging and result shapes.

This package is the one place that knows a JSON field name of the console API, and both sides import it: the
client (``runner.platform.client``) builds requests and parses answers with it, and the local platform
(``runner.local``) renders its answers with the same tables, so the two cannot drift apart. Every fact
comes from ``shared/reference/qianfan-official-api.md``; the source keys in brackets (``[B4]``) resolve
there and in ``docs/platform-api.md``. Where the official pages leave a name uncaptured, the name chosen
is marked "(name not captured)" and the reader accepts the alternatives named next to it.

Parsers raise ``WireError`` naming the field (``result.runStatus``); the client turns it into a
``PlatformProtocolError`` with the request's coordinates. One module per concern: ``fields`` (typed access),
``kinds`` (the task kinds' actions and status words), ``paging``, ``models``, ``tasks`` (create bodies,
describes through each kind's entry), one module per task kind (``batch``, ``evaluation``, ``compression``,
``services``: each registers its entry), and ``chat``.
"""

from runner.platform.wire import batch, compression, finetuning
from runner.platform.wire.chat import chat_reply
from runner.platform.wire.eval_results import (
    EXPORT_CREATE_ACTION,
    EXPORT_DESCRIBE_ACTION,
    ExportTask,
    export_body,
    export_created,
    export_task,
    result_record,
)
from runner.platform.wire.evaluation import (
    EVAL_MANUAL_SAMPLES_ACTION,
    EVAL_MANUAL_SCORES_ACTION,
    EVAL_REPORT_ACTION,
    EVAL_TYPES,
    MAX_EXTRA_DIMENSIONS,
    METRIC_WIRE_NAMES,
    RULE_SCORE_MODES,
    SATISFACTION,
    SATISFACTION_WIRE,
    dimension_name,
    eval_config,
    eval_report,
    manual_config,
    manual_samples,
    manual_scores_body,
    report_entry,
)
from runner.platform.wire.fields import WireError, obj, opt_int, opt_str, req_str
from runner.platform.wire.finetuning import publish_body, publish_description
from runner.platform.wire.kinds import KIND_API, KindApi, check_complete, status_of
from runner.platform.wire.models import (
    CREATE_MODEL_SET,
    CREATE_MODEL_VERSION,
    DELETE_MODEL_VERSION,
    IMPORT_MODEL_FORMAT,
    MAX_MODEL_DESCRIPTION,
    MODEL_ROUTE,
    MODEL_SETS_FIELD,
    MODEL_SETS_LIST,
    MODEL_STATUS_READY,
    MODEL_STATUS_WORDS,
    MODEL_TYPES,
    created_model_set,
    created_version_id,
    dataset,
    import_version_body,
    model_set_name,
    model_set_version_ids,
    model_version,
)
from runner.platform.wire.paging import (
    DEFAULT_MAX_KEYS,
    MAX_KEYS,
    list_body,
    list_page,
    page_items,
    page_result,
)
from runner.platform.wire.services import (
    SERVICE_RELEASE_ROUTE,
    release_body,
    released,
    service_create_body,
    service_description,
    service_instance_id,
    service_items,
    service_outcome,
    service_state,
)
from runner.platform.wire.tasks import create_body, created_id, task_info

check_complete()  # a task kind without an entry would otherwise fail at its first request, far from here

__all__ = [
    "CREATE_MODEL_SET",
    "CREATE_MODEL_VERSION",
    "DEFAULT_MAX_KEYS",
    "DELETE_MODEL_VERSION",
    "EVAL_MANUAL_SAMPLES_ACTION",
    "EVAL_MANUAL_SCORES_ACTION",
    "EVAL_REPORT_ACTION",
    "EVAL_TYPES",
    "EXPORT_CREATE_ACTION",
    "EXPORT_DESCRIBE_ACTION",
    "IMPORT_MODEL_FORMAT",
    "KIND_API",
    "MAX_EXTRA_DIMENSIONS",
    "MAX_KEYS",
    "MAX_MODEL_DESCRIPTION",
    "METRIC_WIRE_NAMES",
    "MODEL_ROUTE",
    "MODEL_SETS_FIELD",
    "MODEL_SETS_LIST",
    "MODEL_STATUS_READY",
    "MODEL_STATUS_WORDS",
    "MODEL_TYPES",
    "RULE_SCORE_MODES",
    "SATISFACTION",
    "SATISFACTION_WIRE",
    "SERVICE_RELEASE_ROUTE",
    "ExportTask",
    "KindApi",
    "WireError",
    "batch",
    "chat_reply",
    "compression",
    "create_body",
    "created_id",
    "created_model_set",
    "created_version_id",
    "dataset",
    "dimension_name",
    "eval_config",
    "eval_report",
    "export_body",
    "export_created",
    "export_task",
    "finetuning",
    "import_version_body",
    "list_body",
    "list_page",
    "manual_config",
    "manual_samples",
    "manual_scores_body",
    "model_set_name",
    "model_set_version_ids",
    "model_version",
    "obj",
    "opt_int",
    "opt_str",
    "page_items",
    "page_result",
    "publish_body",
    "publish_description",
    "release_body",
    "released",
    "report_entry",
    "req_str",
    "result_record",
    "service_create_body",
    "service_description",
    "service_instance_id",
    "service_items",
    "service_outcome",
    "service_state",
    "status_of",
    "task_info",
]
