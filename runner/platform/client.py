"""``PlatformClient``: the ``protocol.Platform`` of both Qianfan's cloud and the local platform over HTTP.

The executor polls through ``describe_task``, which costs one request (two when an evaluation has just
finished and its report is read), paced by the platform's shared rate budget. Creates are exactly-once:
when a create's outcome is unknown, the task is looked up by its deterministic name before creating again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from runner import content_hash
from runner.errors import PlatformError, PlatformNotFound, PlatformQueueFull, PlatformStatusError
from runner.files import MAX_DATASET_BYTES, PathRefused, read_regular
from runner.platform import dataset_import, model_import, wire
from runner.platform.bos import BosClient, batch_output_folder
from runner.platform.eval_export_file import ExportFileError, read_export
from runner.platform.export_download import download
from runner.platform.http import AmbiguousCreate, PlatformHttp, Reply
from runner.platform.protocol import (
    JSON,
    ChatMessage,
    ChatReply,
    Dataset,
    ManualSample,
    ManualScore,
    ModelVersion,
    SampleRecord,
    ServiceState,
    TaskInfo,
    TaskKind,
    TaskRef,
    TaskRequest,
    TaskStatus,
)
from runner.platform.ratelimit import TokenBucket
from runner.platform.settings import PlatformSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
LIST_PAGE_SIZE = 100
MAX_RESULTS_BYTES = 64 * 1024 * 1024  # batch output read back whole; larger results stay in BOS
MAX_EXPORT_BYTES = 128 * 1024 * 1024  # a result export read back (zipped); larger ones stay where they are
EXPORT_POLL_S = 2.0  # between DescribeEvalResultExportTask calls while the export is Queued or Running
EXPORT_WAIT_S = (
    600.0  # then the stage keeps its metrics without records (a resumed attempt reuses the export)
)
QUEUE_WAIT_S = 30.0  # between creates refused because the account's task slots are full
QUEUE_WAIT_LIMIT_S = 24 * 3600.0  # a batch task runs at most 24 h [B2], so one slot frees within that
MAX_LIST_PAGES = 1000  # 100,000 tasks: past that, refuse rather than risk a duplicate
# Where people score a manual evaluation on Qianfan: its console's model evaluation pages (模型评估).
QIANFAN_CONSOLE = "https://console.bce.baidu.com/qianfan/"
IMPORT_WAIT_LIMIT_S = 6 * 3600.0  # how long an imported version may stay Creating before qfrun gives up
IMPORT_POLL_S = (
    1.0,
    30.0,
)  # the first wait between DescribeModel calls while it is Creating, and the longest


class PlatformClient:
    """Every operation qfrun needs, typed; one HTTP session per client (close it, or use ``with``)."""

    def __init__(
        self,
        settings: PlatformSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        bucket: TokenBucket | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        self._http = PlatformHttp(settings, transport=transport, bucket=bucket, **extra)
        self._transport = transport

    @property
    def display_name(self) -> str:
        return self.settings.display_name

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PlatformClient({self.display_name})"

    # -- models and datasets ---------------------------------------------------------------------

    def describe_model_version(self, version_id: str) -> ModelVersion:
        """A version of the user's models [M2], or on Qianfan one of its preset models [M7]: preset versions
        (ERNIE-Speed-8K is ``amv-pzqtzdspm77m`` [B3]) are described by DescribeSystemModel, whose result has
        the same fields."""
        try:
            reply = self._http.console("model", "DescribeModel", {"modelId": version_id})
        except PlatformNotFound as missing:
            if self.settings.kind == "local":
                raise
            try:
                reply = self._http.console("model", "DescribeSystemModel", {"modelId": version_id})
            except PlatformNotFound:
                raise missing from None  # neither knows it: the user's own models are the likelier place
            version = self._parse(reply, wire.model_version, reply.body["result"])
            return replace(version, source=version.source or "platformpreset")
        return self._parse(reply, wire.model_version, reply.body["result"])

    def import_model(self, *, name: str, path: str) -> ModelVersion:
        """A local Hugging Face folder as a version of the model ``name``: the local platform copies it
        (ImportLocalModel, local-only); Qianfan imports from BOS only [M5], so there it goes through BOS."""
        if self.settings.kind != "local":
            return self.import_through_bos(name=name, path=path)
        reply = self._http.console("model", "ImportLocalModel", {"name": name, "path": path})
        return self._parse(reply, wire.model_version, reply.body["result"])

    def import_through_bos(self, *, name: str, path: str) -> ModelVersion:
        """Upload the folder under its digest (runner.platform.model_import), find or create the model
        ``name`` (CreateCustomModelSet [M4]), then find the version this content made before or create it
        (CreateCustomModel, sourceType Import [M5]), and wait until it is Ready."""
        try:
            folder = model_import.read_folder(Path(path))
            self._upload_model(folder)
        except PlatformError as problem:
            if isinstance(problem, PlatformStatusError):
                raise
            raise PlatformStatusError(str(problem), platform=self.display_name) from None
        model_set = self._model_set_named(name) or self._create_model_set(name)
        version = self._imported_version(model_set, folder.description)
        if version is None:
            bucket = self.settings.bos.bucket if self.settings.bos else ""
            body = wire.import_version_body(
                model_set, bucket, folder.object_path, folder.description, folder.transformer_version
            )
            try:
                reply = self._http.console(wire.MODEL_ROUTE, wire.CREATE_MODEL_VERSION, body, create=True)
            except AmbiguousCreate as unknown:
                # The answer was lost: the description names the content, so the version is found again.
                version = self._imported_version(model_set, folder.description)
                if version is None:
                    raise unknown.error from None
            else:
                version_id = self._parse(reply, wire.created_version_id, reply.body["result"])
                version = self.describe_model_version(version_id)
        return self._until_ready(version, self._http.pause)

    def _create_model_set(self, name: str) -> str:
        body = {"modelSetName": name, "modelType": "Text2Text"}
        created, _ = self._create_named(
            wire.MODEL_ROUTE,
            wire.CREATE_MODEL_SET,
            body,
            wire.created_model_set,
            lambda: self._model_set_named(name),
        )
        return created

    def _create_named(
        self,
        route: str,
        action: str,
        body: Mapping[str, Any],
        parse: Callable[[Any], T],
        find: Callable[[], T | None],
    ) -> tuple[T, bool]:
        """A create whose name finds what it made: its parsed result and True; when its answer was lost, or
        the name is taken (409, or a code that says so), what ``find`` finds by the name and False."""
        try:
            reply = self._http.console(route, action, body, create=True)
        except AmbiguousCreate as unknown:
            found = find()  # the answer was lost: the name finds what it made
            if found is None:
                raise unknown.error from None
            return found, False
        except PlatformStatusError as refused:
            taken = refused.status == 409 or _says_name_taken(refused.code)
            found = find() if taken else None
            if found is None:
                raise
            return found, False
        return self._parse(reply, parse, reply.body["result"]), True

    def _upload_model(self, folder: model_import.ModelFolder) -> None:
        with BosClient(self.settings, transport=self._transport) as bos:
            bucket = bos.bos.bucket
            for item in folder.files:
                key = folder.object_path + item.relative
                data = read_regular(item.path, model_import.MAX_OBJECT_BYTES)
                there = bos.head_object(bucket, key)
                if there is None or there.etag != hashlib.md5(data, usedforsecurity=False).hexdigest():
                    bos.put_object(bucket, key, data)

    def _model_set_named(self, name: str) -> str | None:
        def sets(result: Any) -> tuple[list[Mapping[str, Any]], str | None]:
            return wire.page_items(result, wire.MODEL_SETS_FIELD, LIST_PAGE_SIZE)

        for reply, item in self._every_item(wire.MODEL_ROUTE, wire.MODEL_SETS_LIST, _page_body, sets, name):
            set_id, set_name = self._parse(reply, wire.model_set_name, item, "result.customModelSetList[]")
            if set_name == name:
                return set_id
        return None

    def _imported_version(self, model_set: str, description: str) -> ModelVersion | None:
        """The version of ``model_set`` whose description names this content, if one was made before."""

        def sets(result: Any) -> tuple[list[Mapping[str, Any]], str | None]:
            return wire.page_items(result, wire.MODEL_SETS_FIELD, LIST_PAGE_SIZE)

        for reply, item in self._every_item(
            wire.MODEL_ROUTE, wire.MODEL_SETS_LIST, _page_body, sets, "an imported version"
        ):
            set_id, _ = self._parse(reply, wire.model_set_name, item, "result.customModelSetList[]")
            if set_id != model_set:
                continue
            for version_id in self._parse(
                reply, wire.model_set_version_ids, item, "result.customModelSetList[]"
            ):
                version = self.describe_model_version(version_id)
                if version.details.get("description") == description:
                    return version
        return None

    def _until_ready(self, version: ModelVersion, sleep: Callable[[float], None]) -> ModelVersion:
        """``version`` once its DescribeModel status is Ready [M2]; Fail, or Creating for longer than
        IMPORT_WAIT_LIMIT_S, is an error that names it."""
        waited, pause = 0.0, IMPORT_POLL_S[0]
        while True:
            status = str(version.details.get("status") or wire.MODEL_STATUS_READY)
            if status == wire.MODEL_STATUS_READY:
                return version
            if status != "Creating" or waited >= IMPORT_WAIT_LIMIT_S:
                how = "failed" if status != "Creating" else f"is still {status} after {waited:.0f} s"
                raise PlatformStatusError(
                    f"the import of model version {version.version_id} {how}; see it in the console",
                    platform=self.display_name,
                )
            sleep(pause)
            waited += pause
            pause = min(pause * 2, IMPORT_POLL_S[1])
            version = self.describe_model_version(version.version_id)

    def ensure_dataset(self, *, name: str, path: str, sha256: str, version: bool = True) -> Dataset:
        """Upload a local JSONL file: to BOS as batch inference's input on both platforms [B2], and as a
        dataset version for evaluation and fine-tuning: on the local platform with ImportLocalDataset
        (local-only, one request, made always: its batch inference reads the reference answers from it),
        on Qianfan through BOS and its dataset management [D1][D5] only when ``version`` is asked for."""
        content = self._read_dataset(path, sha256)
        with BosClient(self.settings, transport=self._transport) as bos:
            batch_input, rows = bos.upload_batch_input(content, sha256, where=path)
        if self.settings.kind != "local" and not version:
            return Dataset(dataset_id="", name=name, rows=rows, sha256=sha256, batch_input_uri=batch_input)
        if self.settings.kind != "local":
            dataset = self.import_dataset_through_bos(name=name, path=path, content=content, sha256=sha256)
            return replace(dataset, batch_input_uri=batch_input)
        body = {"name": name, "sha256": sha256, "content": content}
        reply = self._http.console("dataset", "ImportLocalDataset", body)
        dataset = self._parse(reply, wire.dataset, reply.body["result"])
        return replace(dataset, batch_input_uri=batch_input)

    def _read_dataset(self, path: str, sha256: str) -> str:
        """The file's text, once; a file that is not a bounded regular file, or changed since the plan hashed
        it, is an error that names it."""
        try:
            # a regular file of bounded size only: validate checked it, but it may have changed since
            content = read_regular(Path(path), MAX_DATASET_BYTES).decode("utf-8")
        except PathRefused as exc:
            raise PlatformStatusError(
                f"the dataset file {path} cannot be read for upload: {str(exc).rstrip('.')}",
                platform=self.display_name,
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PlatformStatusError(
                f"the dataset file {path} cannot be read for upload: {exc}", platform=self.display_name
            ) from None
        actual = content_hash.of_text(content)
        if actual != sha256:
            raise PlatformStatusError(
                f"the dataset file {path} changed while qfrun read it (sha256 {actual}, not {sha256}); "
                "run again",
                platform=self.display_name,
            )
        return content

    def import_dataset_through_bos(self, *, name: str, path: str, content: str, sha256: str) -> Dataset:
        """The file as a version of a console dataset, made exactly once (runner.platform.dataset_import):
        its rows in the PromptResponse layout put in BOS under the file's sha256; the dataset named after
        the content found (DescribeDatasets) or created (CreateDataset [D1]); its version imported from the
        BOS file (CreateImportTask [D5]) unless an import already ran or runs; and waited for until
        ImportFinished [D6]."""
        try:
            prepared = dataset_import.prepare(content, sha256, path)
        except PlatformError as problem:
            raise PlatformStatusError(str(problem), platform=self.display_name) from None
        with BosClient(self.settings, transport=self._transport) as bos:
            bos_file = bos.put_once(prepared.key, prepared.data, what=f"{path} in Qianfan's dataset layout")
        title = dataset_import.dataset_name(name, sha256)
        found = self._console_dataset(title)
        dataset_id, version_id, made = (*found, False) if found else self._create_console_dataset(title)
        # A dataset made just now has had nothing imported; one found may have (three filtered lists say).
        status = dataset_import.CREATED if made else self._import_status(dataset_id, version_id)
        if status == dataset_import.CREATED:
            body = dataset_import.import_body(version_id, bos_file)
            try:
                reply = self._http.console(
                    dataset_import.ROUTE, dataset_import.CREATE_IMPORT, body, create=True
                )
            except AmbiguousCreate as unknown:
                # A second import would add the rows twice: only a version that still says Created is retried
                # on the next run, and this one stops here.
                if self._import_status(dataset_id, version_id) == dataset_import.CREATED:
                    raise unknown.error from None
            else:
                task_id = self._parse(reply, dataset_import.import_task_id, reply.body["result"])
                self._until_imported(version_id, task_id, self._http.pause)
                return self._imported(version_id, title, prepared)
        self._until_imported(version_id, "", self._http.pause, dataset_id=dataset_id)
        return self._imported(version_id, title, prepared)

    def _imported(self, version_id: str, title: str, prepared: dataset_import.PreparedFile) -> Dataset:
        return Dataset(dataset_id=version_id, name=title, rows=prepared.rows, sha256=prepared.sha256)

    def _console_dataset(self, title: str) -> tuple[str, str] | None:
        """The dataset named exactly ``title`` and its first version, if one was made before."""

        def datasets(result: Any) -> tuple[list[Mapping[str, Any]], str | None]:
            return dataset_import.list_page(result, dataset_import.DATASETS_FIELD, LIST_PAGE_SIZE)

        for reply, item in self._every_item(
            dataset_import.ROUTE,
            dataset_import.LIST_DATASETS,
            lambda marker: dataset_import.find_body(title, marker, LIST_PAGE_SIZE),
            datasets,
            f"the dataset {title}",
        ):
            dataset_id, listed = self._parse(reply, dataset_import.named, item)
            if listed == title:
                versions = self._versions(dataset_id, None)
                if not versions:
                    raise PlatformStatusError(
                        f"the dataset {title} ({dataset_id}) has no version; delete it in Qianfan's console "
                        "and run again",
                        platform=self.display_name,
                    )
                return dataset_id, versions[0]
        return None

    def _create_console_dataset(self, title: str) -> tuple[str, str, bool]:
        """CreateDataset [D1]: its dataset and version ids, and whether this call made it (one found by its
        name after a lost answer or a 409 may have been imported into already)."""
        (dataset_id, version_id), made = self._create_named(
            dataset_import.ROUTE,
            dataset_import.CREATE_DATASET,
            dataset_import.create_body(title),
            dataset_import.created,
            lambda: self._console_dataset(title),
        )
        return dataset_id, version_id, made

    def _versions(self, dataset_id: str, status: str | None) -> list[str]:
        """The ids of the dataset's versions, of those whose import is in ``status`` when one is named."""

        def versions(result: Any) -> tuple[list[Mapping[str, Any]], str | None]:
            return dataset_import.list_page(result, dataset_import.VERSIONS_FIELD, LIST_PAGE_SIZE)

        return [
            self._parse(reply, dataset_import.version_id_of, item)
            for reply, item in self._every_item(
                dataset_import.ROUTE,
                dataset_import.LIST_VERSIONS,
                lambda marker: dataset_import.versions_body(
                    dataset_id, status or dataset_import.CREATED, marker, LIST_PAGE_SIZE
                ),
                versions,
                f"the versions of {dataset_id}",
            )
        ]

    def _import_status(self, dataset_id: str, version_id: str) -> str:
        """The version's import status, from the documented ``importStatusList`` filter [D4]: a version no
        filter lists has had nothing imported (Created)."""
        for status in (
            dataset_import.IMPORT_FINISHED,
            dataset_import.IMPORTING,
            dataset_import.IMPORT_FAILED,
        ):
            if version_id in self._versions(dataset_id, status):
                return status
        return dataset_import.CREATED

    def _until_imported(
        self, version_id: str, task_id: str, sleep: Callable[[float], None], *, dataset_id: str = ""
    ) -> None:
        """Wait until the import is ImportFinished: through DescribeImportTask [D6] when this run made the
        task, else through the version's status (an earlier run made it and its id was not kept)."""
        waited, pause = 0.0, IMPORT_POLL_S[0]
        while True:
            if task_id:
                reply = self._http.console(
                    dataset_import.ROUTE, dataset_import.DESCRIBE_IMPORT, {"taskId": task_id}
                )
                task = self._parse(reply, dataset_import.import_task, reply.body["result"])
            else:
                status = self._import_status(dataset_id, version_id)
                task = dataset_import.ImportTask(status, None, "", "")
            if task.status == dataset_import.IMPORT_FINISHED:
                return
            if task.status == dataset_import.IMPORT_FAILED:
                why = f": {task.message}" if task.message else ""
                errors = f"; the failed lines are listed at {task.error_url}" if task.error_url else ""
                raise PlatformStatusError(
                    f"the import into dataset version {version_id} failed{why}{errors}; fix the file (a new "
                    "content makes a new dataset) or delete the dataset in Qianfan's console and run again",
                    platform=self.display_name,
                )
            if waited >= IMPORT_WAIT_LIMIT_S:
                raise PlatformStatusError(
                    f"the import into dataset version {version_id} is still {task.status} after "
                    f"{waited:.0f} s; see it in Qianfan's console",
                    platform=self.display_name,
                )
            sleep(pause)
            waited += pause
            pause = min(pause * 2, IMPORT_POLL_S[1])

    def describe_dataset(self, dataset_id: str) -> Dataset:
        reply = self._http.console("dataset", "DescribeDatasetVersion", {"versionId": dataset_id})
        return self._parse(reply, wire.dataset, reply.body["result"])

    def export_dataset(self, dataset_id: str, *, limit: int | None = None) -> str:
        """A dataset version's rows as JSONL text (local platform only; e.g. batch inference results)."""
        self._local_only("exporting a dataset's rows", "Qianfan's console to export it to BOS")
        body: dict[str, Any] = {"versionId": dataset_id}
        if limit is not None:
            body["limit"] = limit
        reply = self._http.console("dataset", "ExportDatasetVersion", body)
        content = reply.body["result"].get("content") if isinstance(reply.body["result"], Mapping) else None
        if not isinstance(content, str):
            raise self._http.protocol_error(reply, "the field 'result.content' should be a string")
        return content

    # -- tasks -----------------------------------------------------------------------------------

    def find_task(self, kind: TaskKind, name: str, within: Mapping[str, str] | None = None) -> TaskRef | None:
        """The task named ``name``, looked for on every page of the kind's list.

        Qianfan's lists filter by name fuzzily or not at all [B6][C3][E3], so the lookup pages through to the
        end and matches the name exactly; a task on page 2 is found like one on page 1. A kind created inside
        a parent (a fine-tuning task in its job [F2]) is looked for among the children of the parent that
        ``within`` names; without one, no such task was created.
        """
        if kind is TaskKind.SERVICE:
            return self._find_service(name)
        api = wire.KIND_API[kind]
        if api.parent is not None:
            parent_id = (within or {}).get(api.parent.param)
            return self._find_child(kind, name, parent_id) if parent_id else None
        # DescribeEvalTasks lists automatic or manual evaluations, never both [E3]: a manual one is looked
        # for too, or a crash before its id was recorded would create it a second time.
        fixed_sets = (
            [{**api.list_fixed, "evalType": t} for t in wire.EVAL_TYPES]
            if kind is TaskKind.EVALUATION
            else [dict(api.list_fixed)]
        )
        for fixed in fixed_sets:
            for reply, item in self._every_item(
                api.route,
                api.list,
                lambda marker, fixed=fixed: wire.list_body(  # type: ignore[misc]
                    kind, name, marker=marker, max_keys=LIST_PAGE_SIZE, fixed=fixed
                ),
                lambda result: wire.list_page(kind, result, LIST_PAGE_SIZE),
                f"the task {name}",
            ):
                if item.get(api.name_field) == name:
                    task_id = self._parse(
                        reply, wire.req_str, item, api.result_id_field, f"result.{api.list_field}[]"
                    )
                    return TaskRef(kind, task_id, name)
        return None

    def _find_child(self, kind: TaskKind, name: str, parent_id: str) -> TaskRef | None:
        """The task in the parent ``parent_id``: the one of that name where the list names its tasks (the
        local platform), else the first one, since a parent is made for one intent only."""
        api = wire.KIND_API[kind]
        assert api.parent is not None
        fixed = {**api.list_fixed, api.parent.child_filter: parent_id}
        for reply, item in self._every_item(
            api.route,
            api.list,
            lambda marker: wire.list_body(kind, name, marker=marker, max_keys=LIST_PAGE_SIZE, fixed=fixed),
            lambda result: wire.list_page(kind, result, LIST_PAGE_SIZE),
            f"the task {name}",
        ):
            if item.get(api.name_field, name) == name:
                task_id = self._parse(
                    reply, wire.req_str, item, api.result_id_field, f"result.{api.list_field}[]"
                )
                return TaskRef(kind, task_id, name)
        return None

    def prepare_task(self, request: TaskRequest) -> dict[str, str]:
        """What a task is created inside, found by the task's name or created under it: ``{param: id}`` (a
        fine-tuning job [F1]); ``{}`` for a kind created on its own. The caller records the ids before the
        task is created, so a second call for the same request finds the same parent."""
        parent = wire.KIND_API[request.kind].parent
        if parent is None:
            return {}
        api = wire.KIND_API[request.kind]

        def find() -> str | None:
            for reply, item in self._every_item(
                api.route,
                parent.list,
                _page_body,
                lambda result: wire.page_items(result, parent.list_field, LIST_PAGE_SIZE),
                f"the {parent.create.removeprefix('Create')} {request.name}",
            ):
                if item.get(parent.name_field) == request.name:
                    return self._parse(
                        reply, wire.req_str, item, parent.id_field, f"result.{parent.list_field}[]"
                    )
            return None

        body = parent.create_body(request, self.settings.kind == "local")
        found = find()
        if found is None:
            found = self._create_once(
                api.route,
                parent.create,
                body,
                find,
                lambda result: wire.req_str(wire.obj(result, "result"), parent.id_field),
                request.name,
            )
        return {parent.param: found}

    def _create_once(
        self,
        route: str,
        action: str,
        body: Mapping[str, Any],
        find: Callable[[], str | None],
        created: Callable[[Any], str],
        what: str,
    ) -> str:
        """One create whose outcome, when the answer is lost, is settled by ``find`` (a lookup by the name or
        description the create carried) before it is sent again; a taken name adopts what holds it."""
        attempt = 0
        while True:
            try:
                reply = self._http.console(route, action, dict(body), create=True)
            except AmbiguousCreate as ambiguous:
                log.warning("%s; looking %s up before creating it again.", ambiguous.error, what)
                found = find()
                if found is not None:
                    return found
                if attempt >= self.settings.max_retries:
                    raise ambiguous.error from None
                self._http.pause(self._http.backoff(attempt))
                attempt += 1
                continue
            except PlatformStatusError as refused:
                if refused.status != 409 and not _says_name_taken(refused.code):
                    raise
                found = find()
                if found is None:
                    raise
                return found
            return self._parse(reply, created, reply.body["result"])

    # -- publishing a training result ------------------------------------------------------------

    def ensure_model_set(self, name: str) -> str:
        """The id of the user's model named ``name``, created (CreateCustomModelSet [M4]) when there is none;
        matched exactly on ``modelSetName`` over every page of DescribeCustomModelSets [M3]."""
        return self._model_set_named(name) or self._create_model_set(name)

    def publish_trained(
        self, task_id: str, *, model_set_id: str, checkpoint_step: int | None = None
    ) -> ModelVersion:
        """A finished fine-tuning task as a version of ``model_set_id``: CreateCustomModel with
        ``sourceType: Train`` [M5], once per task and step. The version carries a description naming both,
        so a publish whose answer was lost, or a second publish of the same task, finds it instead."""
        description = wire.publish_description(task_id, checkpoint_step)

        def find() -> str | None:
            version = self._imported_version(model_set_id, description)
            return version.version_id if version is not None else None

        found = find()
        if found is None:
            body = wire.publish_body(
                task_id, model_set_id=model_set_id, checkpoint_step=checkpoint_step, description=description
            )
            found = self._create_once(
                wire.MODEL_ROUTE,
                wire.CREATE_MODEL_VERSION,
                body,
                find,
                wire.created_version_id,
                f"the version published from {task_id}",
            )
        return self.describe_model_version(found)

    def _every_item(
        self,
        route: str,
        action: str,
        body: Callable[[str | None], dict[str, Any]],
        page: Callable[[Any], tuple[list[Mapping[str, Any]], str | None]],
        looking_for: str,
    ) -> Iterator[tuple[Reply, Mapping[str, Any]]]:
        """Every item of a list action, page by page to the last; past ``MAX_LIST_PAGES`` pages an error,
        rather than a lookup that stops early and lets a create run twice."""
        marker: str | None = None
        for _ in range(MAX_LIST_PAGES):
            reply = self._http.console(route, action, body(marker))
            items, next_marker = self._parse(reply, page, reply.body["result"])
            for item in items:
                yield reply, item
            if not next_marker or next_marker == marker:
                return
            marker = next_marker
        raise PlatformStatusError(
            f"the {action} list has more than {MAX_LIST_PAGES * LIST_PAGE_SIZE} entries; qfrun stops "
            f"looking for {looking_for} there rather than risk creating it twice",
            platform=self.display_name,
        )

    def create_task(self, request: TaskRequest) -> TaskRef:
        api = wire.KIND_API[request.kind]
        model_set_id = ""
        if api.needs_model_set:
            model_set_id = self.describe_model_version(str(request.params["model_version_id"])).model_id
        if request.kind is TaskKind.BATCH_INFERENCE and request.params.get("input_bos_uri"):
            if not request.params.get("output_bos_uri"):
                output = batch_output_folder(self.settings)  # no request: the folder comes from settings
                request = replace(request, params={**request.params, "output_bos_uri": output})
        body = wire.create_body(request, model_set_id=model_set_id, local=self.settings.kind == "local")
        attempt = 0
        waited = 0.0
        while True:
            try:
                reply = self._http.console(api.route, api.create, body, create=True)
            except PlatformQueueFull as full:
                if waited >= QUEUE_WAIT_LIMIT_S:
                    raise
                log.warning(
                    "waiting: %s; qfrun tries to create %s again in %.0f s.", full, request.name, QUEUE_WAIT_S
                )
                self._http.pause(QUEUE_WAIT_S)
                waited += QUEUE_WAIT_S
                continue
            except AmbiguousCreate as ambiguous:
                log.warning(
                    "%s; looking the task up by its name %s before creating it again.",
                    ambiguous.error,
                    request.name,
                )
                found = self.find_task(request.kind, request.name)
                if found is not None:
                    return found
                if attempt >= self.settings.max_retries:
                    raise ambiguous.error from None
                self._http.pause(self._http.backoff(attempt))
                attempt += 1
                continue
            except PlatformStatusError as refused:
                adopted = self._adopt_on_conflict(refused, request)
                if adopted is None:
                    raise
                return adopted
            task_id = self._parse(reply, wire.created_id, request.kind, reply.body["result"])
            instance = ""
            if request.kind is TaskKind.SERVICE:
                instance = self._parse(reply, wire.service_instance_id, reply.body["result"])
            return TaskRef(request.kind, task_id, request.name, instance)

    def _adopt_on_conflict(self, refused: PlatformStatusError, request: TaskRequest) -> TaskRef | None:
        """A create refused because the name is taken names the task to adopt: qfrun's names are
        deterministic digests of the stage's intent, so a task of that name is the one this create wanted."""
        if refused.status != 409 and not _says_name_taken(refused.code):
            return None
        found = self.find_task(request.kind, request.name)
        if found is not None:
            log.warning("%s; adopting the task %s of that name.", refused, found.task_id)
        return found

    def describe_task(self, ref: TaskRef) -> TaskInfo:
        api = wire.KIND_API[ref.kind]
        reply = self._http.console(api.route, api.describe, {api.request_id_field: ref.task_id})
        result = reply.body["result"]
        status = self._parse(reply, lambda: wire.status_of(ref.kind, wire.obj(result, "result")))
        if api.report_action and status is TaskStatus.SUCCEEDED:
            report = self._http.console(api.route, api.report_action, {"taskId": ref.task_id})
            return self._parse(report, wire.task_info, ref.kind, ref, result, report.body["result"])
        return self._parse(reply, wire.task_info, ref.kind, ref, result)

    def cancel_task(self, ref: TaskRef) -> None:
        """Stop a task: StopBatchInferenceTask answers a bool [B7], StopEvalTask ``{}`` [E5] and
        CancelModelCompTask no ``result`` at all [C4]."""
        if ref.kind is TaskKind.SERVICE:
            self._release_service(ref)
            return
        api = wire.KIND_API[ref.kind]
        reply = self._http.console(
            api.route, api.cancel, {api.request_id_field: ref.task_id}, result_required=False
        )
        if reply.body.get("result") is False:
            raise PlatformStatusError(
                f"{api.cancel} answered false for the task {ref.task_id}: the platform did not stop it",
                platform=self.display_name,
            )

    # -- services --------------------------------------------------------------------------------

    def _find_service(self, intent: str) -> TaskRef | None:
        """The service created for ``intent``: paged to the end, matched exactly on its description.

        A service's ``name`` is the user's and DescribeServices filters names fuzzily [S3], so the intent
        key in ``description`` is what identifies it; a list item without a description is described.
        """
        api = wire.KIND_API[TaskKind.SERVICE]
        wanted = wire.service_description(intent)

        for reply, item in self._every_item(
            api.route, api.list, _page_body, wire.service_items, f"the service of {intent}"
        ):
            service_id = self._parse(reply, wire.req_str, item, api.result_id_field, "result.serviceList[]")
            if "description" not in item:
                detail = self._http.console(api.route, api.describe, {api.request_id_field: service_id})
                item = self._parse(detail, wire.obj, detail.body["result"], "result")
            if item.get("description") == wanted:
                instance = self._parse(reply, wire.opt_str, item, "instanceId", "result.serviceList[]")
                return TaskRef(TaskKind.SERVICE, service_id, intent, instance)
        return None

    # -- refresh ---------------------------------------------------------------------------------

    def list_services(self, service_ids: Collection[str]) -> dict[str, ServiceState]:
        """The state of each of ``service_ids`` from one paged DescribeServices [S3].

        A service the list does not name, or names without a ``runStatus`` (the list's item fields are not
        captured [S3]), is described once: only a DescribeService that answers "not found" makes it gone, so
        a list that leaves a service out (another ``protocolVersion``, say) never has it deployed twice.
        """
        wanted = set(service_ids)
        if not wanted:
            return {}
        api = wire.KIND_API[TaskKind.SERVICE]
        found: dict[str, ServiceState] = {}
        for reply, item in self._every_item(
            api.route, api.list, _page_body, wire.service_items, "the recorded services"
        ):
            service_id = self._parse(reply, wire.req_str, item, api.result_id_field, "result.serviceList[]")
            if service_id in wanted:
                state = self._parse(reply, wire.service_state, item, "result.serviceList[]")
                if state is not None:
                    found[service_id] = state
        for service_id in sorted(wanted - set(found)):
            try:
                reply = self._http.console(api.route, api.describe, {api.request_id_field: service_id})
            except PlatformNotFound:
                continue  # gone: released and forgotten, or deleted in the console
            state = self._parse(reply, wire.service_state, wire.obj(reply.body["result"], "result"), "result")
            if state is None:
                raise self._http.protocol_error(reply, "the field 'result.runStatus' is missing")
            found[service_id] = state
        return found

    def list_model_versions(self, version_ids: Collection[str]) -> frozenset[str]:
        """Which of ``version_ids`` still exist, from one paged DescribeCustomModelSets (each model lists its
        version ids [M3]); a version it does not list is described once, and only "not found" makes it
        deleted (a preset model, say, is no custom model but exists)."""
        wanted = set(version_ids)
        if not wanted:
            return frozenset()
        present: set[str] = set()

        def versions(result: Any) -> tuple[list[Mapping[str, Any]], str | None]:
            return wire.page_items(result, wire.MODEL_SETS_FIELD, LIST_PAGE_SIZE)

        for reply, item in self._every_item(
            wire.MODEL_ROUTE, wire.MODEL_SETS_LIST, _page_body, versions, "the recorded model versions"
        ):
            listed = self._parse(reply, wire.model_set_version_ids, item, "result.customModelSetList[]")
            present.update(wanted.intersection(listed))
        for version_id in sorted(wanted - present):
            try:
                self.describe_model_version(version_id)
            except PlatformNotFound:
                continue
            present.add(version_id)
        return frozenset(present)

    def _release_service(self, ref: TaskRef) -> None:
        """ReleaseComputeUnit [S5]; the instance id comes from the create, else from DescribeService."""
        if not ref.instance_id:
            info = self.describe_task(ref)
            instance = str(info.result.get("instance_id") or "") if info.result else ""
            if not instance:
                raise PlatformStatusError(
                    f"the service {ref.task_id} cannot be released: the platform did not say which compute "
                    "instance it runs on; release it in Qianfan's console",
                    platform=self.display_name,
                )
            ref = TaskRef(ref.kind, ref.task_id, ref.name, instance)
        action = wire.KIND_API[TaskKind.SERVICE].cancel
        reply = self._http.console(wire.SERVICE_RELEASE_ROUTE, action, wire.release_body(ref))
        self._parse(reply, wire.released, reply.body["result"])

    # -- manual evaluation -------------------------------------------------------------------------

    def manual_samples(self, ref: TaskRef) -> list[ManualSample] | None:
        """On the local platform, the answers to score (``DescribeEvalManualSamples``, local-only); on
        Qianfan None: people score in its console, which no documented action reads back."""
        if self.settings.kind != "local":
            return None
        reply = self._http.console(
            wire.KIND_API[TaskKind.EVALUATION].route, wire.EVAL_MANUAL_SAMPLES_ACTION, {"taskId": ref.task_id}
        )
        return self._parse(reply, wire.manual_samples, reply.body["result"])

    def submit_manual_scores(self, ref: TaskRef, scores: Sequence[ManualScore]) -> None:
        self._local_only(
            "handing scores to an evaluation through the API", "nothing: people score in its console"
        )
        self._http.console(
            wire.KIND_API[TaskKind.EVALUATION].route,
            wire.EVAL_MANUAL_SCORES_ACTION,
            wire.manual_scores_body(ref.task_id, scores),
            result_required=False,
        )

    def eval_samples(
        self,
        ref: TaskRef,
        limit: int,
        export_id: str = "",
        on_export: Callable[[str], None] | None = None,
    ) -> list[SampleRecord] | None:
        """The task's records through Qianfan's result export [E14], on both platforms: the export
        ``export_id`` when it is still there and has not failed (a crash does not start a second one), else a
        new one whose id goes to ``on_export`` at once; then polled until Succeeded, its file read back
        within ``MAX_EXPORT_BYTES`` and parsed (runner.platform.eval_export_file)."""
        route = wire.KIND_API[TaskKind.EVALUATION].route
        export = self._known_export(route, export_id) if export_id else None
        if export is None:
            try:
                reply = self._http.console(
                    route, wire.EXPORT_CREATE_ACTION, wire.export_body(ref.task_id), create=True
                )
            except AmbiguousCreate as unknown:
                # No documented action lists exports, so one this create may have made cannot be found
                # again; an export is a file in the platform's storage, not a paid resource.
                raise unknown.error from None
            created = self._parse(reply, wire.export_created, reply.body["result"])
            if on_export is not None:
                on_export(created)
            export = self._describe_export(route, created)
        waited = 0.0
        while not export.succeeded:
            if export.failed:
                raise PlatformStatusError(
                    f"the result export {export.task_id} of evaluation {ref.task_id} failed",
                    platform=self.display_name,
                )
            if waited >= EXPORT_WAIT_S:
                raise PlatformStatusError(
                    f"the result export {export.task_id} of evaluation {ref.task_id} is still "
                    f"{export.state} after {EXPORT_WAIT_S:.0f} s; a resumed run reads the same export",
                    platform=self.display_name,
                )
            self._http.pause(EXPORT_POLL_S)
            waited += EXPORT_POLL_S
            export = self._describe_export(route, export.task_id)
        try:
            return read_export(self._export_file(export), limit)
        except ExportFileError as error:
            raise PlatformStatusError(
                f"the result export {export.task_id}: {error}", platform=self.display_name
            ) from None

    def _known_export(self, route: str, export_id: str) -> wire.ExportTask | None:
        """The recorded export, unless the platform no longer has it, refuses to describe it (an id it
        does not know may be a 400 rather than a 404) or it failed: then a new one is made (exports are
        free)."""
        try:
            export = self._describe_export(route, export_id)
        except (PlatformNotFound, PlatformStatusError):
            return None
        return None if export.failed else export

    def _describe_export(self, route: str, export_id: str) -> wire.ExportTask:
        reply = self._http.console(route, wire.EXPORT_DESCRIBE_ACTION, {"taskId": export_id})
        return self._parse(reply, wire.export_task, reply.body["result"])

    def _export_file(self, export: wire.ExportTask) -> bytes:
        """The export's bytes: from ``downloadUrl`` (sysStorage), else the BOS object at its path."""
        if export.download_url:
            return download(self.settings, export.download_url, MAX_EXPORT_BYTES, transport=self._transport)
        bucket, _, key = export.storage_path.removeprefix("bos://").removeprefix("bos:/").partition("/")
        if not bucket or not key:
            raise PlatformStatusError(
                f"the result export {export.task_id} names neither a download link nor a BOS object",
                platform=self.display_name,
            )
        with BosClient(self.settings, transport=self._transport) as bos:
            if key.endswith("/"):  # a folder: the one file written into it
                files = [item for item in bos.list_objects(bucket, key) if not item.key.endswith("/")]
                if len(files) != 1:
                    raise PlatformStatusError(
                        f"the result export's folder bos:/{bucket}/{key} holds {len(files)} files, not one",
                        platform=self.display_name,
                    )
                key, size = files[0].key, files[0].size
            else:
                head = bos.head_object(bucket, key)
                if head is None:
                    raise PlatformNotFound(
                        f"the result export's file bos:/{bucket}/{key} does not exist",
                        platform=self.display_name,
                    )
                size = head.size
            if size > MAX_EXPORT_BYTES:
                raise PlatformStatusError(
                    f"the result export's file bos:/{bucket}/{key} holds {size} bytes, more than qfrun "
                    f"reads back ({MAX_EXPORT_BYTES})",
                    platform=self.display_name,
                )
            return bos.get_object(bucket, key)

    def manual_scoring_place(self, ref: TaskRef) -> str:
        if self.settings.kind == "local":
            return f"the scoring sheet qfrun exports for evaluation task {ref.task_id}"
        return f"Qianfan's console (模型评估, evaluation task {ref.task_id}) at {QIANFAN_CONSOLE}"

    def batch_results(self, output_bos_uri: str, output_dir: str) -> list[dict[str, Any]] | None:
        """Every line of every output file in the task's folder, in key order; None past
        ``MAX_RESULTS_BYTES`` (the results stay in BOS, where the stage's outputs point)."""
        bucket, _, prefix = output_bos_uri.removeprefix("bos://").removeprefix("bos:/").partition("/")
        folder = f"{prefix.rstrip('/')}/{output_dir}/" if prefix.strip("/") else f"{output_dir}/"
        rows: list[dict[str, Any]] = []
        with BosClient(self.settings, transport=self._transport) as bos:
            files = [item for item in bos.list_objects(bucket, folder) if not item.key.endswith("/")]
            if sum(item.size for item in files) > MAX_RESULTS_BYTES:
                return None
            for item in sorted(files, key=lambda item: item.key):
                for number, line in enumerate(
                    bos.get_object(bucket, item.key).decode("utf-8").splitlines(), 1
                ):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except ValueError:
                        raise PlatformStatusError(
                            f"the batch output bos:/{bucket}/{item.key} line {number} is not JSON",
                            platform=self.display_name,
                        ) from None
                    rows.append(row if isinstance(row, dict) else {"value": row})
        return rows

    def chat(self, endpoint: str, messages: Sequence[ChatMessage], **params: JSON) -> ChatReply:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            **params,
        }
        reply = self._http.chat(endpoint, body)
        return self._parse(reply, wire.chat_reply, reply.body, reply.request_id)

    # -- helpers ---------------------------------------------------------------------------------

    def _local_only(self, what: str, instead: str) -> None:
        if self.settings.kind != "local":
            raise PlatformStatusError(
                f"{what} works only on the local platform; on Qianfan name {instead} in the pipeline",
                platform=self.display_name,
            )

    def _parse(self, reply: Reply, parse: Callable[..., T], *args: Any) -> T:
        try:
            return parse(*args)
        except wire.WireError as exc:
            raise self._http.protocol_error(reply, str(exc)) from None


def _page_body(marker: str | None) -> dict[str, Any]:
    """A list request that asks for the largest page, from ``marker`` (the first page without one)."""
    return {"maxKeys": LIST_PAGE_SIZE, **({"marker": marker} if marker else {})}


def _says_name_taken(code: str | int | None) -> bool:
    """Error codes that say a name is already used; the official pages document none for the task creates, so
    this reads the usual spellings (a 409 status is read the same way)."""
    text = str(code or "").lower()
    return any(word in text for word in ("duplicate", "alreadyexist", "conflict", "nameexist"))
