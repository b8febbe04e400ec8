"""Reads a pipeline file into plain values plus the line and column of every key and value.

Schema errors, graph errors and run-time expression errors all point at ``path:line:col``, so the loader
keeps a position per key path. It composes the YAML node graph (libyaml when present) and builds the
values and the positions in one walk, refusing what a hostile file could use against us: oversized or
non-UTF-8 files, alias bombs, deep nesting and every tag beyond the plain YAML types (no object
construction is ever possible). Every problem found is collected, so a user fixes them in one go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.errors import Issue, Location, PipelineSyntaxError

KeyPath = tuple[str | int, ...]

MAX_BYTES: Final = 5 * 1024 * 1024
MAX_DEPTH: Final = 100
MAX_ALIAS_NODES: Final = 100_000

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG: Final = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MERGE, _TIMESTAMP, _VALUE = _TAG + "merge", _TAG + "timestamp", _TAG + "value"
_SEQ, _MAP = _TAG + "seq", _TAG + "map"
# Scalars whose text is the value: timestamps stay strings so the data is plain JSON, as the schema expects.
_TEXT_TAGS: Final = frozenset({_STR, _TIMESTAMP, _VALUE})
_KIND: Final = {_INT: "an integer", _FLOAT: "a number", _BOOL: "a boolean", _NULL: "null"}
_CONSTRUCTOR: Final = SafeConstructor()

# (key line, key column, value line, value column), 1-based; for a list item the key is the item itself.
_Position = tuple[int, int, int, int]


@dataclass(frozen=True)
class Document:
    """A loaded pipeline file: plain data and where each part of it is written."""

    path: str
    data: Any
    positions: Mapping[KeyPath, _Position] = field(default_factory=dict, repr=False, compare=False)

    def location(self, key_path: KeyPath) -> Location:
        """Where the value at ``key_path`` starts; the nearest enclosing value's position if it is absent."""
        position = self._nearest(key_path)
        return Location(self.path, position[2], position[3]) if position else Location(self.path)

    def key_location(self, key_path: KeyPath) -> Location:
        """Where the mapping key of ``key_path`` is written (the item itself for a list index)."""
        position = self._nearest(key_path)
        return Location(self.path, position[0], position[1]) if position else Location(self.path)

    def _nearest(self, key_path: KeyPath) -> _Position | None:
        for end in range(len(key_path), -1, -1):
            position = self.positions.get(key_path[:end])
            if position is not None:
                return position
        return None


def load_document(path: str | Path, *, text: str | None = None) -> Document:
    """Load the pipeline at ``path`` (or ``text``, named ``path`` in messages); raise all problems at once."""
    name = str(path)
    if text is None:
        text = _read_text(name)
    elif len(text) > MAX_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise PipelineSyntaxError.at(Location(name), _too_large(len(text.encode("utf-8", "surrogatepass"))))
    return _Builder(name, text).build()


def _read_text(name: str) -> str:
    try:
        with open(name, "rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
            if len(raw) > MAX_BYTES:
                # A device such as /dev/zero reports no size: what was read is the lower bound.
                size = max(stream.seek(0, 2) if stream.seekable() else 0, len(raw))
                raise PipelineSyntaxError.at(Location(name), _too_large(size))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PipelineSyntaxError.at(Location(name), f"the file cannot be read: {reason}.") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PipelineSyntaxError.at(_byte_location(name, raw, exc.start), _not_utf8(raw, exc.start)) from exc


def _too_large(size: int) -> str:
    limit = MAX_BYTES // 1024 // 1024
    if size <= MAX_BYTES + 1:  # only the limit is known to be passed (a device, or a file being written)
        return f"the file is larger than {limit} MiB; pipeline files are limited to {limit} MiB."
    return f"the file is {size / 1024 / 1024:.1f} MiB; pipeline files are limited to {limit} MiB."


def _byte_location(name: str, raw: bytes, offset: int) -> Location:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    column = len(raw[line_start:offset].decode("utf-8", "replace")) + 1
    return Location(name, raw.count(b"\n", 0, offset) + 1, column)


def _not_utf8(raw: bytes, offset: int) -> str:
    return f"the file is not UTF-8: byte 0x{raw[offset]:02x} cannot be decoded; save the file as UTF-8."


def _text_location(name: str, text: str, offset: int) -> Location:
    line_start = text.rfind("\n", 0, offset) + 1
    return Location(name, text.count("\n", 0, offset) + 1, offset - line_start + 1)


class _AliasBomb(Exception):
    """Raised inside the walk when aliases expand past the budget; the walk stops at once."""

    def __init__(self, location: Location) -> None:
        super().__init__(str(location))
        self.location = location


class _Builder:
    """One walk over the composed node graph: values, positions and issues together."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.issues: list[Issue] = []
        self.positions: dict[KeyPath, _Position] = {}
        self.seen: set[int] = set()
        self.open: set[int] = set()
        self.expanded = 0

    def build(self) -> Document:
        root = self._compose()
        if not isinstance(root, MappingNode):
            if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL):
                message = "the file is empty; a pipeline is a mapping with version, name and stages."
                self.issues.append(Issue(Location(self.name, 1, 1), message))
            else:
                what = "a list" if isinstance(root, SequenceNode) else "a single value"
                message = f"the file holds {what}; a pipeline is a mapping with version, name and stages."
                self.issues.append(Issue(self._at(root), message))
            raise PipelineSyntaxError(self.issues)
        mark = root.start_mark
        self.positions[()] = (mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 1)
        try:
            data = self._value(root, (), 1, False)
        except _AliasBomb as bomb:
            message = (
                f"aliases expand to more than {MAX_ALIAS_NODES:,} values by here; "
                "the file is refused as an alias bomb."
            )
            self.issues.append(Issue(bomb.location, message))
        if self.issues:
            raise PipelineSyntaxError(self.issues)
        return Document(self.name, data, self.positions)

    def _compose(self) -> Node | None:
        loader: yaml.SafeLoader | None = None
        try:
            loader = _Loader(self.text)  # the pure-Python reader checks characters here already
            if not loader.check_node():
                return None
            root: Node | None = loader.get_node()
            if loader.check_node():
                message = "the file holds more than one YAML document (one starts here); a pipeline is one."
                event = loader.peek_event()  # type: ignore[no-untyped-call]
                self.issues.append(Issue(self._mark_location(event.start_mark), message))
        except yaml.MarkedYAMLError as exc:
            raise PipelineSyntaxError([self._syntax_issue(exc)]) from exc
        except yaml.reader.ReaderError as exc:
            offset = exc.position
            if _Loader is not yaml.SafeLoader:  # libyaml counts bytes of the UTF-8 text, not characters
                offset = len(self.text.encode("utf-8")[:offset].decode("utf-8", "replace"))
            location = _text_location(self.name, self.text, offset)
            message = (
                f"the file holds the control character #x{exc.character:04x}, which YAML does not allow."
            )
            raise PipelineSyntaxError.at(location, message) from exc
        except UnicodeEncodeError as exc:  # only text handed in as str can hold a lone surrogate
            location = _text_location(self.name, self.text, exc.start)
            message = "the text holds a lone surrogate, which is not Unicode."
            raise PipelineSyntaxError.at(location, message) from exc
        except RecursionError as exc:  # pure-Python composer only; libyaml stops at depth 1000 itself
            raise PipelineSyntaxError.at(Location(self.name), _too_deep()) from exc
        finally:
            if loader is not None:
                loader.dispose()
        return root

    def _syntax_issue(self, exc: yaml.MarkedYAMLError) -> Issue:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        if "maximum nesting depth" in problem:
            return Issue(self._mark_location(mark), _too_deep())
        message = f"invalid YAML: {problem}"
        where = exc.context_mark
        if (
            exc.context
            and where is not None
            and (mark is None or (where.line, where.column) != (mark.line, mark.column))
        ):
            message += f" ({exc.context} at line {where.line + 1}, column {where.column + 1})"
        if "cannot start any token" in problem and mark is not None and self._char_at(mark) == "\t":
            message += "; indent with spaces, not tabs"
        return Issue(self._mark_location(mark), message + ".")

    def _char_at(self, mark: yaml.Mark) -> str:
        lines = self.text.splitlines()
        if mark.line < len(lines) and mark.column < len(lines[mark.line]):
            return lines[mark.line][mark.column]
        return ""

    def _mark_location(self, mark: yaml.Mark | None) -> Location:
        if mark is None:
            return Location(self.name)
        return Location(self.name, mark.line + 1, mark.column + 1)

    def _at(self, node: Node) -> Location:
        return self._mark_location(node.start_mark)

    def _value(self, node: Node, path: KeyPath, depth: int, aliased: bool) -> Any:
        if type(node) is ScalarNode:
            return self._scalar(node)
        if depth > MAX_DEPTH:
            self.issues.append(Issue(self._at(node), _too_deep()))
            return None
        key = id(node)
        if key in self.open:
            message = "an alias refers to a value that contains it; recursive structures are not allowed."
            self.issues.append(Issue(self._at(node), message))
            return None
        if key in self.seen:
            aliased = True
        else:
            self.seen.add(key)
        if aliased:
            self.expanded += len(node.value) + 1
            if self.expanded > MAX_ALIAS_NODES:
                raise _AliasBomb(self._at(node))
        self.open.add(key)
        try:
            if type(node) is MappingNode and node.tag == _MAP:
                return self._mapping(node, path, depth, aliased)
            if type(node) is SequenceNode and node.tag == _SEQ:
                return self._sequence(node, path, depth, aliased)
            self.issues.append(Issue(self._at(node), _bad_tag(node.tag)))
            return None
        finally:
            self.open.discard(key)

    def _sequence(self, node: SequenceNode, path: KeyPath, depth: int, aliased: bool) -> list[Any]:
        positions, result = self.positions, []
        for index, item in enumerate(node.value):
            item_path = (*path, index)
            mark = item.start_mark
            line, column = mark.line + 1, mark.column + 1
            positions[item_path] = (line, column, line, column)
            if type(item) is ScalarNode and item.tag in _TEXT_TAGS:
                result.append(item.value)
            else:
                result.append(self._value(item, item_path, depth + 1, aliased))
        return result

    def _mapping(self, node: MappingNode, path: KeyPath, depth: int, aliased: bool) -> dict[str, Any]:
        positions, issues = self.positions, self.issues
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if type(key_node) is not ScalarNode or key_node.tag not in _TEXT_TAGS:
                if type(key_node) is ScalarNode and key_node.tag == _MERGE:
                    merges.append(value_node)
                    continue
                issues.append(Issue(self._at(key_node), _bad_key(key_node)))
                if type(key_node) is not ScalarNode:
                    continue
            key: str = key_node.value
            key_mark, value_mark = key_node.start_mark, value_node.start_mark
            if key in first_line:
                message = f"duplicate key '{key}' (first defined at line {first_line[key]})."
                issues.append(Issue(self._at(key_node), message))
            else:
                first_line[key] = key_mark.line + 1
            item_path = (*path, key)
            positions[item_path] = (
                key_mark.line + 1,
                key_mark.column + 1,
                value_mark.line + 1,
                value_mark.column + 1,
            )
            if type(value_node) is ScalarNode and value_node.tag in _TEXT_TAGS:
                result[key] = value_node.value
            else:
                result[key] = self._value(value_node, item_path, depth + 1, aliased)
        if merges:
            result = self._merged(merges, result, path, depth, aliased)
        return result

    def _merged(
        self, merges: list[Node], own: dict[str, Any], path: KeyPath, depth: int, aliased: bool
    ) -> dict[str, Any]:
        """Apply ``<<`` keys as PyYAML does: earlier sources win over later ones, own keys over all."""
        sources: list[Node] = []
        for merge in merges:
            items = merge.value if type(merge) is SequenceNode else [merge]
            for source in items:
                if type(source) is MappingNode:
                    sources.append(source)
                else:
                    message = (
                        "a merge key '<<' takes a mapping or a list of mappings (usually an alias, *name)."
                    )
                    self.issues.append(Issue(self._at(source), message))
        own_positions = {key: self.positions[(*path, key)] for key in own}
        result: dict[str, Any] = {}
        for source in reversed(sources):
            merged = self._value(source, path, depth, aliased)
            if isinstance(merged, dict):
                result.update(merged)
        result.update(own)
        for key, position in own_positions.items():
            self.positions[(*path, key)] = position
        return result

    def _scalar(self, node: ScalarNode) -> Any:
        tag, text = node.tag, node.value
        if tag in _TEXT_TAGS:
            return text
        if tag == _NULL:
            return None
        if tag not in _KIND:
            self.issues.append(Issue(self._at(node), _bad_tag(tag)))
            return None
        try:
            if tag == _INT:
                if text.isdigit() and (text[0] != "0" or len(text) == 1):
                    return int(text)
                return _CONSTRUCTOR.construct_yaml_int(node)
            if tag == _FLOAT:
                return _CONSTRUCTOR.construct_yaml_float(node)
            return _CONSTRUCTOR.construct_yaml_bool(node)
        except (ValueError, KeyError) as exc:
            # An explicit tag on the wrong text (!!int abc), or an integer past Python's 4,300-digit limit.
            shown = text if len(text) <= 40 else text[:37] + "..."
            if isinstance(exc, ValueError) and "digits" in str(exc):
                message = f"the integer '{shown}' has more than 4,300 digits, more than qfrun reads."
            else:
                message = (
                    f"'{shown}' cannot be read as {_KIND[tag]}, as its tag {_shown_tag(tag)} says it is."
                )
            self.issues.append(Issue(self._at(node), message))
            return None


def _too_deep() -> str:
    return f"values are nested more than {MAX_DEPTH} levels deep; a pipeline never needs that."


def _shown_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _bad_tag(tag: str) -> str:
    return (
        f"the tag '{_shown_tag(tag)}' is not allowed; pipeline files hold plain values only "
        "(strings, numbers, booleans, null, lists and mappings)."
    )


def _bad_key(node: Node) -> str:
    if type(node) is not ScalarNode:
        what = "a list" if type(node) is SequenceNode else "a mapping"
        return f"a mapping key must be a string, not {what}."
    kind = _KIND.get(node.tag)
    if kind is None:
        return _bad_tag(node.tag)
    text = node.value
    return f"the key {text} is read as {kind}, not a string; quote it ('{text}') to use it as a name."
