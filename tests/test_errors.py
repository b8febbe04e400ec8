"""runner.errors: the tree its docstring draws is the tree it defines, and no class is dead weight."""

from __future__ import annotations

import ast
import inspect
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
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
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
