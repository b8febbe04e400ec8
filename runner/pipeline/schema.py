"""Validates a loaded pipeline against the JSON Schema of format 1; schema_errors words the errors.

jsonschema, and the wording of its errors, are imported only for a file that has errors: a compiled yes/no
check of the same schema (runner.pipeline.schemacheck) answers for valid files, so ``qfrun validate`` on a
good pipeline (and ``qfrun --help``) never pays for importing or compiling them.
"""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from runner.errors import Issue
from runner.pipeline.schemacheck import Check, compile_check
from runner.stages.base import CONTROL_KEYS
from runner.stages.registry import plugin_schemas

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

    from runner.pipeline.yamlio import Document

FORMAT_VERSION: Final = 1


def schema_text() -> str:
    """The text of ``pipeline.schema.json`` as shipped inside the package."""
    # Beside the runner.schemas package's own file (installed, or mapped in by an editable install), not
    # through importlib.resources, which imports tempfile, shutil and the compression modules on every
    # `qfrun validate` to read one file that qfrun never ships zipped.
    # By name: runner.schemas is the top-level schemas/ folder mapped in by setup.cfg, which a type checker
    # reading the source tree cannot see.
    schemas = importlib.import_module("runner.schemas")
    return (Path(str(schemas.__file__)).parent / "pipeline.schema.json").read_text(encoding="utf-8")


def pipeline_schema() -> dict[str, Any]:
    """The pipeline schema, with the stage types that plugins registered (runner.stages.registry)."""
    return _schema(_plugins())


def _plugins() -> tuple[tuple[str, str], ...]:
    """The registered plugins' stage schemas, as a hashable key for the caches below."""
    return tuple((name, json.dumps(schema, sort_keys=True)) for name, schema in plugin_schemas())


@functools.cache
def _schema(plugins: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The schema file parsed once (per set of plugins), each plugin's stage type added to it: its name to
    ``stageType``'s values, and its mapping's schema (with the keys every stage takes: needs, if, ...) to
    ``stage``'s per-type branches."""
    schema: dict[str, Any] = json.loads(schema_text())
    defs = schema["$defs"]
    control = {key: value for key, value in defs["modelStage"]["properties"].items() if key in CONTROL_KEYS}
    for name, text in plugins:
        key = f"{name}Stage"
        stage = json.loads(text)
        stage["properties"] = {**control, **stage.get("properties", {})}  # needs, if, ... as every stage has
        defs[key] = stage
        defs["stageType"]["enum"].append(name)
        branch = {"if": {"properties": {"type": {"const": name}}, "required": ["type"]}}
        defs["stage"]["allOf"].append({**branch, "then": {"$ref": f"#/$defs/{key}"}})
    return schema


@functools.cache
def _inlined_schema(plugins: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    # Local $refs inlined: the schema has no recursion, and resolving refs was a quarter of the time
    # spent on a 5,000-stage pipeline. Error paths stay the same (jsonschema leaves "$ref" out of them).
    schema = _schema(plugins)
    return {key: _inline(value, schema) for key, value in schema.items() if key != "$defs"}


@functools.cache
def _validator(plugins: tuple[tuple[str, str], ...]) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_inlined_schema(plugins))


@functools.cache
def _is_valid(plugins: tuple[tuple[str, str], ...]) -> Check:
    return compile_check(_inlined_schema(plugins))


def _inline(node: Any, root: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            rest = {key: _inline(value, root) for key, value in node.items() if key != "$ref"}
            return {**_inline(pointer(root, node["$ref"]), root), **rest}
        return {key: _inline(value, root) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, root) for item in node]
    return node


def schema_issues(doc: Document) -> list[Issue]:
    """Every schema problem of ``doc``, each placed at its key or value and worded with a hint, sorted."""
    version = doc.data.get("version") if isinstance(doc.data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        # A newer format's fields would only add noise: say the one thing that matters.
        return [version_issue(doc, version)]
    plugins = _plugins()
    if _is_valid(plugins)(doc.data):
        # The common case: a valid file never pays for importing jsonschema (most of `qfrun validate`'s time).
        return []
    from runner.pipeline.schema_errors import Renderer  # the wording: only a file with errors needs it

    renderer = Renderer(doc)
    issues = [
        issue for error in _validator(plugins).iter_errors(doc.data) for issue in renderer.render(error)
    ]
    return sorted(set(issues))


def version_issue(doc: Document, version: Any) -> Issue:
    from runner.pipeline.schema_errors import value_text

    message = (
        f"version: this qfrun reads pipeline format {FORMAT_VERSION}; the file says {value_text(version)}."
    )
    return Issue(doc.location(("version",)), message)


def pointer(root: dict[str, Any], ref: str) -> Any:
    """The node at a local ``$ref`` (``#/$defs/stage``)."""
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node
