"""The pipeline as the runner uses it: loaded, schema-checked, and checked for meaning.

``load_pipeline`` is the whole of ``qfrun validate``: YAML (runner.pipeline.yamlio), JSON Schema
(runner.pipeline.schema), then the checks a schema cannot make — references to stages and datasets, the types
a reference accepts, cycles, expressions, local files — all reported at once, sorted, each at its line and
column.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import Issue, Location, PipelineError
from runner.files import Confinement, PathRefused, allowed_folders
from runner.pipeline import dag, expr, targets
from runner.pipeline.expansion import Expansion, expand
from runner.pipeline.schema import schema_issues
from runner.pipeline.yamlio import Document, KeyPath, load_document
from runner.stages import STAGE_TYPES
from runner.stages.base import CONTROL_KEYS, CheckContext

if TYPE_CHECKING:
    import networkx as nx

    from runner.platform.registry import PlatformSpec


@dataclass(frozen=True)
class DatasetSpec:
    id: str
    path: Path | None  # a local JSONL file, joined to the pipeline's (absolute) folder; links not followed
    qianfan_dataset_id: str | None


@dataclass(frozen=True)
class StageSpec:
    id: str
    type: str
    body: Mapping[str, Any]  # the stage's mapping as written
    upstream: tuple[str, ...]  # every stage it depends on, in declaration order
    family: str | None = None  # the matrix stage this one is a member of (runner.pipeline.matrix)
    matrix: Mapping[str, Any] = field(default_factory=dict)  # its values, for ${{ matrix.<key> }}

    @functools.cached_property
    def fields(self) -> dict[str, Any]:
        """What the stage does: its body without the control keys (made once: a plan reads it several times
        a stage; nothing writes to it)."""
        return {key: value for key, value in self.body.items() if key not in CONTROL_KEYS}

    @property
    def condition(self) -> Any:
        return self.body.get("if")

    @property
    def timeout_minutes(self) -> int | None:
        value = self.body.get("timeout_minutes")
        return value if isinstance(value, int) else None


@dataclass(frozen=True)
class Pipeline:
    document: Document
    name: str
    platform: Mapping[str, Any]  # {"kind": "local" | "qianfan", "url"?: ..., ...}
    vars: Mapping[str, Any]
    env_names: tuple[str, ...]
    datasets: Mapping[str, DatasetSpec]
    stages: Mapping[str, StageSpec]
    files: Confinement  # where the pipeline's paths may lead (runner.files)
    families: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # matrix stage -> member ids
    target: str = targets.IMPLICIT  # the target this pipeline was loaded for (runner.pipeline.targets)
    targets_declared: bool = False  # whether the file declares named targets (platforms:)
    target_names: tuple[str, ...] = (targets.IMPLICIT,)  # every target the file declares, in order

    @property
    def state_name(self) -> str:
        """The state's name: the pipeline's, and with named targets the target's too, so that each target
        keeps its own state (a file of ``platform:`` keeps the name it always had)."""
        return f"{self.name}.{self.target}" if self.targets_declared else self.name

    @functools.cached_property
    def graph(self) -> nx.DiGraph[str]:
        """The stage graph, built when first needed (validate does without it: see dag.has_cycle)."""
        return dag.build(
            {stage_id: stage.upstream for stage_id, stage in self.stages.items()}, families=self.families
        )

    @functools.cached_property
    def platform_spec(self) -> PlatformSpec:
        """The platform as a typed spec: its kind's entry (runner.platform.registry) and its options."""
        from runner.platform.registry import platform_spec  # the platform layer: validate does without it

        return platform_spec(self.platform)

    @property
    def path(self) -> Path:
        return Path(self.document.path)

    def location(self, stage_id: str, *keys: str | int) -> Location:
        return self.document.location(("stages", stage_id, *keys))


ALLOW_ENV_VARIABLE = "QFRUN_ALLOW_ENV"  # names a pipeline may read, comma-separated, set outside the pipeline
ENV_PREFIX = "QFRUN_VAR_"  # variables meant for pipelines: always readable
# Credentials stay unreadable whatever is allowed: a pipeline file may come from an untrusted pull request.
NEVER_READABLE = frozenset(
    {
        "QIANFAN_ACCESS_KEY",
        "QIANFAN_SECRET_KEY",
        "QIANFAN_AK",
        "QIANFAN_SK",
        "QIANFAN_BEARER_TOKEN",
        "QFRUN_LOCAL_TOKEN",
        "QFRUN_LOCAL_ACCESS_KEY",
        "QFRUN_LOCAL_SECRET_KEY",
    }
)


def allowed_env(extra: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The names a pipeline may read: ``extra`` (``--allow-env``) plus those listed in QFRUN_ALLOW_ENV."""
    listed = (environ if environ is not None else os.environ).get(ALLOW_ENV_VARIABLE, "")
    return frozenset(name.strip() for name in (*extra, *listed.split(",")) if name.strip())


def load_pipeline(
    path: str | Path,
    *,
    check_files: bool = True,
    allow_env: Collection[str] | None = (),
    allow_paths: Iterable[str | Path] = (),
    text: str | None = None,
    target: str | None = None,
    every_target: bool = False,
) -> Pipeline:
    """The pipeline at ``path`` (or ``text``, read as if it were there) as ``target`` sees it (None: the
    default target), or a PipelineError listing every problem in it.

    ``every_target`` checks the file for each of its targets (``qfrun validate`` without ``--target``) and
    returns it as the default target sees it; a problem that only some targets have names them.

    ``allow_env`` names the variables the user allowed the pipeline to read on the command line
    (``--allow-env``); those of QFRUN_ALLOW_ENV and the QFRUN_VAR_ prefix are allowed too. None skips that
    check, for commands that evaluate no expression (status, report, destroy). ``allow_paths``
    (``--allow-path``) and QFRUN_ALLOW_PATHS name folders outside the repository that its paths may lead to.
    """
    with _cyclic_gc_paused():
        return _load(
            path,
            text,
            check_files=check_files,
            allow_env=allow_env,
            allow_paths=allow_paths,
            target=target,
            every_target=every_target,
        )


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Loading allocates objects by the million and frees none: CPython's cyclic collector would traverse
    the growing heap again and again for nothing, which made validation time per MB grow with the file
    (1.09 s/MB at 100 KB, 1.93 at 5 MB; 0.91 and 0.93 with the collector paused). Reference counting still
    frees everything; the collector runs again as soon as loading ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load(
    path: str | Path,
    text: str | None,
    *,
    check_files: bool,
    allow_env: Collection[str] | None,
    allow_paths: Iterable[str | Path],
    target: str | None,
    every_target: bool,
) -> Pipeline:
    expansion = expand(load_document(path, text=text))
    if expansion.issues:  # the members, and so every later check, depend on a well-formed matrix
        raise PipelineError(expansion.issues)
    document = expansion.document
    issues = list(schema_issues(document))
    if issues and not isinstance(document.data.get("stages"), Mapping):
        raise PipelineError(issues)
    declared, target_issues = targets.read_targets(document)
    chosen, choice_issues = targets.choose(declared, target, document)
    issues += target_issues + choice_issues
    files = Confinement.for_pipeline(Path(document.path), allowed_folders(allow_paths))
    names = declared.names if every_target else (chosen,)
    found: dict[str, list[Issue]] = {}
    loaded: dict[str, Pipeline] = {}
    for name in names:
        resolved, overlay_issues = targets.resolve(document, declared, name)
        loaded[name], meaning = _interpret(
            replace(expansion, document=resolved), files, declared, name, check_files=check_files
        )
        found[name] = overlay_issues + meaning
    issues += _merged(found)
    pipeline = loaded.get(chosen) or loaded[names[0]]
    if allow_env is not None:
        issues += _env_issues(document, allowed_env(allow_env))
    if issues:
        raise PipelineError(issues)
    return pipeline


def _merged(found: Mapping[str, list[Issue]]) -> list[Issue]:
    """The issues of every target checked, each once; one that only some targets have says which."""
    every = set.intersection(*(set(issues) for issues in found.values())) if found else set()
    merged: dict[Issue, None] = {}
    for name, issues in found.items():
        for issue in issues:
            shown = issue if issue in every else Issue(issue.location, f"target {name}: {issue.message}")
            merged[shown] = None
    return list(merged)


def _interpret(
    expansion: Expansion,
    files: Confinement,
    declared: targets.Targets,
    target: str,
    *,
    check_files: bool,
) -> tuple[Pipeline, list[Issue]]:
    document = expansion.document
    data = document.data
    issues: list[Issue] = []
    # absolute: a relative pipeline path joined to a relative dataset path would be relative to the wrong base
    datasets = dict(_datasets(data.get("datasets"), files.base))
    raw_stages = {sid: body for sid, body in data["stages"].items() if isinstance(body, Mapping)}
    variables = data.get("vars") if isinstance(data.get("vars"), Mapping) else {}
    env_names = tuple(name for name in data.get("env") or [] if isinstance(name, str))

    platform = declared.platforms[target]
    kind = (
        platform
        if isinstance(platform, str)
        else platform.get("kind")
        if isinstance(platform, Mapping)
        else None
    )
    checks = CheckContext(document, raw_stages, datasets, "qianfan" if kind == "qianfan" else "local")

    dependencies: dict[str, list[str]] = {}
    unknown = _Unknown()
    for stage_id, body in raw_stages.items():
        found = _check_stage(checks, stage_id, body, variables, env_names, issues, unknown, expansion)
        dependencies[stage_id] = list(dict.fromkeys(found))

    for cycle in dag.cycles(dag.build(dependencies)) if dag.has_cycle(dependencies) else []:
        path = " -> ".join([*cycle, cycle[0]])
        issues.append(Issue(document.key_location(("stages", cycle[0])), f"stages {path} form a cycle."))

    order = {stage_id: index for index, stage_id in enumerate(raw_stages)}
    stages = {
        stage_id: StageSpec(
            stage_id,
            str(body.get("type")),
            body,
            tuple(sorted(set(dependencies[stage_id]), key=lambda s: order.get(s, len(order)))),
            *_membership(expansion, stage_id),
        )
        for stage_id, body in raw_stages.items()
    }
    if check_files:
        issues += _file_issues(checks, files)
    if checks.local and isinstance(platform, Mapping):
        issues += _local_url_issues(document, platform, declared.key_path(target))
    pipeline = Pipeline(
        document=document,
        name=str(data.get("name")),
        # a value of another type is a schema issue already; the pipeline is never used then
        platform=(
            {"kind": platform}
            if isinstance(platform, str)
            else dict(platform)
            if isinstance(platform, Mapping)
            else {}
        ),
        vars=variables,
        env_names=env_names,
        datasets=datasets,
        stages=stages,
        files=files,
        families=expansion.families,
        target=target,
        targets_declared=declared.declared,
        target_names=declared.names,
    )
    return pipeline, issues


def _membership(expansion: Expansion, stage_id: str) -> tuple[str | None, Mapping[str, Any]]:
    member = expansion.members.get(stage_id)
    return (member.family, member.values) if member is not None else (None, {})


def _env_issues(document: Document, allowed: Collection[str]) -> Iterator[Issue]:
    """Names under ``env:`` that nobody allowed outside the pipeline file."""
    names = document.data.get("env")
    for index, name in enumerate(names if isinstance(names, list) else []):
        # credentials are refused by the schema already, wherever they are allowed
        if not isinstance(name, str) or name in NEVER_READABLE:
            continue
        if name.startswith(ENV_PREFIX) or name in allowed:
            continue
        key_path = ("env", index)
        why = (
            f"allow it outside the file with --allow-env {name} or {ALLOW_ENV_VARIABLE}={name}, or name it "
            f"{ENV_PREFIX}{name}"
        )
        yield Issue(document.location(key_path), f"{_dotted(key_path)}: {name} may not be read: {why}.")


def _datasets(raw: Any, folder: Path) -> Iterator[tuple[str, DatasetSpec]]:
    for dataset_id, body in (raw or {}).items() if isinstance(raw, Mapping) else ():
        if isinstance(body, Mapping):
            path = body.get("path")
            yield (
                dataset_id,
                DatasetSpec(
                    dataset_id,
                    (folder / path) if isinstance(path, str) else None,
                    body.get("qianfan_dataset_id"),
                ),
            )


def _check_stage(
    checks: CheckContext,
    stage_id: str,
    body: Mapping[str, Any],
    variables: Mapping[str, Any],
    env_names: tuple[str, ...],
    issues: list[Issue],
    unknown: _Unknown,
    expansion: Expansion,
) -> Iterator[str]:
    """Check one stage's references, expressions and what its type checks; yield the stages it depends on."""
    document, stages, datasets = checks.document, checks.stages, checks.datasets
    stage_type = STAGE_TYPES.get(str(body.get("type")))
    where = ("stages", stage_id)
    if stage_type is not None:
        for ref in stage_type.stage_refs(body):
            at = document.location((*where, *ref.path))
            target = stages.get(ref.stage_id)
            if target is None and ref.stage_id in expansion.families:
                message = _family_named(ref.stage_id, expansion.families[ref.stage_id])
                issues.append(Issue(at, f"{_dotted((*where, *ref.path))}: {message}"))
            elif target is None:
                issues.append(
                    Issue(at, f"{_dotted((*where, *ref.path))}: {unknown('stage', ref.stage_id, stages)}")
                )
            elif ref.stage_id == stage_id:
                issues.append(Issue(at, f"{_dotted((*where, *ref.path))}: a stage cannot use itself."))
            elif isinstance(target.get("type"), str) and target.get("type") not in ref.allowed_types:
                accepted = " or ".join(sorted(ref.allowed_types))
                issues.append(
                    Issue(
                        at,
                        (
                            f"{_dotted((*where, *ref.path))}: {ref.stage_id!r} is "
                            f"{_article(target.get('type'))} stage, "
                            f"but this field takes {_article(accepted)} stage."
                        ),
                    )
                )
            elif "endpoint" in target and not ref.takes_endpoint:
                issues.append(
                    Issue(
                        at,
                        (
                            f"{_dotted((*where, *ref.path))}: {ref.stage_id!r} names a preset endpoint, "
                            "which only batch inference takes; evaluate, compress and deploy need a model "
                            "version (version_id)."
                        ),
                    )
                )
            else:
                yield ref.stage_id
        for dref in stage_type.dataset_refs(body):
            if dref.dataset_id not in datasets:
                at = document.location((*where, *dref.path))
                message = unknown("dataset", dref.dataset_id, datasets)
                issues.append(Issue(at, f"{_dotted((*where, *dref.path))}: {message}"))
        issues.extend(stage_type.checks(checks, stage_id, body))
    for index, name in enumerate(body.get("needs") or []):
        at = document.location((*where, "needs", index))
        if name not in stages:
            issues.append(
                Issue(at, f"{_dotted((*where, 'needs', index))}: {unknown('stage', str(name), stages)}")
            )
        elif name == stage_id:
            issues.append(Issue(at, f"{_dotted((*where, 'needs', index))}: a stage cannot need itself."))
        else:
            yield name
    for key_path, source in _expressions(body, where):
        yield from _check_expression(
            document, key_path, source, stages, variables, env_names, issues, unknown, expansion
        )


def _check_expression(
    document: Document,
    key_path: KeyPath,
    source: str | None,
    stages: Mapping[str, Any],
    variables: Mapping[str, Any],
    env_names: tuple[str, ...],
    issues: list[Issue],
    unknown: _Unknown,
    expansion: Expansion,
) -> Iterator[str]:
    at, name = document.location(key_path), _dotted(key_path)
    if source is None:
        issues.append(Issue(at, f"{name}: a `${{{{` is not closed by `}}}}`."))
        return
    try:
        refs = list(expr.references(source))
    except expr.ExpressionError as error:
        issues.append(Issue(at, f"{name}: {_sentence(str(error))}"))
        return
    member = expansion.members.get(str(key_path[1]))
    for ref in refs:
        if ref.root == "stages" and ref.name.endswith(expr.FAMILY_SUFFIX):
            family = ref.name.removesuffix(expr.FAMILY_SUFFIX)
            if family not in expansion.families:
                what = "it has no matrix" if family in stages else unknown("stage", family, stages)
                issues.append(
                    Issue(at, f"{name}: ${{{{ {source} }}}}: {family!r} is not a matrix stage: {what}")
                )
            elif member is not None and member.family == family:
                issues.append(Issue(at, f"{name}: a stage cannot read the outputs of its own matrix."))
            else:
                yield from expansion.families[family]
        elif ref.root == "stages" and ref.name in expansion.families:
            message = _family_named(ref.name, expansion.families[ref.name], source=source)
            issues.append(Issue(at, f"{name}: ${{{{ {source} }}}}: {message}"))
        elif ref.root == "matrix":
            if member is None:
                issues.append(
                    Issue(
                        at,
                        f"{name}: ${{{{ {source} }}}} reads matrix, but stage {key_path[1]} has no matrix:.",
                    )
                )
            elif ref.name not in member.values:
                message = unknown("matrix key", ref.name, member.values)
                issues.append(Issue(at, f"{name}: ${{{{ {source} }}}}: {message}"))
        elif ref.root == "stages":
            if ref.name not in stages:
                message = unknown("stage", ref.name, stages)
                issues.append(Issue(at, f"{name}: ${{{{ {source} }}}}: {message}"))
            elif ref.name == key_path[1]:
                issues.append(Issue(at, f"{name}: a stage cannot read its own outputs."))
            else:
                yield ref.name
        elif ref.root == "vars" and ref.name not in variables:
            issues.append(
                Issue(at, f"{name}: ${{{{ {source} }}}}: {unknown('variable', ref.name, variables)}")
            )
        elif ref.root == "env" and ref.name not in env_names:
            issues.append(
                Issue(
                    at,
                    (
                        f"{name}: ${{{{ {source} }}}} reads the environment variable {ref.name}, which is "
                        f"not listed under env:; add it there to allow it."
                    ),
                )
            )


def _expressions(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, str | None]]:
    """Every expression's source in a value, with its key path; None for an unclosed ``${{``."""
    if isinstance(value, str):
        if "${{" in value:
            found = expr.find(value)
            if value.count("${{") != len(found):
                yield path, None  # a ``${{`` that no ``}}`` closes
            for source in found:
                yield path, source
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _expressions(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _expressions(item, (*path, index))


def _local_url_issues(document: Document, platform: Mapping[str, Any], at: KeyPath) -> Iterator[Issue]:
    """qfrun sends the local platform its token and keys with every request: to its console (``url``), its
    chat (``inference_url``) and its BOS (``bos.endpoint``): any of them off this machine would get them."""
    from runner.platform.settings import is_loopback_url  # only for a platform written as a mapping

    bos = platform.get("bos")
    urls = {
        (*at, "url"): platform.get("url"),
        (*at, "inference_url"): platform.get("inference_url"),
        (*at, "bos", "endpoint"): bos.get("endpoint") if isinstance(bos, Mapping) else None,
    }
    for key_path, url in urls.items():
        if isinstance(url, str) and not is_loopback_url(url):
            yield Issue(
                document.location(key_path),
                (
                    f"{_dotted(key_path)}: the local platform runs on this machine, and qfrun sends it the "
                    f"local token and keys; {url!r} is not a loopback address (127.0.0.1, localhost or "
                    "[::1])."
                ),
            )


def _file_issues(checks: CheckContext, files: Confinement) -> Iterator[Issue]:
    """Every local path the pipeline names must lead to a regular file (or a folder of them) inside the
    repository or a folder the user allowed (runner.files); custom evaluators' code, to the repository."""
    document = checks.document
    raw_datasets = document.data.get("datasets")
    for dataset_id, dataset in checks.datasets.items():
        written = raw_datasets[dataset_id].get("path") if dataset.path is not None else None
        if isinstance(written, str):
            yield from _refused(document, ("datasets", dataset_id, "path"), files.file, written)
    for stage_id, body in checks.stages.items():
        stage_type = STAGE_TYPES.get(str(body.get("type")))
        for item in stage_type.local_inputs(stage_id, body, local=checks.local) if stage_type else ():
            check = functools.partial(files.confined, item.kind)
            yield from _refused(document, ("stages", stage_id, *item.path), check, item.written)


def _refused(
    document: Document, key_path: KeyPath, check: Callable[[str], Path], written: str
) -> Iterator[Issue]:
    try:
        check(written)
    except PathRefused as refused:
        yield Issue(document.location(key_path), f"{_dotted(key_path)}: {refused}")


# "Did you mean" hints offered per validation. Each hint compares the name with every known one, so a file
# with thousands of unknown names among thousands of stages took time quadratic in its size (2,000 unknown
# `needs` took 88 s); past this many, the messages still name what is unknown, without a guess.
MAX_HINTS = 20


class _Unknown:
    """The message for a name that is not there, with a hint while the validation's budget lasts."""

    def __init__(self, budget: int = MAX_HINTS) -> None:
        self.budget = budget

    def __call__(self, what: str, name: str, known: Iterable[str]) -> str:
        close: list[str] = []
        if self.budget > 0:
            self.budget -= 1
            import difflib  # only when a name is unknown: a valid file does not pay for it

            close = difflib.get_close_matches(name, list(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        return f"there is no {what} {name!r}{hint}"


def _family_named(family: str, members: tuple[str, ...], source: str | None = None) -> str:
    """The message for a single reference to a matrix stage, which stands for several."""
    how = f"stages.{family}[*] for all their outputs, or " if source is not None else ""
    return f"{family!r} is a matrix of {len(members)} stages; use {how}one member, e.g. {members[0]!r}."


def _article(noun: Any) -> str:
    """``an infer``, ``a model``: messages are sentences."""
    text = str(noun)
    return f"{'an' if text[:1].lower() in 'aeiou' else 'a'} {text}"


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else text + "."


def _dotted(key_path: KeyPath) -> str:
    return ".".join(str(part) for part in key_path)
