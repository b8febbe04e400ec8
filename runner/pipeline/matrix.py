"""``matrix:`` fan-out: one stage declared, one stage per combination of its values.

Expansion happens on the loaded document, before the schema and every other check, so that everything
downstream (schema, references, dag, decide, executor, state) sees ordinary stages; each member keeps the
name of its ``family`` and its ``matrix`` values. Members are located at the family's lines, so an error in
a member points at what the user wrote.

The semantics are GitHub Actions' (``jobs.<id>.strategy.matrix``): the lists make every combination, the
first key varying slowest; ``exclude`` removes each combination that an entry matches partially (every key
the entry names is equal); then each ``include`` entry is added to every remaining combination whose original
values it does not overwrite (values added by an earlier entry may be overwritten), and becomes a combination
of its own when it fits none. Entries are added to the combinations of the lists only, never to one that an
earlier entry created.

A member's id is ``<family>@<key>=<value>,...`` with the keys that tell members apart (the list keys; all
keys of a combination that ``include`` created on its own) in alphabetical order, so that reordering the
keys of ``matrix:`` keeps every id (and the state recorded under it). Its values are restricted to letters,
digits, '.', '_' and '-' so that the id is safe as a file name, on the command line and in expressions.

Expressions that read only ``matrix`` are evaluated here, so that ``dataset: ${{ matrix.dataset }}`` is an
ordinary dataset id for every later check; a field whose whole value is such an expression and gives null
(the member has no such key) is left out, which lets members differ in the fields they set. Expressions
that also read ``stages``, ``vars`` or ``env`` stay and see the member's ``matrix`` when the stage runs.
A stage field that lists stages (``models: [base, compress]``) and ``needs:`` take a family's id for all of
its members, in order.
"""

from __future__ import annotations

import itertools
import re
from collections import ChainMap
from collections.abc import Iterator, Mapping
from typing import Any, Final

from runner.errors import Issue
from runner.pipeline import expr
from runner.pipeline.expansion import SEPARATOR, Expansion, Member
from runner.pipeline.yamlio import Document, KeyPath

__all__ = ["SEPARATOR", "Expansion", "Member", "expand", "family_of", "member_id"]

# GitHub caps a matrix at 256 jobs per run. Here every member is a platform task (compute that is paid for)
# and a stage of the plan, the graph and the state file: a typo such as a list of 1,000 values should fail
# validation, not create a thousand tasks.
MAX_MEMBERS: Final = 256
# The lists are multiplied before ``exclude`` removes anything; past this many the product is refused
# before it is built (ten lists of ten values would otherwise take memory for ten billion combinations).
MAX_COMBINATIONS: Final = 4096
RESERVED: Final = ("include", "exclude")
KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")  # readable as matrix.<key> in an expression
ID_VALUE: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def expand(document: Document) -> Expansion:
    """The document with every ``matrix:`` stage replaced by its members, or the problems of its matrices."""
    stages = document.data.get("stages") if isinstance(document.data, Mapping) else None
    if not isinstance(stages, Mapping):
        return Expansion(document)
    issues = [
        Issue(
            document.key_location(("stages", stage_id)),
            f"stages.{stage_id}: '{SEPARATOR}' marks the members of a matrix stage; declare the stage "
            f"{family_of(stage_id)!r} with a matrix: instead.",
        )
        for stage_id in stages
        if isinstance(stage_id, str) and SEPARATOR in stage_id
    ]
    if not any(isinstance(body, Mapping) and "matrix" in body for body in stages.values()):
        return Expansion(document, issues=issues)
    members: dict[str, Member] = {}
    families: dict[str, tuple[str, ...]] = {}
    expanded: dict[str, Any] = {}
    for stage_id, body in stages.items():
        if not (isinstance(body, Mapping) and "matrix" in body):
            expanded[stage_id] = body
            continue
        family = _Family(document, str(stage_id), body)
        found = family.members()
        issues += family.issues
        families[stage_id] = tuple(member.id for member, _ in found)
        for member, member_body in found:
            members[member.id] = member
            expanded[member.id] = member_body
    if issues:
        return Expansion(document, issues=issues)
    positions: dict[KeyPath, Any] = {}
    for key_path, position in document.positions.items():
        if len(key_path) >= 2 and key_path[0] == "stages" and key_path[1] in families:
            for member_id in families[str(key_path[1])]:
                positions[("stages", member_id, *key_path[2:])] = position
    for stage_id, body in list(expanded.items()):
        expanded[stage_id] = _with_members(document, stage_id, body, families, members, positions)
    data = {**document.data, "stages": expanded}
    located = Document(document.path, data, ChainMap(positions, dict(document.positions)))
    return Expansion(located, members, families)


def member_id(family: str, values: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    return family + SEPARATOR + ",".join(f"{key}={_text(values[key])}" for key in sorted(keys))


def family_of(stage_id: str) -> str | None:
    return stage_id.split(SEPARATOR, 1)[0] if SEPARATOR in stage_id else None


class _Family:
    """One ``matrix:`` stage: its combinations checked, then its members built."""

    def __init__(self, document: Document, stage_id: str, body: Mapping[str, Any]) -> None:
        self.document, self.id, self.body = document, stage_id, body
        self.where: KeyPath = ("stages", stage_id, "matrix")
        self.issues: list[Issue] = []

    def fail(self, key_path: KeyPath, message: str) -> None:
        dotted = ".".join(str(part) for part in key_path)
        self.issues.append(Issue(self.document.location(key_path), f"{dotted}: {message}"))

    def members(self) -> list[tuple[Member, dict[str, Any]]]:
        matrix = self.body["matrix"]
        if not isinstance(matrix, Mapping):
            self.fail(self.where, "a matrix is a mapping of keys to lists of values, with include/exclude.")
            return []
        lists = {k: v for k, v in matrix.items() if k not in RESERVED}
        lists_ok = self._lists_ok(lists)
        include = self._entries(matrix, "include", lists)
        exclude = self._entries(matrix, "exclude", lists)
        if not lists_ok or include is None or exclude is None:
            return []
        size = 1
        for values in lists.values():
            size *= len(values)
        if lists and size > MAX_COMBINATIONS:
            self.fail(
                self.where,
                f"the lists make {size} combinations; at most {MAX_COMBINATIONS} are expanded (and at most "
                f"{MAX_MEMBERS} kept), since each member is a stage and a platform task.",
            )
            return []
        combos = self._combinations(lists, include, exclude)
        if combos is None:
            return []
        if len(combos) > MAX_MEMBERS:
            self.fail(
                self.where,
                f"the matrix makes {len(combos)} stages; the limit is {MAX_MEMBERS} (as GitHub Actions), "
                "since each member is a platform task paid for and a stage held in memory, plans and state.",
            )
            return []
        return self._build(lists, include, combos)

    def _lists_ok(self, lists: Mapping[str, Any]) -> bool:
        ok = True
        for key, values in lists.items():
            at = (*self.where, key)
            if not isinstance(key, str) or not KEY.fullmatch(key):
                self.fail(
                    at, f"{key!r} is not a matrix key: letters, digits and '_', not starting with a digit."
                )
                ok = False
            elif not isinstance(values, list):
                self.fail(at, f"matrix.{key} must be a list of values.")
                ok = False
            elif not values:
                self.fail(at, f"matrix.{key} is empty, so the stage would have no members.")
                ok = False
            else:
                seen: list[Any] = []
                for index, value in enumerate(values):
                    ok = self._id_value_ok((*at, index), key, value) and ok
                    if any(_same(value, other) for other in seen):
                        self.fail((*at, index), f"{_text(value)} is listed twice, a duplicate combination.")
                        ok = False
                    seen.append(value)
        return ok

    def _id_value_ok(self, at: KeyPath, key: str, value: Any) -> bool:
        if isinstance(value, (str, int, float, bool)) and ID_VALUE.fullmatch(_text(value)):
            return True
        self.fail(
            at,
            f"the value {value!r} of matrix.{key} names a member's stage id, so it must be a string or "
            "number of 1 to 64 letters, digits, '.', '_' or '-'.",
        )
        return False

    def _entries(
        self, matrix: Mapping[str, Any], name: str, lists: Mapping[str, Any]
    ) -> list[dict[str, Any]] | None:
        entries = matrix.get(name, [])
        at = (*self.where, name)
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) and e for e in entries):
            self.fail(at, f"matrix.{name} must be a list of mappings of matrix keys to values.")
            return None
        ok = True
        for index, entry in enumerate(entries):
            for key, value in entry.items():
                if not isinstance(key, str) or not KEY.fullmatch(key) or key in RESERVED:
                    self.fail((*at, index, key), f"{key!r} is not a matrix key.")
                    ok = False
                elif key in lists or name == "exclude":
                    ok = self._id_value_ok((*at, index, key), key, value) and ok
        return [dict(entry) for entry in entries] if ok else None

    def _combinations(
        self, lists: Mapping[str, list[Any]], include: list[dict[str, Any]], exclude: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], tuple[str, ...]]] | None:
        """Each combination with its id keys, in GitHub's order; None when the matrix is wrong."""
        keys = tuple(lists)
        product = [dict(zip(keys, values, strict=True)) for values in itertools.product(*lists.values())]
        if not lists:
            product = []
        kept = list(product)
        for index, entry in enumerate(exclude):
            if not any(_matches(combo, entry) for combo in product):
                self.fail(
                    (*self.where, "exclude", index),
                    f"this exclude matches no combination of the lists ({_shown(entry)}).",
                )
            kept = [combo for combo in kept if not _matches(combo, entry)]
        if self.issues:
            return None
        combos: list[tuple[dict[str, Any], tuple[str, ...]]] = [(combo, keys) for combo in kept]
        originals = [dict(combo) for combo in kept]
        for index, entry in enumerate(include):
            fits = [i for i, original in enumerate(originals) if _fits(original, entry)]
            for i in fits:
                combos[i][0].update(entry)
            if fits:
                continue
            own = tuple(key for key in keys if key in entry) or tuple(entry)
            for key in own:
                if not self._id_value_ok((*self.where, "include", index, key), key, entry[key]):
                    return None
            if any(combo == entry for combo, _ in combos[len(originals) :]):
                self.fail(
                    (*self.where, "include", index),
                    f"this include repeats a combination listed above ({_shown(entry)}).",
                )
            combos.append((dict(entry), own))
        if not combos and not self.issues:
            self.fail(self.where, "the matrix has no combination left: its lists are empty or all excluded.")
        return None if self.issues else combos

    def _build(
        self,
        lists: Mapping[str, list[Any]],
        include: list[dict[str, Any]],
        combos: list[tuple[dict[str, Any], tuple[str, ...]]],
    ) -> list[tuple[Member, dict[str, Any]]]:
        all_keys = list(dict.fromkeys([*lists, *(key for entry in include for key in entry)]))
        template = {key: value for key, value in self.body.items() if key != "matrix"}
        read = _matrix_keys_read(template)
        built: list[tuple[Member, dict[str, Any]]] = []
        by_id: dict[str, int] = {}
        for index, (combo, own) in enumerate(combos):
            values = {key: combo.get(key) for key in all_keys}
            member = Member(member_id(self.id, combo, own), self.id, values)
            if member.id in by_id:
                self.fail(
                    self.where, f"two combinations make the stage id {member.id!r}, a duplicate combination."
                )
                return []
            by_id[member.id] = index
            built.append((member, _substituted(template, values)))
        for index, entry in enumerate(include):
            for key in entry:
                if key not in read and key not in lists:
                    self.fail(
                        (*self.where, "include", index, key),
                        f"no field of stages.{self.id} reads ${{{{ matrix.{key} }}}}, "
                        "so this key is never used.",
                    )
        seen: dict[str, str] = {}
        for member, member_body in built:
            shape = repr((member_body, {k: v for k, v in member.values.items() if k in read}))
            if shape in seen:
                unread = [key for key in lists if key not in read]
                at = (*self.where, unread[0]) if unread else self.where
                self.fail(
                    at,
                    f"{seen[shape]} and {member.id} would do the same work"
                    + (f": no field reads ${{{{ matrix.{unread[0]} }}}}." if unread else "."),
                )
                break
            seen[shape] = member.id
        return [] if self.issues else built


def _matches(combo: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    return all(key in combo and _same(combo[key], value) for key, value in entry.items())


def _fits(original: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    """Whether an include entry overwrites none of a combination's original values."""
    return all(key not in original or _same(original[key], value) for key, value in entry.items())


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b  # YAML's 1 and true, or 1 and 1.0, are different values


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _shown(entry: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={_text(value)}" for key, value in entry.items())


def _matrix_keys_read(value: Any) -> set[str]:
    found: set[str] = set()
    for source in _sources(value):
        try:
            found |= {ref.name for ref in expr.references(source) if ref.root == "matrix"}
        except expr.ExpressionError:
            continue  # reported by the checks of the member
    return found


def _sources(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from expr.find(value) if "${{" in value else ()
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _sources(item)
    elif isinstance(value, list):
        for item in value:
            yield from _sources(item)


_OMIT: Final = object()


def _substituted(value: Any, values: Mapping[str, Any]) -> Any:
    """``value`` with every expression that reads only ``matrix`` evaluated for this member."""
    if isinstance(value, str):
        return _rendered(value, values)
    if isinstance(value, Mapping):
        done = {key: _substituted(item, values) for key, item in value.items()}
        return {key: item for key, item in done.items() if item is not _OMIT}
    if isinstance(value, list):
        return [None if item is _OMIT else item for item in (_substituted(i, values) for i in value)]
    return value


def _rendered(text: str, values: Mapping[str, Any]) -> Any:
    if "${{" not in text:
        return text
    try:
        sources = expr.find(text)
        if text.count("${{") != len(sources):
            return text
        roots = {ref.root for source in sources for ref in expr.references(source)}
        if not roots or roots != {"matrix"}:
            return text  # evaluated when the stage runs, with this member's matrix in its context
        result = expr.render(text, {"matrix": values})
    except expr.ExpressionError:
        return text  # the member's checks report it at its line
    whole = expr.WHOLE.fullmatch(text)
    return _OMIT if result is None and whole is not None else result


def _with_members(
    document: Document,
    stage_id: str,
    body: Any,
    families: Mapping[str, tuple[str, ...]],
    members: Mapping[str, Member],
    positions: dict[KeyPath, Any],
) -> Any:
    """A stage whose ``needs:`` or stage lists name a family, with the family's members in its place."""
    if not isinstance(body, Mapping):
        return body
    from runner.stages import STAGE_TYPES

    stage_type = STAGE_TYPES.get(str(body.get("type")))
    lists: set[KeyPath] = {("needs",)}
    if stage_type is not None:
        lists |= {ref.path[:-1] for ref in stage_type.stage_refs(body) if isinstance(ref.path[-1], int)}
    changed = dict(body)
    written_at = stage_id if stage_id not in members else members[stage_id].family
    for path in sorted(lists, key=len):
        container = _at(changed, path)
        if not isinstance(container, list) or not any(
            isinstance(item, str) and item in families for item in container
        ):
            continue
        spliced: list[Any] = []
        origin: list[int] = []
        for index, item in enumerate(container):
            names = families.get(item, (item,)) if isinstance(item, str) else (item,)
            spliced += names
            origin += [index] * len(names)
        changed = _put(changed, path, spliced)
        base = ("stages", written_at, *path)
        for index, was in enumerate(origin):
            position = document.positions.get((*base, was))
            if position is not None:
                positions[("stages", stage_id, *path, index)] = position
    return changed


def _at(value: Any, path: KeyPath) -> Any:
    for key in path:
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
            value = value[key]
        else:
            return None
    return value


def _put(value: Any, path: KeyPath, new: Any) -> Any:
    """A copy of ``value`` with ``new`` at ``path`` (the containers on the way copied, the rest shared)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, Mapping):
        return {**value, head: _put(value[head], rest, new)}
    copy = list(value)
    copy[head] = _put(copy[head], rest, new)  # type: ignore[index]
    return copy
