"""Dataset actions: a pipeline's JSONL file uploaded as batch inference's input [B2] and as a dataset
version for evaluation and fine-tuning (the local platform's ImportLocalDataset; on Qianfan its dataset
management [D1][D5], made exactly once: runner.platform.dataset_import), and reading a version back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner import content_hash
from runner.errors import PlatformError
from runner.files import MAX_DATASET_BYTES, PathRefused, read_regular
from runner.platform import dataset_import, polling, wire
from runner.platform.actions.creates import create_named
from runner.platform.actions.session import Session
from runner.platform.http import AmbiguousCreate
from runner.platform.protocol import Dataset


class DatasetActions:
    def __init__(self, session: Session) -> None:
        self._session = session

    def ensure(self, *, name: str, path: str, sha256: str, version: bool = True) -> Dataset:
        """Upload a local JSONL file: to BOS as batch inference's input on both platforms [B2], and as a
        dataset version for evaluation and fine-tuning: on the local platform with ImportLocalDataset
        (local-only, one request, made always: its batch inference reads the reference answers from it),
        on Qianfan through BOS and its dataset management [D1][D5] only when ``version`` is asked for."""
        session = self._session
        content = self._read(path, sha256)
        with session.bos() as bos:
            batch_input, rows = bos.upload_batch_input(content, sha256, where=path)
        if not session.local and not version:
            return Dataset(dataset_id="", name=name, rows=rows, sha256=sha256, batch_input_uri=batch_input)
        if not session.local:
            dataset = self.import_through_bos(name=name, path=path, content=content, sha256=sha256)
            return replace(dataset, batch_input_uri=batch_input)
        body = {"name": name, "sha256": sha256, "content": content}
        reply = session.http.console("dataset", "ImportLocalDataset", body)
        dataset = session.parse(reply, wire.dataset, reply.body["result"])
        return replace(dataset, batch_input_uri=batch_input)

    def _read(self, path: str, sha256: str) -> str:
        """The file's text, once; a file that is not a bounded regular file, or changed since the plan hashed
        it, is an error that names it."""
        try:
            # a regular file of bounded size only: validate checked it, but it may have changed since
            content = read_regular(Path(path), MAX_DATASET_BYTES).decode("utf-8")
        except PathRefused as exc:
            raise self._session.refused(
                f"the dataset file {path} cannot be read for upload: {str(exc).rstrip('.')}"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise self._session.refused(f"the dataset file {path} cannot be read for upload: {exc}") from None
        actual = content_hash.of_text(content)
        if actual != sha256:
            raise self._session.refused(
                f"the dataset file {path} changed while qfrun read it (sha256 {actual}, not {sha256}); "
                "run again"
            )
        return content

    def import_through_bos(self, *, name: str, path: str, content: str, sha256: str) -> Dataset:
        """The file as a version of a console dataset, made exactly once (runner.platform.dataset_import):
        its rows in the PromptResponse layout put in BOS under the file's sha256; the dataset named after
        the content found (DescribeDatasets) or created (CreateDataset [D1]); its version imported from the
        BOS file (CreateImportTask [D5]) unless an import already ran or runs; and waited for until
        ImportFinished [D6]."""
        session = self._session
        try:
            prepared = dataset_import.prepare(content, sha256, path)
        except PlatformError as problem:
            raise session.refused(str(problem)) from None
        with session.bos() as bos:
            bos_file = bos.put_once(prepared.key, prepared.data, what=f"{path} in Qianfan's dataset layout")
        title = dataset_import.dataset_name(name, sha256)
        found = self._console_dataset(title)
        dataset_id, version_id, made = (*found, False) if found else self._create_console_dataset(title)
        imported = Dataset(dataset_id=version_id, name=title, rows=prepared.rows, sha256=prepared.sha256)
        # A dataset made just now has had nothing imported; one found may have (three filtered lists say).
        status = dataset_import.CREATED if made else self._import_status(dataset_id, version_id)
        if status == dataset_import.CREATED:
            body = dataset_import.import_body(version_id, bos_file)
            try:
                reply = session.http.console(
                    dataset_import.ROUTE, dataset_import.CREATE_IMPORT, body, create=True
                )
            except AmbiguousCreate as unknown:
                # A second import would add the rows twice: only a version that still says Created is retried
                # on the next run, and this one stops here.
                if self._import_status(dataset_id, version_id) == dataset_import.CREATED:
                    raise unknown.error from None
            else:
                task_id = session.parse(reply, dataset_import.import_task_id, reply.body["result"])
                self.until_imported(version_id, task_id)
                return imported
        self.until_imported(version_id, "", dataset_id=dataset_id)
        return imported

    def _console_dataset(self, title: str) -> tuple[str, str] | None:
        """The dataset named exactly ``title`` and its first version, if one was made before."""
        for reply, item in self._session.every_item(
            dataset_import.ROUTE,
            dataset_import.LIST_DATASETS,
            lambda marker, size: dataset_import.find_body(title, marker, size),
            lambda result, size: dataset_import.list_page(result, dataset_import.DATASETS_FIELD, size),
            f"the dataset {title}",
        ):
            dataset_id, listed = self._session.parse(reply, dataset_import.named, item)
            if listed == title:
                versions = self._versions(dataset_id, None)
                if not versions:
                    raise self._session.refused(
                        f"the dataset {title} ({dataset_id}) has no version; delete it in Qianfan's console "
                        "and run again"
                    )
                return dataset_id, versions[0]
        return None

    def _create_console_dataset(self, title: str) -> tuple[str, str, bool]:
        """CreateDataset [D1]: its dataset and version ids, and whether this call made it (one found by its
        name after a lost answer or a 409 may have been imported into already)."""
        (dataset_id, version_id), made = create_named(
            self._session,
            dataset_import.ROUTE,
            dataset_import.CREATE_DATASET,
            dataset_import.create_body(title),
            dataset_import.created,
            lambda: self._console_dataset(title),
        )
        return dataset_id, version_id, made

    def _versions(self, dataset_id: str, status: str | None) -> list[str]:
        """The ids of the dataset's versions, of those whose import is in ``status`` when one is named."""
        return [
            self._session.parse(reply, dataset_import.version_id_of, item)
            for reply, item in self._session.every_item(
                dataset_import.ROUTE,
                dataset_import.LIST_VERSIONS,
                lambda marker, size: dataset_import.versions_body(
                    dataset_id, status or dataset_import.CREATED, marker, size
                ),
                lambda result, size: dataset_import.list_page(result, dataset_import.VERSIONS_FIELD, size),
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

    def until_imported(self, version_id: str, task_id: str, *, dataset_id: str = "") -> None:
        """Wait until the import is ImportFinished: through DescribeImportTask [D6] when this run made the
        task, else through the version's status (an earlier run made it and its id was not kept)."""
        session = self._session

        def ask() -> dataset_import.ImportTask:
            if not task_id:
                status = self._import_status(dataset_id, version_id)
                return dataset_import.ImportTask(status, None, "", "")
            reply = session.http.console(
                dataset_import.ROUTE, dataset_import.DESCRIBE_IMPORT, {"taskId": task_id}
            )
            return session.parse(reply, dataset_import.import_task, reply.body["result"])

        def finished(task: dataset_import.ImportTask) -> bool:
            if task.status == dataset_import.IMPORT_FAILED:
                why = f": {task.message}" if task.message else ""
                errors = f"; the failed lines are listed at {task.error_url}" if task.error_url else ""
                raise session.refused(
                    f"the import into dataset version {version_id} failed{why}{errors}; fix the file (a new "
                    "content makes a new dataset) or delete the dataset in Qianfan's console and run again"
                )
            return task.status == dataset_import.IMPORT_FINISHED

        def timed_out(task: dataset_import.ImportTask, waited: float) -> Exception:
            return session.refused(
                f"the import into dataset version {version_id} is still {task.status} after "
                f"{waited:.0f} s; see it in Qianfan's console"
            )

        wait = polling.Wait(session.http.pause, polling.IMPORT_POLL, limit_s=polling.IMPORT_WAIT_LIMIT_S)
        polling.poll(ask, finished, wait, timed_out)

    def describe(self, dataset_id: str) -> Dataset:
        reply = self._session.http.console("dataset", "DescribeDatasetVersion", {"versionId": dataset_id})
        return self._session.parse(reply, wire.dataset, reply.body["result"])

    def export(self, dataset_id: str, *, limit: int | None = None) -> str:
        """A dataset version's rows as JSONL text (local platform only; e.g. batch inference results)."""
        self._session.local_only("exporting a dataset's rows", "Qianfan's console to export it to BOS")
        body: dict[str, Any] = {"versionId": dataset_id}
        if limit is not None:
            body["limit"] = limit
        reply = self._session.http.console("dataset", "ExportDatasetVersion", body)
        result = reply.body["result"]
        content = result.get("content") if isinstance(result, Mapping) else None
        if not isinstance(content, str):
            raise self._session.http.protocol_error(reply, "the field 'result.content' should be a string")
        return content
