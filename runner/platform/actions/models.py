"""Model actions: describing versions (the user's [M2] and Qianfan's preset ones [M7]), importing a local
Hugging Face folder (the local platform copies it; Qianfan imports from BOS [M5]), the user's models
(model sets [M3][M4]) and publishing a fine-tuning result as a version of one [M5]."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner.errors import PlatformError, PlatformNotFound, PlatformStatusError
from runner.files import read_regular
from runner.platform import model_import, polling, wire
from runner.platform.actions.creates import create_named, create_once
from runner.platform.actions.session import Session, page_body, page_of
from runner.platform.http import AmbiguousCreate, Reply
from runner.platform.protocol import ModelVersion

CREATING = "Creating"  # an imported version's status until it is Ready or failed [M2]


class ModelActions:
    def __init__(self, session: Session) -> None:
        self._session = session

    def describe_version(self, version_id: str) -> ModelVersion:
        """A version of the user's models [M2], or on Qianfan one of its preset models [M7]: preset versions
        (ERNIE-Speed-8K is ``amv-pzqtzdspm77m`` [B3]) are described by DescribeSystemModel, whose result has
        the same fields."""
        session = self._session
        try:
            reply = session.http.console("model", "DescribeModel", {"modelId": version_id})
        except PlatformNotFound as missing:
            if session.local:
                raise
            try:
                reply = session.http.console("model", "DescribeSystemModel", {"modelId": version_id})
            except PlatformNotFound:
                raise missing from None  # neither knows it: the user's own models are the likelier place
            version = session.parse(reply, wire.model_version, reply.body["result"])
            return replace(version, source=version.source or "platformpreset")
        return session.parse(reply, wire.model_version, reply.body["result"])

    def import_model(self, *, name: str, path: str) -> ModelVersion:
        """A local Hugging Face folder as a version of the model ``name``: the local platform copies it
        (ImportLocalModel, local-only); Qianfan imports from BOS only [M5], so there it goes through BOS."""
        if not self._session.local:
            return self.import_through_bos(name=name, path=path)
        reply = self._session.http.console("model", "ImportLocalModel", {"name": name, "path": path})
        return self._session.parse(reply, wire.model_version, reply.body["result"])

    def import_through_bos(self, *, name: str, path: str) -> ModelVersion:
        """Upload the folder under its digest (runner.platform.model_import), find or create the model
        ``name`` (CreateCustomModelSet [M4]), then find the version this content made before or create it
        (CreateCustomModel, sourceType Import [M5]), and wait until it is Ready."""
        session = self._session
        try:
            folder = model_import.read_folder(Path(path))
            self._upload(folder)
        except PlatformError as problem:
            if isinstance(problem, PlatformStatusError):
                raise
            raise session.refused(str(problem)) from None
        model_set = self.ensure_model_set(name)
        version = self._version_described(model_set, folder.description)
        if version is None:
            bucket = session.settings.bos.bucket if session.settings.bos else ""
            body = wire.import_version_body(
                model_set, bucket, folder.object_path, folder.description, folder.transformer_version
            )
            try:
                reply = session.http.console(wire.MODEL_ROUTE, wire.CREATE_MODEL_VERSION, body, create=True)
            except AmbiguousCreate as unknown:
                # The answer was lost: the description names the content, so the version is found again.
                version = self._version_described(model_set, folder.description)
                if version is None:
                    raise unknown.error from None
            else:
                version_id = session.parse(reply, wire.created_version_id, reply.body["result"])
                version = self.describe_version(version_id)
        return self.until_ready(version)

    def until_ready(self, version: ModelVersion) -> ModelVersion:
        """``version`` once its DescribeModel status is Ready [M2]; Fail, or Creating for longer than
        ``polling.IMPORT_WAIT_LIMIT_S``, is an error that names it."""

        def ready(answer: ModelVersion) -> bool:
            status = _status(answer)
            if status not in (wire.MODEL_STATUS_READY, CREATING):
                raise self._session.refused(
                    f"the import of model version {answer.version_id} failed; see it in the console"
                )
            return status == wire.MODEL_STATUS_READY

        def timed_out(answer: ModelVersion, waited: float) -> Exception:
            return self._session.refused(
                f"the import of model version {answer.version_id} is still {_status(answer)} after "
                f"{waited:.0f} s; see it in the console"
            )

        return polling.poll(
            lambda: self.describe_version(version.version_id),
            ready,
            polling.Wait(self._session.http.pause, polling.IMPORT_POLL, limit_s=polling.IMPORT_WAIT_LIMIT_S),
            timed_out,
            first=version,
        )

    def ensure_model_set(self, name: str) -> str:
        """The id of the user's model named ``name``, created (CreateCustomModelSet [M4]) when there is none;
        matched exactly on ``modelSetName`` over every page of DescribeCustomModelSets [M3]."""
        found = self._model_set_named(name)
        if found:
            return found
        created, _ = create_named(
            self._session,
            wire.MODEL_ROUTE,
            wire.CREATE_MODEL_SET,
            {"modelSetName": name, "modelType": "Text2Text"},
            wire.created_model_set,
            lambda: self._model_set_named(name),
        )
        return created

    def publish_trained(
        self, task_id: str, *, model_set_id: str, checkpoint_step: int | None = None
    ) -> ModelVersion:
        """A finished fine-tuning task as a version of ``model_set_id``: CreateCustomModel with
        ``sourceType: Train`` [M5], once per task and step. The version carries a description naming both,
        so a publish whose answer was lost, or a second publish of the same task, finds it instead."""
        description = wire.publish_description(task_id, checkpoint_step)

        def find() -> str | None:
            version = self._version_described(model_set_id, description)
            return version.version_id if version is not None else None

        found = find()
        if found is None:
            body = wire.publish_body(
                task_id, model_set_id=model_set_id, checkpoint_step=checkpoint_step, description=description
            )
            found = create_once(
                self._session,
                wire.MODEL_ROUTE,
                wire.CREATE_MODEL_VERSION,
                body,
                created=lambda reply: self._session.parse(
                    reply, wire.created_version_id, reply.body["result"]
                ),
                find=find,
                looking=f"looking the version published from {task_id} up",
            )
        return self.describe_version(found)

    def list_versions(self, version_ids: Collection[str]) -> frozenset[str]:
        """Which of ``version_ids`` still exist, from one paged DescribeCustomModelSets (each model lists its
        version ids [M3]); a version it does not list is described once, and only "not found" makes it
        deleted (a preset model, say, is no custom model but exists)."""
        wanted = set(version_ids)
        if not wanted:
            return frozenset()
        present: set[str] = set()
        for reply, item in self._model_sets("the recorded model versions"):
            listed = self._session.parse(
                reply, wire.model_set_version_ids, item, "result.customModelSetList[]"
            )
            present.update(wanted.intersection(listed))
        for version_id in sorted(wanted - present):
            try:
                self.describe_version(version_id)
            except PlatformNotFound:
                continue
            present.add(version_id)
        return frozenset(present)

    def _upload(self, folder: model_import.ModelFolder) -> None:
        with self._session.bos() as bos:
            bucket = bos.bos.bucket
            for item in folder.files:
                key = folder.object_path + item.relative
                data = read_regular(item.path, model_import.MAX_OBJECT_BYTES)
                there = bos.head_object(bucket, key)
                if there is None or there.etag != hashlib.md5(data, usedforsecurity=False).hexdigest():
                    bos.put_object(bucket, key, data)

    def _model_sets(self, looking_for: str) -> Iterator[tuple[Reply, Mapping[str, Any]]]:
        return self._session.every_item(
            wire.MODEL_ROUTE, wire.MODEL_SETS_LIST, page_body, page_of(wire.MODEL_SETS_FIELD), looking_for
        )

    def _model_set_named(self, name: str) -> str | None:
        for reply, item in self._model_sets(name):
            set_id, set_name = self._session.parse(
                reply, wire.model_set_name, item, "result.customModelSetList[]"
            )
            if set_name == name:
                return set_id
        return None

    def _version_described(self, model_set: str, description: str) -> ModelVersion | None:
        """The version of ``model_set`` whose description names this content (or training result), if one
        was made before."""
        for reply, item in self._model_sets("an imported version"):
            set_id, _ = self._session.parse(reply, wire.model_set_name, item, "result.customModelSetList[]")
            if set_id != model_set:
                continue
            for version_id in self._session.parse(
                reply, wire.model_set_version_ids, item, "result.customModelSetList[]"
            ):
                version = self.describe_version(version_id)
                if version.details.get("description") == description:
                    return version
        return None


def _status(version: ModelVersion) -> str:
    """A version's status; one that names none is Ready (the local platform's preset versions)."""
    return str(version.details.get("status") or wire.MODEL_STATUS_READY)
