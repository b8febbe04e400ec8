"""Expressions ``${{ ... }}``: found in a stage's fields, checked at validation, evaluated at run time.

They are Jinja2 expressions run in its immutable sandbox (never ``eval``): a well-kept library that already
knows how to refuse attribute tricks, with ``StrictUndefined`` so a missing output is an error rather than an
empty string. An expression reads four roots: ``vars``, ``stages.<id>.outputs`` (``stages.<family>[*]``
for the list of a matrix family's outputs), ``env`` (allow-listed names only) and, in a matrix stage,
``matrix``. A field that is a whole expression takes the expression's value and type
(``replicas: ${{ vars.replicas }}`` is a number); an expression inside a longer string is interpolated.
Jinja2 is imported lazily, to evaluate; validation reads the common expressions without it
(runner.pipeline.expr_quick), so ``qfrun validate`` and ``--help`` do not pay for it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.pipeline.expr_quick import (
    CONST,
    DECLINED,
    FILTER,
    GETATTR,
    GETITEM,
    NAME,
    Tree,
    from_jinja,
    quick_tree,
    quick_value,
)

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
WHOLE = re.compile(r"\s*\$\{\{(.*?)\}\}\s*", re.DOTALL)
ROOTS = ("vars", "stages", "env", "matrix")
# ``stages.<family>[*]``: the outputs of every member of a matrix family, as a list in the members' order.
# Jinja2 has no ``[*]``, so the source is rewritten to the key ``stages['<family>[*]']`` before parsing.
FAMILY = re.compile(r"\bstages\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^'\[\]]+)'\s*\])\s*\[\s*\*\s*\]")
FAMILY_SUFFIX = "[*]"
# Longest expression source: with expr_limits.MAX_SIZE per built value, this bounds what one expression holds.
MAX_SOURCE = 2_000


class ExpressionError(Exception):
    """An expression is malformed, names something unknown, or fails when evaluated (a sentence)."""


@dataclass(frozen=True)
class Reference:
    """A root and the name under it that an expression reads: ``("stages", "w4")``, ``("vars", "min")``."""

    root: str
    name: str


def family_syntax(source: str) -> str:
    """``source`` with each ``stages.<family>[*]`` written as the key Jinja2 can read."""
    if "*" not in source:
        return source
    return FAMILY.sub(lambda m: f"stages['{m.group(1) or m.group(2)}{FAMILY_SUFFIX}']", source)


def find(text: str) -> list[str]:
    """The sources of every ``${{ ... }}`` in a string."""
    return [match.group(1).strip() for match in EXPRESSION.finditer(text)]


def contains_expression(value: Any) -> bool:
    return isinstance(value, str) and "${{" in value


SENSITIVE = "(sensitive)"


class UnsetVariable(ExpressionError):
    """An allowed environment variable that is not set: safe to show, since it names no value."""


class NotKnownYet(ExpressionError):
    """The expression reads the outputs of a stage that has yet to run (only ``qfrun plan`` meets this)."""

    def __init__(self, stage_id: str) -> None:
        super().__init__(f"known after stage {stage_id} runs")
        self.stage_id = stage_id


class KnownAfter(str):
    """A field's value that only a run can tell, like Terraform's "(known after apply)".

    A ``str`` so that a plan prints and serialises it as it is; its type, not its text, is what tells it
    apart from a value (the planner looks for instances, never for words).
    """

    stage_id: str

    def __new__(cls, stage_id: str) -> KnownAfter:
        value = super().__new__(cls, f"(known after {stage_id} runs)")
        value.stage_id = stage_id
        return value


def reads_env(text: str) -> bool:
    """Whether any expression in ``text`` reads ``env``: its value is then sensitive, whatever filters,
    slices or concatenations made it (``env.T | upper``, ``env.T[1:]``), as Terraform taints values
    derived from a sensitive one. An expression that does not parse counts as reading it."""
    for source in find(text):
        try:
            walked = tree(source).walk()
        except ExpressionError:
            return True
        if any(node.kind == NAME and node.payload == "env" for node in walked):
            return True
    return False


# Filters that cannot build a large value from a small expression (``center``, ``indent``, ``format``,
# ``replace``, ``batch``, ``slice`` and friends can, so they are not offered).
SAFE_FILTERS = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "first", "float", "int", "join", "last", "length",
        "list", "lower", "max", "min", "round", "string", "sum", "title", "tojson", "trim", "unique", "upper",
    }
)  # fmt: skip
# Integer results beyond this many bits are refused (``(9**64)**64**64`` would exhaust memory).
MAX_INT_BITS = 4096


@functools.cache
def _environment() -> ImmutableSandboxedEnvironment:
    from jinja2 import StrictUndefined, pass_environment
    from jinja2.compiler import CodeGenerator, Frame
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from runner.pipeline import expr_limits

    class Generator(CodeGenerator):
        def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
            # ``a ~ b`` compiles to a plain join that no sandbox hook sees: route it through a capped one.
            self.write("environment.capped_concat((")
            for argument in node.nodes:
                self.visit(argument, frame)
                self.write(", ")
            self.write("))")

    class Environment(ImmutableSandboxedEnvironment):
        code_generator_class = Generator
        intercepted_binops = frozenset({"*", "**", "%", "+"})

        @staticmethod
        def capped_concat(items: tuple[Any, ...]) -> str:
            return expr_limits.concat(items)

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "%" and isinstance(left, str):
                raise ExpressionError("string formatting with % is not supported; join text with ~")
            if operator == "**" and isinstance(right, int) and not isinstance(right, bool):
                base = left.bit_length() if isinstance(left, int) else 1
                if abs(right) > 64 or base * abs(right) > MAX_INT_BITS:
                    raise ExpressionError(f"raising to the power {right} builds a number that is too large")
            expr_limits.before_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            # Methods such as str.center(10**9) or "{:>999999999}".format(1) allocate whatever they are asked.
            if getattr(__obj, "__name__", "") in ("format", "format_map"):
                raise ExpressionError("calling format() is not supported in expressions; join text with ~")
            for argument in (*args, *kwargs.values()):
                if isinstance(argument, int) and abs(argument) > expr_limits.MAX_SIZE:
                    raise ExpressionError(f"the argument {argument} is too large")
            if not __self.is_safe_callable(__obj):
                return super().call(__context, __obj, *args, **kwargs)  # the sandbox refuses it
            return expr_limits.call_method(
                functools.partial(super().call, __context, __obj), __obj, args, kwargs
            )

    # optimized=False skips Jinja2's constant-folding pass: these expressions are a line long and run once or
    # twice, so the pass cost more than it saved (a third of each compile; a plan compiles every `if:`).
    environment = Environment(undefined=StrictUndefined, autoescape=False, optimized=False)
    environment.globals.clear()  # no range(), lipsum(), dict(), cycler(): expressions read vars, stages, env
    environment.filters = {
        name: expr_limits.capped_filter(name, function)
        for name, function in environment.filters.items()
        if name in SAFE_FILTERS
    }
    environment.filters[SLOT_FILTER] = pass_environment(lambda env, value, name: env.getattr(value, name))
    return environment


@functools.lru_cache(maxsize=4096)
def parse(source: str) -> nodes.Expr:
    """The expression's syntax tree; raises ExpressionError with the parser's own words."""
    from jinja2 import TemplateSyntaxError
    from jinja2.parser import Parser

    if not source.strip():
        raise ExpressionError("the expression is empty")
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"the expression is {len(source)} characters long; the limit is {MAX_SOURCE}")
    try:
        parser = Parser(_environment(), family_syntax(source), state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            raise ExpressionError(f"unexpected {parser.stream.current.value!r} after the expression")
    except TemplateSyntaxError as error:
        raise ExpressionError(f"the expression {_quote(source)} is not valid: {error.message}") from None
    return tree


def references(source: str) -> Iterator[Reference]:
    """Every ``root.name`` the expression reads; raises ExpressionError for names outside the roots."""
    walked = tree(source).walk()
    for node in walked:
        if node.kind == NAME and node.payload not in ROOTS:
            raise ExpressionError(
                f"the expression {_quote(source)} reads {node.payload!r}; "
                "expressions read only vars, stages, env and (in a matrix stage) matrix"
            )
    for node in walked:  # every filter, a filter's argument's too: the sandbox offers no other
        if node.kind == FILTER and node.payload not in SAFE_FILTERS:
            raise ExpressionError(
                f"the expression {_quote(source)} uses the filter {node.payload!r}; the filters offered are "
                + ", ".join(sorted(SAFE_FILTERS))
            )
    accesses = [node for node in walked if node.kind in (GETATTR, GETITEM)]
    for node in accesses:  # stages.<id>.<what>: a stage offers its outputs and nothing else
        inner = node.children[0]
        if inner.kind in (GETATTR, GETITEM) and _is_root(inner.children[0], "stages"):
            what = _key(node)
            family = inner.kind == GETITEM and str(_key(inner)).endswith(FAMILY_SUFFIX)
            if what != "outputs" and not family:
                raise ExpressionError(
                    f"the expression {_quote(source)} reads stages.<id>.{what}; a stage offers only "
                    "stages.<id>.outputs.<name>"
                )
    for node in accesses:
        base = node.children[0]
        if base.kind == NAME and base.payload in ROOTS:
            key = _key(node)
            if key is None:
                raise ExpressionError(
                    f"the expression {_quote(source)} indexes {base.payload} with a computed key"
                )
            yield Reference(base.payload, key)


@functools.lru_cache(maxsize=4096)
def tree(source: str) -> Tree:
    """What the checks read of the expression's syntax tree: from the quick reader when the expression is
    one it knows (validate then never imports Jinja2), else from Jinja2's parser, which words the errors."""
    if source.strip() and len(source) <= MAX_SOURCE:
        quick = quick_tree(family_syntax(source))
        if quick is not None:
            return quick
    return from_jinja(parse(source))


def _is_root(node: Tree, root: str) -> bool:
    return node.kind == NAME and node.payload == root


def _key(access: Tree) -> str | None:
    """The name an access reads: ``.name``, or a constant ``[key]``; None for a computed key."""
    if access.kind == GETATTR:
        return str(access.payload)
    key = access.children[1]
    return str(key.payload) if key.kind == CONST else None


# The stage and var names an expression reads become slots filled in at run time, so that expressions that
# differ only in those names (``stages.g1_eval.outputs...``, ``stages.g2_eval.outputs...``: one per group of
# stages in a large pipeline) share one compiled template. Jinja2 compiles each template to Python source,
# then to bytecode, about a millisecond each, and ``qfrun plan`` evaluates every ``if:`` of the pipeline.
SLOTTED_ROOTS = ("stages", "vars")
SLOT_FILTER = "(slot)"  # not a name a pipeline can write: only the compiler below puts it in a tree
_TEMPLATES: dict[str, Callable[[dict[str, Any]], Any]] = {}


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> Callable[[Mapping[str, Any]], Any]:
    """A function of the context that evaluates ``source``, from the template its shape shares."""
    tree, names = _slotted(source)
    shape = repr(tree)  # every field of every node: equal text, equal template
    run = _TEMPLATES.get(shape)
    if run is None:
        if len(_TEMPLATES) >= 4096:
            _TEMPLATES.clear()
        run = _TEMPLATES[shape] = _template(tree)
    slots = {_slot_name(index): name for index, name in enumerate(names)}
    return lambda context: run({**context, **slots})


def _slot_name(index: int) -> str:
    return f"__slot{index}"


def _slotted(source: str) -> tuple[nodes.Expr, list[str]]:
    """A new syntax tree of ``source`` in which ``stages.<name>`` and ``vars.<name>`` read their name from a
    slot through the sandbox's own getattr (what ``.<name>`` compiles to), and the names, in slot order."""
    from jinja2 import nodes
    from jinja2.parser import Parser
    from jinja2.visitor import NodeTransformer

    parse(source)  # the checks and the messages of a bad expression
    names: list[str] = []

    class Slots(NodeTransformer):
        def visit_Getattr(self, node: nodes.Getattr) -> nodes.Node:
            visited = self.generic_visit(node)
            if not (
                isinstance(visited, nodes.Getattr)
                and isinstance(visited.node, nodes.Name)
                and visited.node.name in SLOTTED_ROOTS
            ):
                return visited
            slot = nodes.Name(_slot_name(len(names)), "load", lineno=node.lineno)
            names.append(visited.attr)
            return nodes.Filter(visited.node, SLOT_FILTER, [slot], [], None, None, lineno=node.lineno)

    fresh = Parser(
        _environment(), family_syntax(source), state="variable"
    ).parse_expression()  # parse()'s is shared
    slotted = Slots().visit(fresh)
    assert isinstance(slotted, nodes.Expr)  # a transformer keeps an expression an expression
    return slotted, names


def _template(tree: nodes.Expr) -> Callable[[dict[str, Any]], Any]:
    from jinja2 import Undefined, nodes

    environment = _environment()
    body = [nodes.Assign(nodes.Name("result", "store"), tree, lineno=1)]
    template = environment.from_string(nodes.Template(body, lineno=1))

    def run(context: dict[str, Any]) -> Any:
        module_context = template.new_context(context)
        for _ in template.root_render_func(module_context):
            pass
        result = module_context.vars["result"]
        if isinstance(result, Undefined):
            result._fail_with_undefined_error()  # StrictUndefined defers the error to first use: use it now
        return result

    return run


def evaluate(source: str, context: Mapping[str, Any]) -> Any:
    """The value of one expression; every failure is an ExpressionError that names the expression.

    The common expressions are evaluated on their tree without Jinja2 (``expr_quick.quick_value``: a plan
    of a pipeline that never ran then imports and compiles no template); the rest, and every failure but
    the context's own, by the template Jinja2 compiles, which words the error.
    """
    try:
        value = quick_value(tree(source), context)
    except NotKnownYet:
        raise  # not a failure of this expression: the planner shows the value as known later
    except ExpressionError as error:
        raise type(error)(f"{_quote(source)}: {error}") from None
    return _evaluate_with_jinja(source, context) if value is DECLINED else value


def _evaluate_with_jinja(source: str, context: Mapping[str, Any]) -> Any:
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError, UndefinedError

    try:
        return _compiled(source)(context)
    except NotKnownYet:
        raise
    except ExpressionError as error:
        raise type(error)(f"{_quote(source)}: {error}") from None
    except UndefinedError as error:
        raise ExpressionError(f"{_quote(source)}: {error.message}") from None
    except SecurityError as error:
        raise ExpressionError(f"{_quote(source)} is not allowed: {error}") from None
    except TemplateError as error:
        raise ExpressionError(f"{_quote(source)} failed: {error.message}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as error:
        raise ExpressionError(f"{_quote(source)} failed: {error}") from None


def render(value: str, context: Mapping[str, Any]) -> Any:
    """A field's value: a whole expression keeps its type, embedded ones are interpolated as text."""
    whole = WHOLE.fullmatch(value)
    if whole and "${{" not in whole.group(1):
        return evaluate(whole.group(1).strip(), context)
    return EXPRESSION.sub(lambda match: _text(evaluate(match.group(1).strip(), context)), value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def resolve(
    value: Any,
    context: Mapping[str, Any],
    on_error: Callable[[tuple[str | int, ...], ExpressionError], None],
    path: tuple[str | int, ...] = (),
) -> Any:
    """``value`` with every expression replaced; ``on_error(key_path, error)`` is told of each failure."""
    if isinstance(value, str):
        if "${{" not in value:
            return value
        try:
            return render(value, context)
        except ExpressionError as error:
            on_error(path, error)
            return value
    # A plain value is copied as it is without a call of its own: a plan resolves every stage's fields, and
    # most of them hold no expression (issue 17, P2).
    if type(value) is dict or isinstance(value, Mapping):  # a dict skips the ABC's slower check
        return {
            key: resolve(item, context, on_error, (*path, key)) if _may_hold(item) else item
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            resolve(item, context, on_error, (*path, index)) if _may_hold(item) else item
            for index, item in enumerate(value)
        ]
    return value


def _may_hold(value: Any) -> bool:
    """Whether ``resolve`` has anything to do for ``value``: a container, or a string with ``${{``."""
    if type(value) is str:
        return "${{" in value
    return (
        type(value) is dict
        or type(value) is list
        or (isinstance(value, Mapping | list | str) and (not isinstance(value, str) or "${{" in value))
    )


def truthy(value: Any) -> bool:
    """How an ``if:`` reads a value: YAML-ish strings count too ("false", "0", "" are false)."""
    if isinstance(value, str):
        return value.strip().lower() not in {"", "0", "false", "no", "off", "null", "none"}
    return bool(value)


def _quote(source: str) -> str:
    """The expression as messages show it: quoted, and shortened when long."""
    return repr(source if len(source) <= 80 else source[:77] + "...")
