"""runner.errors: the tree its docstring draws is the tree it defines, and no class is dead weight."""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import runner
from runner import errors

SOURCE = Path(runner.__file__).parent
CLASSES = {
    name: cls
    for name, cls in vars(errors).items()
    if inspect.isclass(cls) and issubclass(cls, Exception) and cls.__module__ == errors.__name__
}


def _raised_names() -> set[str]:
    """Every exception class runner/ raises or builds to raise later (``raise X(...)``, ``raise X.at(...)``,
    ``raise X``, or ``X(...)`` handed to the retry loop), outside errors.py itself."""
    names: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        if path.name == "errors.py" and path.parent == SOURCE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            target: ast.expr | None = None
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            elif isinstance(node, ast.Call):
                target = node.func
            if isinstance(target, ast.Attribute):
                names.add(target.attr)  # module.X(...)
                if isinstance(target.value, ast.Name):
                    target = target.value  # X.at(...)
            if isinstance(target, ast.Name):
                names.add(target.id)
    return names


def test_every_error_class_is_raised_somewhere() -> None:
    never = sorted(set(CLASSES) - _raised_names() - {"QfrunError"})  # the base is only ever caught
    assert never == []


def test_the_drawn_tree_names_every_class_with_its_exit_code() -> None:
    doc = errors.__doc__ or ""
    for name, cls in CLASSES.items():
        assert name in doc, name
        if issubclass(cls, errors.QfrunError) and cls is not errors.QfrunError:
            line = next(line for line in doc.splitlines() if f" {name} " in line)
            assert f" {cls.exit_code} " in line, line


# -- the drawings against the code: every exception class of runner/, where it is drawn, under its base ------

_BUILTIN_ROOTS = frozenset({"Exception", "ValueError", "AssertionError"})
_NODE = re.compile(
    r"^    (?P<bars>(?:[│ ]   )*)(?:[├└]── )?(?P<name>\w+)(?P<above> \(above\))?(?:\s{2,}(?P<rest>.*))?$"
)


@dataclass(frozen=True)
class Drawn:
    name: str
    parent: str | None
    columns: str


def _drawn() -> dict[str, Drawn]:
    """Every class the docstring's drawings name, with the class drawn above it (None for a root)."""
    doc = errors.__doc__ or ""
    found: dict[str, Drawn] = {}
    for block in doc.split("::\n\n")[1:]:
        stack: list[str] = []
        for line in block.split("\n\n")[0].splitlines():
            match = _NODE.match(line)
            assert match is not None, f"a line of the drawing this test cannot read: {line!r}"
            depth = len(match["bars"]) // 4 + (1 if "── " in line else 0)
            del stack[depth:]
            name = match["name"]
            if depth == 0 and (match["above"] or name in _BUILTIN_ROOTS or name == "QfrunError"):
                stack.append(name)
                if name == "QfrunError":
                    found[name] = Drawn(name, None, match["rest"] or "")
                continue
            assert name not in found, f"{name} is drawn twice"
            found[name] = Drawn(name, stack[-1] if stack else None, match["rest"] or "")
            stack.append(name)
    return found


def _exception_classes() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every class runner/ defines that derives from an exception: name -> (module, base names)."""
    defined: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for path in SOURCE.rglob("*.py"):
        module = (
            path.relative_to(SOURCE).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
        )
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = tuple(
                    b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases
                )
                defined.setdefault(node.name, []).append((module, bases))

    def is_exception(name: str) -> bool:
        if name in _BUILTIN_ROOTS or name == "BaseException":
            return True
        return any(is_exception(base) for _, bases in defined.get(name, []) for base in bases)

    found = {name: places for name, places in defined.items() if is_exception(name)}
    assert [name for name, places in found.items() if len(places) > 1] == []  # one drawing, one name each
    return {name: places[0] for name, places in found.items()}


def test_the_drawings_name_every_exception_class_of_runner_once_under_its_base_and_module() -> None:
    drawn, classes = _drawn(), _exception_classes()
    assert sorted(set(classes) - set(drawn)) == []  # defined but not drawn
    assert sorted(set(drawn) - set(classes)) == []  # drawn but not defined
    for name, (module, bases) in classes.items():
        assert drawn[name].parent in bases or (drawn[name].parent is None and name == "QfrunError"), name
        if not issubclass(getattr(errors, name, Exception), errors.QfrunError):
            assert drawn[name].columns.split()[0] == module, (
                f"{name} is drawn in {drawn[name].columns.split()[0]}"
            )


def test_every_exception_class_of_runner_is_raised_somewhere() -> None:
    raised = _raised_names() | {  # errors.py's own are raised elsewhere; count them from every module
        node.exc.func.id if isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name) else ""
        for node in ast.walk(ast.parse((SOURCE / "errors.py").read_text(encoding="utf-8")))
        if isinstance(node, ast.Raise) and node.exc is not None
    }
    never = sorted(set(_exception_classes()) - raised - {"QfrunError"})
    assert never == []


def test_the_drawing_reader_sees_a_class_drawn_under_the_wrong_base() -> None:
    """The walk above can fail: a drawing with a class moved under another base is read as such."""
    doc = errors.__doc__ or ""
    moved = doc.replace("    │   │   └── PlatformQueueFull   5", "    ├── PlatformQueueFull           5", 1)
    assert moved != doc
    original = errors.__doc__
    try:
        errors.__doc__ = moved
        assert _drawn()["PlatformQueueFull"].parent == "QfrunError"
    finally:
        errors.__doc__ = original
    assert _drawn()["PlatformQueueFull"].parent == "PlatformRateLimited"
