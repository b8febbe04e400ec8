"""The syntax tree of the common ``${{ ... }}`` expressions, read without importing Jinja2.

``qfrun validate`` only needs to know what an expression reads (runner.pipeline.expr.references), and
importing Jinja2's parser costs a good part of the command's start-up. This reads a strict subset of
Jinja2's expression grammar with Jinja2's own precedence (names, constants, lists, ``.attr`` and ``[key]``,
filters with positional arguments, arithmetic, ``~``, comparisons, ``in``, ``and``/``or``/``not``,
``x if c else y`` and parentheses) into the same tree Jinja2 builds: ``Tree`` holds the node kind, its
payload and its children in Jinja2's field order, so walks see them in the same order. Whatever lies outside
the subset (calls, tests, tuples, slices, escapes, unusual numbers) gives ``None``, and the caller asks
Jinja2, which stays the authority for every message. tests/pipeline/test_expr_quick.py checks on thousands
of generated expressions that each tree read here is the one Jinja2 reads.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

# Jinja2's node kinds (the class names of jinja2.nodes) whose payload the checks read.
NAME, CONST, GETATTR, GETITEM, FILTER = "Name", "Const", "Getattr", "Getitem", "Filter"


@dataclass(frozen=True)
class Tree:
    """One node: Jinja2's class name for it, what it holds (a name, attribute or constant), its children."""

    kind: str
    payload: Any = None
    children: tuple[Tree, ...] = ()

    def walk(self) -> list[Tree]:
        """This node and every node under it, parents first, children in order (Jinja2's ``find_all``)."""
        found: list[Tree] = []
        stack = [self]
        while stack:
            node = stack.pop()
            found.append(node)
            stack.extend(reversed(node.children))
        return found


class _Unsupported(Exception):
    """Outside the subset: Jinja2 decides (and words any error)."""


_TOKEN: Final = re.compile(
    r"\s*(?:"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<number>[0-9]+(?:\.[0-9]+)?)"
    r"|'(?P<single>[^'\\\r\n]*)'"
    r'|"(?P<double>[^"\\\r\n]*)"'
    r"|(?P<op>\*\*|//|==|!=|<=|>=|[-+*/%~<>()\[\].,|])"
    r")"
)
_INTEGER: Final = re.compile(r"0|[1-9][0-9]*")
_FLOAT: Final = re.compile(r"(?:0|[1-9][0-9]*)\.[0-9]+")
_KEYWORDS: Final = frozenset({"and", "or", "not", "in", "is", "if", "else"})
_CONSTANTS: Final = {"true": True, "True": True, "false": False, "False": False, "none": None, "None": None}
_COMPARE: Final = {"==": "eq", "!=": "ne", "<": "lt", "<=": "lteq", ">": "gt", ">=": "gteq"}
_MATH1: Final = {"+": "Add", "-": "Sub"}
_MATH2: Final = {"*": "Mul", "/": "Div", "//": "FloorDiv", "%": "Mod"}
_POW: Final = {"**": "Pow"}
# (kind, text): kind is "name", "string", "number" or "op"; a string's text is its value.
_Token = tuple[str, Any]
_END: Final[_Token] = ("end", None)


def quick_tree(source: str) -> Tree | None:
    """The tree Jinja2 would parse from ``source``, or None when ``source`` lies outside the subset."""
    try:
        tokens = _tokens(source)
        parser = _Parser(tokens)
        tree = parser.expression()
        if parser.peek() != _END:
            return None
        return tree
    except _Unsupported:
        return None


def _tokens(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position, end = 0, len(source)
    while True:
        while position < end and source[position].isspace():
            position += 1
        if position == end:
            return tokens
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:
            raise _Unsupported
        position = match.end()
        following = source[position : position + 1]
        if match.group("name") is not None:
            if following and not following.isascii():
                raise _Unsupported  # Jinja2's names take more letters than ASCII's
            tokens.append(("name", match.group("name")))
        elif match.group("number") is not None:
            text = match.group("number")
            previous = tokens[-1] if tokens else _END
            if previous == ("op", ".") or (following and (following.isalnum() or following in "._")):
                raise _Unsupported  # x.0, 1e5, 1_000, 0x1: Jinja2's own readings
            if _INTEGER.fullmatch(text):
                tokens.append(("number", int(text)))
            elif _FLOAT.fullmatch(text):
                tokens.append(("number", float(text)))
            else:
                raise _Unsupported
        elif match.group("op") is not None:
            tokens.append(("op", match.group("op")))
        else:
            single = match.group("single")
            tokens.append(("string", single if single is not None else match.group("double")))


class _Parser:
    """Jinja2's parser (jinja2/parser.py, ``parse_condexpr`` down to ``parse_primary``) on the subset."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self, ahead: int = 0) -> _Token:
        index = self.index + ahead
        return self.tokens[index] if index < len(self.tokens) else _END

    def next(self) -> _Token:
        token = self.peek()
        self.index += 1
        return token

    def skip(self, kind: str, text: str) -> bool:
        if self.peek() == (kind, text):
            self.index += 1
            return True
        return False

    def expect(self, kind: str, text: str) -> None:
        if not self.skip(kind, text):
            raise _Unsupported

    def expression(self) -> Tree:  # parse_condexpr
        expr1 = self.or_()
        while self.skip("name", "if"):
            expr2 = self.or_()
            if not self.skip("name", "else"):
                raise _Unsupported  # Jinja2 allows it without else; not worth the subset
            expr3 = self.expression()
            expr1 = Tree("CondExpr", None, (expr2, expr1, expr3))
        return expr1

    def or_(self) -> Tree:
        left = self.and_()
        while self.skip("name", "or"):
            left = Tree("Or", None, (left, self.and_()))
        return left

    def and_(self) -> Tree:
        left = self.not_()
        while self.skip("name", "and"):
            left = Tree("And", None, (left, self.not_()))
        return left

    def not_(self) -> Tree:
        if self.skip("name", "not"):
            return Tree("Not", None, (self.not_(),))
        return self.compare()

    def compare(self) -> Tree:
        expr = self.math1()
        operands: list[Tree] = []
        while True:
            kind, text = self.peek()
            if kind == "op" and text in _COMPARE:
                self.next()
                operands.append(Tree("Operand", _COMPARE[text], (self.math1(),)))
            elif self.skip("name", "in"):
                operands.append(Tree("Operand", "in", (self.math1(),)))
            elif self.peek() == ("name", "not") and self.peek(1) == ("name", "in"):
                self.index += 2
                operands.append(Tree("Operand", "notin", (self.math1(),)))
            else:
                break
        return Tree("Compare", None, (expr, *operands)) if operands else expr

    def math1(self) -> Tree:
        return self.operations(self.concat, _MATH1)

    def concat(self) -> Tree:
        parts = [self.math2()]
        while self.skip("op", "~"):
            parts.append(self.math2())
        return parts[0] if len(parts) == 1 else Tree("Concat", None, tuple(parts))

    def math2(self) -> Tree:
        return self.operations(self.pow, _MATH2)

    def pow(self) -> Tree:
        return self.operations(lambda: self.unary(True), _POW)

    def operations(self, operand: Callable[[], Tree], kinds: Mapping[str, str]) -> Tree:
        """``operand (op operand)*`` grouped from the left, as Jinja2 groups ``+ -``, ``* / // %``, ``**``."""
        left = operand()
        while self.peek()[0] == "op" and self.peek()[1] in kinds:
            left = Tree(kinds[self.next()[1]], None, (left, operand()))
        return left

    def unary(self, with_filter: bool) -> Tree:
        if self.skip("op", "-"):
            node = Tree("Neg", None, (self.unary(False),))
        elif self.skip("op", "+"):
            node = Tree("Pos", None, (self.unary(False),))
        else:
            node = self.primary()
        node = self.postfix(node)
        return self.filters(node) if with_filter else node

    def primary(self) -> Tree:
        kind, value = self.next()
        if kind == "name":
            if value in _CONSTANTS:
                return Tree(CONST, _CONSTANTS[value])
            if value in _KEYWORDS:
                raise _Unsupported
            return Tree(NAME, value)
        if kind == "string":
            if self.peek()[0] == "string":
                raise _Unsupported  # Jinja2 joins adjacent strings; not worth the subset
            return Tree(CONST, value)
        if kind == "number":
            return Tree(CONST, value)
        if (kind, value) == ("op", "("):
            inner = self.expression()
            self.expect("op", ")")  # a comma (a tuple) or an empty pair is outside the subset
            return inner
        if (kind, value) == ("op", "["):
            return Tree("List", None, tuple(self.items("]")))
        raise _Unsupported

    def postfix(self, node: Tree) -> Tree:
        while True:
            if self.skip("op", "."):
                kind, name = self.next()
                if kind != "name":
                    raise _Unsupported
                node = Tree(GETATTR, name, (node,))
            elif self.skip("op", "["):
                key = self.expression()
                self.expect("op", "]")  # a slice or several keys are outside the subset
                node = Tree(GETITEM, None, (node, key))
            elif self.peek() == ("op", "("):
                raise _Unsupported  # a call
            else:
                return node

    def filters(self, node: Tree) -> Tree:
        while True:
            if self.skip("op", "|"):
                kind, name = self.next()
                if kind != "name" or self.peek() == ("op", "."):
                    raise _Unsupported
                node = Tree(FILTER, name, (node, *self.arguments()))
            elif self.peek() == ("name", "is") or self.peek() == ("op", "("):
                raise _Unsupported  # a test, or a call of what a filter returned
            else:
                return node

    def arguments(self) -> list[Tree]:
        """A filter's positional arguments (a keyword's ``=`` is no token here: it declines)."""
        return self.items(")") if self.skip("op", "(") else []

    def items(self, closing: str) -> list[Tree]:
        """Expressions separated by commas up to ``closing`` (a list's items, a filter's arguments)."""
        found: list[Tree] = []
        while not self.skip("op", closing):
            if found:
                self.expect("op", ",")
                if self.peek() == ("op", closing):
                    raise _Unsupported  # a trailing comma
            found.append(self.expression())
        return found


def from_jinja(node: Any) -> Tree:
    """A Jinja2 syntax tree as a ``Tree``: what the checks read of either parser's result."""
    kind = type(node).__name__
    payload = {NAME: "name", CONST: "value", GETATTR: "attr", FILTER: "name", "Operand": "op"}.get(kind)
    children = tuple(from_jinja(child) for child in node.iter_child_nodes())
    return Tree(kind, getattr(node, payload) if payload else None, children)


class Declined:
    """What ``quick_value`` returns for an expression it leaves to Jinja2."""


DECLINED: Final = Declined()
_COMPARISONS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lteq": operator.le,
    "gt": operator.gt,
    "gteq": operator.ge,
    "in": lambda left, right: left in right,
    "notin": lambda left, right: left not in right,
}
# The operators Jinja2's sandbox leaves to Python (runner.pipeline.expr intercepts +, *, ** and %).
_ARITHMETIC: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "Sub": operator.sub,
    "Div": operator.truediv,
    "FloorDiv": operator.floordiv,
}
_UNARY: Final[dict[str, Callable[[Any], Any]]] = {"Neg": operator.neg, "Pos": operator.pos}
_EVALUATED: Final = frozenset(
    {CONST, NAME, GETATTR, GETITEM, "Compare", "Operand", "And", "Or", "Not", "CondExpr", "List"}
    | _ARITHMETIC.keys()
    | _UNARY.keys()
)


def quick_value(tree: Tree, context: Mapping[str, Any]) -> Any:
    """The value of ``tree`` as the template Jinja2 compiles from it computes it, or ``DECLINED``.

    It reads mappings the way the sandbox's ``getattr``/``getitem`` do where their key is there and is no
    attribute (``stages.x.outputs``), and applies the operators the sandbox leaves to Python, in Python's
    order of evaluation. Anything else (a missing key, a filter, a capped operator, an exception of Python's)
    declines, and Jinja2 evaluates the expression again, side-effect free, for its value or its error. An
    exception the context raises on a read (``NotKnownYet`` from an upstream stage's pending outputs, an
    unset environment variable) propagates as it does from Jinja2's template: at the same read.
    """
    if any(node.kind not in _EVALUATED for node in tree.walk()):
        return DECLINED  # even where evaluation would not reach it: Jinja2 compiles the whole tree first
    try:
        return _value(tree, context)
    except _Unsupported:
        return DECLINED
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError, RecursionError):
        return DECLINED


def _value(node: Tree, context: Mapping[str, Any]) -> Any:
    kind, children = node.kind, node.children
    if kind == CONST:
        return node.payload
    if kind == NAME:
        if node.payload not in context:
            raise _Unsupported  # Jinja2's undefined: its error, its words
        return context[node.payload]
    if kind == GETATTR:
        return _read(_value(children[0], context), node.payload, attribute=True)
    if kind == GETITEM:
        return _read(_value(children[0], context), _value(children[1], context), attribute=False)
    if kind == "Compare":
        left = _value(children[0], context)
        result: Any = True
        for operand in children[1:]:
            right = _value(operand.children[0], context)
            result = _COMPARISONS[operand.payload](left, right)
            if not result:
                return result
            left = right
        return result
    if kind == "And":
        left = _value(children[0], context)
        return _value(children[1], context) if left else left
    if kind == "Or":
        left = _value(children[0], context)
        return left if left else _value(children[1], context)
    if kind == "Not":
        return not _value(children[0], context)
    if kind == "CondExpr":  # (test, expr1, expr2): Python's ``expr1 if test else expr2`` tests first
        return _value(children[1] if _value(children[0], context) else children[2], context)
    if kind == "List":
        return [_value(child, context) for child in children]
    if kind in _ARITHMETIC:
        return _ARITHMETIC[kind](_value(children[0], context), _value(children[1], context))
    if kind in _UNARY:
        return _UNARY[kind](_value(children[0], context))
    raise _Unsupported  # filters, ~ and the operators the sandbox caps


def _read(container: Any, key: Any, *, attribute: bool) -> Any:
    """``container.key`` or ``container[key]`` where the sandbox would read the mapping's item."""
    if not isinstance(container, dict) or not isinstance(key, str | int) or isinstance(key, bool):
        raise _Unsupported
    if attribute and hasattr(container, str(key)):
        raise _Unsupported  # ``vars.items``: Jinja2 returns the method
    if key not in container:
        raise _Unsupported
    return container[key]
