"""Targets: the platforms one pipeline file runs on, and the file as one target sees it.

A pipeline names its platform once (``platform:``, one implicit target) or several named targets
(``platforms: {dev: local, prod: {kind: qianfan}}`` with ``default_target:``), as dbt's targets and
Terraform's workspaces do, so the same file is promoted from one to the next unchanged. A model stage or a
dataset may say where it comes from on some targets (``targets: {prod: {version_id: amv-...}}``);
``resolve`` returns the document with those overlays applied for one target and removed for every other, so
the checks, plans and runs after it see an ordinary single-platform pipeline.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from runner.errors import Issue
from runner.pipeline.yamlio import Document, KeyPath

IMPLICIT = "default"  # the one target of a pipeline that writes ``platform:`` (or nothing: local)
ENV_TARGET = "QFRUN_TARGET"
# What a per-target overlay replaces: a model stage's source keys, a dataset's.
MODEL_SOURCE_KEYS = ("version_id", "import", "endpoint")
DATASET_SOURCE_KEYS = ("path", "qianfan_dataset_id")


@dataclass(frozen=True)
class Targets:
    """The targets a pipeline declares, in the order written."""

    platforms: Mapping[str, Any]  # target name -> the platform value as written
    default: str
    declared: bool  # ``platforms:``; False for ``platform:`` (one implicit target)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.platforms)

    def key_path(self, name: str) -> KeyPath:
        """Where the target's platform is written."""
        return ("platforms", name) if self.declared else ("platform",)


def read_targets(document: Document) -> tuple[Targets, list[Issue]]:
    """The pipeline's targets, and what is wrong with how they are declared (the schema checked shapes)."""
    data = document.data if isinstance(document.data, Mapping) else {}
    declared = data.get("platforms")
    issues: list[Issue] = []
    if not isinstance(declared, Mapping) or not declared:
        if "default_target" in data:
            issues.append(
                Issue(
                    document.key_location(("default_target",)),
                    "default_target: names a target of platforms:, which this pipeline does not declare.",
                )
            )
        return Targets({IMPLICIT: data.get("platform", "local")}, IMPLICIT, declared=False), issues
    if "platform" in data:
        issues.append(
            Issue(
                document.key_location(("platform",)),
                "platform: give either platform (one platform) or platforms (named targets), not both; "
                "move it into platforms.",
            )
        )
    platforms = {str(name): value for name, value in declared.items()}
    default = data.get("default_target")
    if default is None:
        if len(platforms) > 1:
            issues.append(
                Issue(
                    document.key_location(("platforms",)),
                    f"platforms: name the target used without --target in default_target "
                    f"(one of {', '.join(platforms)}).",
                )
            )
        default = next(iter(platforms))
    elif str(default) not in platforms:
        issues.append(
            Issue(
                document.location(("default_target",)),
                f"default_target: {unknown_target(str(default), platforms)}",
            )
        )
        default = next(iter(platforms))
    return Targets(platforms, str(default), declared=True), issues


def choose(targets: Targets, name: str | None, document: Document) -> tuple[str, list[Issue]]:
    """The target ``name`` (``--target``), else the default; an unknown name is an issue at ``platforms``."""
    if name is None or name == targets.default:
        return targets.default, []
    if name in targets.platforms:
        return name, []
    if not targets.declared:
        message = (
            f"--target {name}: this pipeline declares no targets (platforms:), only one platform; leave "
            f"--target and {ENV_TARGET} out, or declare its targets under platforms."
        )
        return targets.default, [Issue(document.key_location(("platform",)), message)]
    where = document.key_location(("platforms",))
    return targets.default, [Issue(where, f"--target {name}: {unknown_target(name, targets.platforms)}")]


def resolve(document: Document, targets: Targets, target: str) -> tuple[Document, list[Issue]]:
    """The document as ``target`` sees it: each stage's and dataset's ``targets:`` overlay for it in place of
    their own source, every overlay removed; and the overlays that name no declared target, as issues."""
    data = document.data if isinstance(document.data, Mapping) else {}
    issues = list(_overlay_issues(document, targets))
    datasets = data.get("datasets")
    stages = data.get("stages")
    if not _has_overlays(datasets) and not _has_overlays(stages):
        return document, issues
    resolved = dict(data)
    if isinstance(datasets, Mapping):
        resolved["datasets"] = {
            key: _applied(body, target, DATASET_SOURCE_KEYS) for key, body in datasets.items()
        }
    if isinstance(stages, Mapping):
        resolved["stages"] = {
            key: _applied(body, target, MODEL_SOURCE_KEYS) if _is_model(body) else body
            for key, body in stages.items()
        }
    # A source taken from an overlay is reported where the overlay writes it.
    moved: dict[KeyPath, Any] = {}
    for key_path, name in overlay_targets(document):
        if name != target:
            continue
        for written, position in document.positions.items():
            if written[: len(key_path)] == key_path and len(written) > len(key_path):
                moved[(*key_path[:2], *written[len(key_path) :])] = position
    return replace(document, data=resolved, positions=ChainMap(moved, dict(document.positions))), issues


def overlay_targets(document: Document) -> Iterator[tuple[KeyPath, str]]:
    """Each target name a ``targets:`` overlay uses, with where it is written."""
    data = document.data if isinstance(document.data, Mapping) else {}
    for section in ("datasets", "stages"):
        entries = data.get(section)
        for key, body in entries.items() if isinstance(entries, Mapping) else ():
            overlay = body.get("targets") if isinstance(body, Mapping) else None
            for name in overlay if isinstance(overlay, Mapping) else ():
                yield (section, key, "targets", name), str(name)


def _overlay_issues(document: Document, targets: Targets) -> Iterator[Issue]:
    for key_path, name in overlay_targets(document):
        if name in targets.platforms and targets.declared:
            continue
        dotted = ".".join(str(part) for part in key_path[:-1])
        if not targets.declared:
            text = (
                "this pipeline has one platform; declare targets under platforms to give one a source of "
                "its own."
            )
        else:
            text = unknown_target(name, targets.platforms)
        yield Issue(document.key_location(key_path), f"{dotted}: {text}")


def _has_overlays(entries: Any) -> bool:
    return isinstance(entries, Mapping) and any(
        isinstance(body, Mapping) and "targets" in body for body in entries.values()
    )


def _is_model(body: Any) -> bool:
    return isinstance(body, Mapping) and body.get("type") == "model"


def _applied(body: Any, target: str, source_keys: tuple[str, ...]) -> Any:
    """``body`` with its overlay for ``target`` in place of its own source, and without ``targets:``."""
    if not isinstance(body, Mapping) or "targets" not in body:
        return body
    overlay = body["targets"]
    chosen = overlay.get(target) if isinstance(overlay, Mapping) else None
    kept = {key: value for key, value in body.items() if key != "targets"}
    if isinstance(chosen, Mapping):
        kept = {key: value for key, value in kept.items() if key not in source_keys}
        kept.update(chosen)
    return kept


def unknown_target(name: str, known: Mapping[str, Any]) -> str:
    import difflib  # only when a name is unknown

    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (the targets are {', '.join(known)})."
    return f"there is no target {name!r}{hint}"
