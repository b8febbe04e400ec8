"""The click group of every verb: ``qfrun VERB`` loads ``runner.commands.VERB`` when invoked, and
``qfrun FILE`` means ``qfrun run FILE``.

Verbs are imported when invoked (click's documented lazy-loading pattern), so ``qfrun validate`` never pays
for the executor, the platform client or the report; runner.cli imports this group only for the command
lines that it does not run without click (runner.commands.validating).
"""

from __future__ import annotations

import importlib
import os

import click

from runner import __version__

# Each verb is the ``command`` of its own module.
VERBS = (
    "run",
    "validate",
    "plan",
    "diff",
    "status",
    "graph",
    "report",
    "destroy",
    "schema",
    "platform",
    "init",
    "completion",
    "state",
)
PIPELINE_SUFFIXES = (".yaml", ".yml", ".json")
UNLOGGED = frozenset({"validate"})  # verbs whose modules log nothing (tests/commands/test_light_path.py)


class Verbs(click.Group):
    """Loads a verb's module only when it is invoked; ``qfrun FILE`` means ``qfrun run FILE``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in VERBS:
            return None
        command = importlib.import_module(f"runner.commands.{cmd_name}").command
        assert isinstance(command, click.Command)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((arg for arg in args if not arg.startswith("-")), None)
        if first is not None and first not in VERBS and not any(a in ("--help", "--version") for a in args):
            if not ctx.resilient_parsing:  # completing a half-typed word is not running a mistyped verb
                _refuse_mistyped_verb(first)
            # -v belongs to the group: ``qfrun -v FILE`` and ``qfrun FILE -v`` mean ``qfrun -v run FILE``.
            verbose = [arg for arg in args if arg in ("-v", "--verbose")]
            args = [*verbose, "run", *(arg for arg in args if arg not in ("-v", "--verbose"))]
        return super().parse_args(ctx, args)


def _refuse_mistyped_verb(word: str) -> None:
    """``qfrun stauts`` is a typo, not a pipeline named "stauts": say so, as git does."""
    if "/" in word or "\\" in word or word.endswith(PIPELINE_SUFFIXES) or _exists(word):
        return
    import difflib  # only for a mistyped verb: every command would pay for it

    close = difflib.get_close_matches(word, VERBS, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise click.UsageError(
        f"No such command '{word}', and no pipeline file of that name.{hint} "
        f"The commands are {', '.join(sorted(VERBS))}; `qfrun FILE.yaml` runs a pipeline."
    )


def _exists(word: str) -> bool:
    return os.path.lexists(word)


@click.group(cls=Verbs, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qfrun")
@click.option("-v", "--verbose", is_flag=True, help="Show up-to-date stages, debug logs and tracebacks.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Run declarative model-lifecycle pipelines (model -> infer -> evaluate -> compress -> deploy)."""
    ctx.ensure_object(dict)["verbose"] = verbose
    if ctx.invoked_subcommand in UNLOGGED and not verbose:
        return  # nothing on validate's path logs: a pre-commit hook need not import the logging package
    import logging

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
