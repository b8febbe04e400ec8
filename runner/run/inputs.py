"""What a stage reads before it runs, shared by the executor and the planner.

From the pipeline and the outputs of upstream stages this builds the expression context, resolves a stage's
fields, opens its ``if:`` gate, and assembles the fingerprint material (runner.run.fingerprint). Content
hashes of local files are computed once per ``Inputs`` — i.e. once per run or plan.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runner import content_hash
from runner.errors import Location
from runner.files import PathRefused
from runner.pipeline import expr
from runner.pipeline.spec import Pipeline, StageSpec
from runner.run import fingerprint
from runner.stages import STAGE_TYPES

REDACTED = "***"


class _Environment(dict[str, str | None]):
    """The allow-listed environment as expressions see it: reading a variable that is not set is an error.

    (An empty string in its place would let ``if: ${{ env.RELEASE }}`` quietly close a gate.)
    """

    def __getitem__(self, name: str) -> str | None:
        value = super().__getitem__(name)
        if value is None:
            raise expr.UnsetVariable(f"the environment variable {name} is not set")
        return value


class InputError(Exception):
    """A stage's inputs cannot be resolved: an expression failed (message carries its location)."""


@dataclass(frozen=True)
class Upstream:
    """What a stage sees of one stage it depends on."""

    fingerprint: str
    outputs: Mapping[str, Any]


@dataclass(frozen=True)
class Pending:
    """An upstream stage that runs before this one: its outputs are known only after it runs (the plan)."""

    stage_id: str


class _PendingOutputs(dict[str, Any]):
    """The outputs of a ``Pending`` stage as expressions see them: reading any of them is not known yet."""

    def __init__(self, stage_id: str) -> None:
        super().__init__()
        self.stage_id = stage_id

    def __getitem__(self, key: str) -> Any:
        raise expr.NotKnownYet(self.stage_id)

    def __contains__(self, key: object) -> bool:
        return True


class Inputs:
    def __init__(self, pipeline: Pipeline, environ: Mapping[str, str] | None = None) -> None:
        self.pipeline = pipeline
        source = os.environ if environ is None else environ
        self.env = {name: source.get(name) for name in pipeline.env_names}
        # Values read from the environment may be secrets: they never reach the state file in clear.
        self._secrets = sorted((v for v in self.env.values() if v and len(v) >= 4), key=len, reverse=True)
        # stage id -> (its body, the key paths of its fields that read env): a plan or run redacts each
        # stage's fields several times, and walking the fields' expressions again each time was a tenth of
        # a plan's time (issue 17, P2). The body is kept to tell a stage of another pipeline of the same id.
        self._tainted: dict[str, tuple[Mapping[str, Any], frozenset[tuple[str | int, ...]]]] = {}

    def context(
        self, upstream: Mapping[str, Upstream | Pending], stage: StageSpec | None = None
    ) -> dict[str, Any]:
        stages: dict[str, Any] = {stage_id: {"outputs": _outputs(up)} for stage_id, up in upstream.items()}
        for family, members in self.pipeline.families.items():
            if members and all(member in upstream for member in members):
                # stages.<family>[*]: the members' outputs as a list, in the members' order
                stages[family + expr.FAMILY_SUFFIX] = [_outputs(upstream[member]) for member in members]
        context = {"vars": self.pipeline.vars, "env": _Environment(self.env), "stages": stages}
        if stage is not None and stage.family is not None:
            context["matrix"] = stage.matrix
        return context

    def gate(self, stage: StageSpec, upstream: Mapping[str, Upstream | Pending]) -> tuple[bool, str]:
        """Whether the stage's ``if:`` lets it run, and the reason shown when it does not.

        Raises ``expr.NotKnownYet`` when it reads the outputs of a ``Pending`` stage.
        """
        condition = stage.condition
        if condition is None or condition is True:
            return True, ""
        if condition is False:
            return False, "its if: is false"
        try:
            value = expr.render(str(condition), self.context(upstream, stage))
        except expr.NotKnownYet:
            raise
        except expr.ExpressionError as error:
            raise InputError(self._where(stage, ("if",), error)) from None
        if expr.truthy(value):
            return True, ""
        return False, f"its if: {str(condition).strip()} is false"

    def resolve(self, stage: StageSpec, upstream: Mapping[str, Upstream | Pending]) -> dict[str, Any]:
        """The stage's fields with every expression evaluated; InputError names each one that failed.

        A value that reads the outputs of a ``Pending`` stage is an ``expr.KnownAfter`` in the result.
        """
        failures: list[str] = []
        unknown: list[tuple[tuple[str | int, ...], str]] = []

        def failed(path: tuple[str | int, ...], error: expr.ExpressionError) -> None:
            if isinstance(error, expr.NotKnownYet):
                unknown.append((path, error.stage_id))
            else:
                failures.append(self._where(stage, path, error))

        fields = expr.resolve(stage.fields, self.context(upstream, stage), failed)
        for path, stage_id in unknown:
            _put(fields, path, expr.KnownAfter(stage_id))
        failures += self._foreign_refs(stage, fields)
        if failures:
            raise InputError("; ".join(failures))
        return dict(fields)

    def _foreign_refs(self, stage: StageSpec, fields: Mapping[str, Any]) -> list[str]:
        """A reference an expression produced (``model: ${{ 'w4' if ... else 'w8' }}``) must name a stage
        this one already depends on, of a type the field takes: validation could not see it."""
        failures: list[str] = []
        for ref in STAGE_TYPES[stage.type].stage_refs(fields):
            if isinstance(ref.stage_id, expr.KnownAfter):
                continue  # which stage it names is known after the run it waits for
            target = self.pipeline.stages.get(ref.stage_id)
            if ref.stage_id not in stage.upstream or target is None or target.type not in ref.allowed_types:
                accepted = " or ".join(sorted(ref.allowed_types))
                error = expr.ExpressionError(
                    f"the value {ref.stage_id!r} is not a {accepted} stage this stage depends on; "
                    "list the stages it may name under needs:"
                )
                failures.append(self._where(stage, ref.path, error))
        return failures

    def material(
        self, stage: StageSpec, fields: Mapping[str, Any], upstream: Mapping[str, Upstream | Pending]
    ) -> dict[str, Any]:
        """Everything the stage's fingerprint covers (see runner.run.fingerprint)."""
        files: dict[str, str] = {}
        stage_type = STAGE_TYPES[stage.type]
        try:
            for ref in stage_type.dataset_refs(fields):
                dataset = self.pipeline.datasets[ref.dataset_id]
                if dataset.path is not None:
                    real = self.pipeline.files.file(str(dataset.path))
                    files[f"dataset {ref.dataset_id}"] = content_hash.of_file(real)
                else:
                    files[f"dataset {ref.dataset_id}"] = f"qianfan:{dataset.qianfan_dataset_id}"
        except PathRefused as refused:
            raise InputError(self._where(stage, (), expr.ExpressionError(str(refused).rstrip(".")))) from None
        # Confined again here: an expression may have made a path, which validate could not see.
        local = self.pipeline.platform_spec.local
        for item in stage_type.local_inputs(stage.id, fields, local=local):
            if not item.fingerprinted:
                continue
            try:
                real = self.pipeline.files.confined(item.kind, item.written)
                files[item.label] = fingerprint.local_input_sha256(item.kind, real)
            except PathRefused as refused:
                raise InputError(
                    self._where(stage, item.path, expr.ExpressionError(str(refused).rstrip(".")))
                ) from None
        files.update(stage_type.packaged_inputs(fields))
        # Upstream counts through what the stage consumes: the outputs of the stages its fields name
        # (``model: w4``); values read by expressions are already in the resolved fields, and ``if:`` and
        # ``needs:`` only decide whether and when it runs. So re-running an evaluation that gates a deploy
        # does not redeploy unless the deploy's own inputs changed.
        consumed = {ref.stage_id for ref in stage_type.stage_refs(fields) if ref.stage_id in upstream}
        return {
            "stage": stage.id,
            "type": stage.type,
            "fields": self.redact_fields(stage, fields),
            "upstream": {
                stage_id: fingerprint.digest(dict(_known(upstream[stage_id])))
                for stage_id in sorted(consumed)
            },
            "files": files,
            "platform": self.platform_identity(),
            content_hash.FORMAT_KEY: content_hash.FORMAT,
        }

    def platform_identity(self) -> str:
        """The platform as fingerprints see it (runner.platform.registry: a local URL is left out)."""
        return self.pipeline.platform_spec.identity()

    def redact_fields(self, stage: StageSpec, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``fields`` as plans, reports and the state may show them: every field whose expression reads
        ``env`` is ``(sensitive)``, and any value read from the environment is masked wherever it appears."""
        tainted = self._tainted_paths(stage)
        if not tainted and not self._secrets:  # nothing to mask: the same copy, without a path per value
            return {key: _copied(value) for key, value in fields.items()}

        def shown(value: Any, path: tuple[str | int, ...]) -> Any:
            if path in tainted:
                return expr.SENSITIVE
            if isinstance(value, Mapping):
                return {key: shown(item, (*path, key)) for key, item in value.items()}
            if isinstance(value, list):
                return [shown(item, (*path, index)) for index, item in enumerate(value)]
            return self.redact(value)

        return {key: shown(value, (key,)) for key, value in fields.items()}

    def redact(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, Mapping):
            return {key: self.redact(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.redact(item) for item in value]
        return value

    def _tainted_paths(self, stage: StageSpec) -> frozenset[tuple[str | int, ...]]:
        known = self._tainted.get(stage.id)
        if known is not None and known[0] is stage.body:
            return known[1]
        paths = frozenset(_tainted_paths(stage.fields))
        self._tainted[stage.id] = (stage.body, paths)
        return paths

    def _where(self, stage: StageSpec, path: tuple[str | int, ...], error: Exception) -> str:
        if path in self._tainted_paths(stage) and not isinstance(error, expr.UnsetVariable):
            # the error may quote what env held (``'s3cr3t' + 1``), in whatever form a filter gave it
            error = expr.ExpressionError(f"an expression that reads env failed ({type(error).__name__})")
        location: Location = self.pipeline.location(stage.id, *path)
        dotted = ".".join(str(part) for part in ("stages", stage.id, *path))
        return f"{location}: {dotted}: {error}"


def _copied(value: Any) -> Any:
    """``value`` with each mapping and list copied, as ``redact_fields`` gives it when it masks nothing."""
    if type(value) is str:
        return value
    if type(value) is dict or isinstance(value, Mapping):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


def _outputs(upstream: Upstream | Pending) -> Mapping[str, Any]:
    return _PendingOutputs(upstream.stage_id) if isinstance(upstream, Pending) else upstream.outputs


def _put(fields: Any, path: tuple[str | int, ...], value: Any) -> None:
    for key in path[:-1]:
        fields = fields[key]
    fields[path[-1]] = value


def _known(upstream: Upstream | Pending) -> Mapping[str, Any]:
    if isinstance(upstream, Pending):  # a caller's bug: a fingerprint of unknown outputs would be wrong
        raise ValueError(f"stage {upstream.stage_id} has yet to run; its outputs are not known")
    return upstream.outputs


def _tainted_paths(value: Any, path: tuple[str | int, ...] = ()) -> set[tuple[str | int, ...]]:
    """The key paths of a stage's raw fields whose string holds an expression that reads ``env``."""
    if isinstance(value, str):
        return {path} if expr.contains_expression(value) and expr.reads_env(value) else set()
    found: set[tuple[str | int, ...]] = set()
    items: Iterable[tuple[str | int, Any]] = (
        value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    )
    for key, item in items:
        if type(item) is str:
            if "${{" in item:
                found |= _tainted_paths(item, (*path, key))
        elif isinstance(item, Mapping | list) or (isinstance(item, str) and "${{" in item):
            found |= _tainted_paths(item, (*path, key))
    return found
