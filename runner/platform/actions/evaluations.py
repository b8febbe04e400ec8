"""Evaluation actions: a manual evaluation's answers and scores (local-only actions; on Qianfan people score
in its console), and an evaluation's records through its result export [E14], read back within a limit."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from runner.errors import PlatformNotFound, PlatformStatusError
from runner.platform import polling, wire
from runner.platform.actions.session import Session
from runner.platform.eval_export_file import ExportFileError, read_export
from runner.platform.export_download import download
from runner.platform.http import AmbiguousCreate
from runner.platform.protocol import ManualSample, ManualScore, SampleRecord, TaskKind, TaskRef

MAX_EXPORT_BYTES = 128 * 1024 * 1024  # a result export read back (zipped); larger ones stay where they are
# Where people score a manual evaluation on Qianfan: its console's model evaluation pages (模型评估).
QIANFAN_CONSOLE = "https://console.bce.baidu.com/qianfan/"


class EvaluationActions:
    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def _route(self) -> str:
        return wire.KIND_API[TaskKind.EVALUATION].route

    def manual_samples(self, ref: TaskRef) -> list[ManualSample] | None:
        """On the local platform, the answers to score (``DescribeEvalManualSamples``, local-only); on
        Qianfan None: people score in its console, which no documented action reads back."""
        if not self._session.local:
            return None
        reply = self._session.http.console(
            self._route, wire.EVAL_MANUAL_SAMPLES_ACTION, {"taskId": ref.task_id}
        )
        return self._session.parse(reply, wire.manual_samples, reply.body["result"])

    def submit_manual_scores(self, ref: TaskRef, scores: Sequence[ManualScore]) -> None:
        self._session.local_only(
            "handing scores to an evaluation through the API", "nothing: people score in its console"
        )
        self._session.http.console(
            self._route,
            wire.EVAL_MANUAL_SCORES_ACTION,
            wire.manual_scores_body(ref.task_id, scores),
            result_required=False,
        )

    def manual_scoring_place(self, ref: TaskRef) -> str:
        if self._session.local:
            return f"the scoring sheet qfrun exports for evaluation task {ref.task_id}"
        return f"Qianfan's console (模型评估, evaluation task {ref.task_id}) at {QIANFAN_CONSOLE}"

    def samples(
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
        session = self._session
        export = self._known_export(export_id) if export_id else None
        if export is None:
            try:
                reply = session.http.console(
                    self._route, wire.EXPORT_CREATE_ACTION, wire.export_body(ref.task_id), create=True
                )
            except AmbiguousCreate as unknown:
                # No documented action lists exports, so one this create may have made cannot be found
                # again; an export is a file in the platform's storage, not a paid resource.
                raise unknown.error from None
            created = session.parse(reply, wire.export_created, reply.body["result"])
            if on_export is not None:
                on_export(created)
            export = self._describe_export(created)

        def succeeded(answer: wire.ExportTask) -> bool:
            if answer.failed:
                raise session.refused(
                    f"the result export {answer.task_id} of evaluation {ref.task_id} failed"
                )
            return answer.succeeded

        def timed_out(answer: wire.ExportTask, waited: float) -> Exception:
            return session.refused(
                f"the result export {answer.task_id} of evaluation {ref.task_id} is still "
                f"{answer.state} after {polling.EXPORT_WAIT_S:.0f} s; a resumed run reads the same export"
            )

        wait = polling.Wait(
            session.http.pause, polling.Schedule(polling.EXPORT_POLL_S), limit_s=polling.EXPORT_WAIT_S
        )
        task_id = export.task_id
        export = polling.poll(
            lambda: self._describe_export(task_id), succeeded, wait, timed_out, first=export
        )
        try:
            return read_export(self._export_file(export), limit)
        except ExportFileError as error:
            raise session.refused(f"the result export {export.task_id}: {error}") from None

    def _known_export(self, export_id: str) -> wire.ExportTask | None:
        """The recorded export, unless the platform no longer has it, refuses to describe it (an id it
        does not know may be a 400 rather than a 404) or it failed: then a new one is made (exports are
        free)."""
        try:
            export = self._describe_export(export_id)
        except (PlatformNotFound, PlatformStatusError):
            return None
        return None if export.failed else export

    def _describe_export(self, export_id: str) -> wire.ExportTask:
        reply = self._session.http.console(self._route, wire.EXPORT_DESCRIBE_ACTION, {"taskId": export_id})
        return self._session.parse(reply, wire.export_task, reply.body["result"])

    def _export_file(self, export: wire.ExportTask) -> bytes:
        """The export's bytes: from ``downloadUrl`` (sysStorage), else the BOS object at its path."""
        session = self._session
        if export.download_url:
            return download(
                session.settings, export.download_url, MAX_EXPORT_BYTES, transport=session.transport
            )
        bucket, _, key = export.storage_path.removeprefix("bos://").removeprefix("bos:/").partition("/")
        if not bucket or not key:
            raise session.refused(
                f"the result export {export.task_id} names neither a download link nor a BOS object"
            )
        with session.bos() as bos:
            if key.endswith("/"):  # a folder: the one file written into it
                files = [item for item in bos.list_objects(bucket, key) if not item.key.endswith("/")]
                if len(files) != 1:
                    raise session.refused(
                        f"the result export's folder bos:/{bucket}/{key} holds {len(files)} files, not one"
                    )
                key, size = files[0].key, files[0].size
            else:
                head = bos.head_object(bucket, key)
                if head is None:
                    raise PlatformNotFound(
                        f"the result export's file bos:/{bucket}/{key} does not exist",
                        platform=session.display_name,
                    )
                size = head.size
            if size > MAX_EXPORT_BYTES:
                raise session.refused(
                    f"the result export's file bos:/{bucket}/{key} holds {size} bytes, more than qfrun "
                    f"reads back ({MAX_EXPORT_BYTES})"
                )
            return bos.get_object(bucket, key)
