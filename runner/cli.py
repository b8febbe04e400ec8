"""The command line: ``qfrun PIPELINE`` (= ``qfrun run PIPELINE``), validate, plan, status, graph, schema and
platform.

The only module that prints or exits. Every error is a ``runner.errors.QfrunError`` rendered here, once, as
sentences with the exit code its class names; no traceback reaches a user unless ``-v`` asks for one.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from runner import __version__
from runner.errors import InterruptedRun, PipelineError, QfrunError, RunFailedError

F = TypeVar("F", bound=Callable[..., Any])


class DefaultRun(click.Group):
    """``qfrun FILE`` runs FILE: anything that is not a command name is taken as ``run``'s argument."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = next((arg for arg in args if not arg.startswith("-")), None)
        if (
            first is not None
            and first not in self.commands
            and not any(a in ("--help", "--version") for a in args)
        ):
            # -v belongs to the group: ``qfrun -v FILE`` and ``qfrun FILE -v`` mean ``qfrun -v run FILE``.
            verbose = [arg for arg in args if arg in ("-v", "--verbose")]
            args = [*verbose, "run", *(arg for arg in args if arg not in ("-v", "--verbose"))]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultRun, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qfrun")
@click.option("-v", "--verbose", is_flag=True, help="Show up-to-date stages, debug logs and tracebacks.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Run declarative model-lifecycle pipelines (model -> infer -> evaluate -> compress -> deploy)."""
    ctx.ensure_object(dict)["verbose"] = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


STATE = click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The state file (default: .qfrun/<name>.state.json beside the pipeline).",
)


def selection_options(function: F) -> F:
    for option in reversed(
        [
            click.option(
                "--select",
                "-s",
                "--only",
                "select",
                multiple=True,
                metavar="SELECTOR",
                help="Stages to run: x, +x (with upstream), x+ (with downstream); repeatable.",
            ),
            click.option(
                "--from",
                "from_stages",
                multiple=True,
                metavar="STAGE",
                help="Re-run STAGE and everything downstream of it, even when up to date.",
            ),
            click.option(
                "--force", multiple=True, metavar="STAGE", help="Re-run STAGE even when up to date."
            ),
            STATE,
        ]
    ):
        function = option(function)
    return function


PIPELINE = click.argument("pipeline", type=click.Path(dir_okay=False, path_type=Path))
ALLOW_ENV = click.option(
    "--allow-env",
    "allow_env",
    multiple=True,
    metavar="NAME",
    help="Let the pipeline read the environment variable NAME (its env: list asks; this allows); "
    "repeatable. QFRUN_ALLOW_ENV=A,B does the same, and QFRUN_VAR_* are always allowed.",
)


@cli.command()
@PIPELINE
@selection_options
@click.option(
    "--keep-going", is_flag=True, help="After a failure, finish the stages that do not depend on it."
)
@click.option(
    "--max-parallel",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="How many stages may run at once.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before cost-bearing deployments.")
@ALLOW_ENV
@click.pass_context
def run(
    ctx: click.Context,
    pipeline: Path,
    select: tuple[str, ...],
    from_stages: tuple[str, ...],
    force: tuple[str, ...],
    state_path: Path | None,
    keep_going: bool,
    max_parallel: int,
    yes: bool,
    allow_env: tuple[str, ...],
) -> None:
    """Run PIPELINE; re-running the same command resumes where it stopped."""
    from runner.commands.run import run_pipeline
    from runner.run.executor import RunOptions

    command = " ".join(["qfrun", *ctx.obj.get("argv", sys.argv[1:])])
    options = RunOptions(select, from_stages, force, keep_going, max_parallel, command=command)
    summary_lines, code = run_pipeline(
        pipeline, options, state_path=state_path, yes=yes, verbose=ctx.obj["verbose"], allow_env=allow_env
    )
    for line in summary_lines:
        click.echo(line, err=True)
    if code:
        raise SystemExit(code)


@cli.command()
@click.argument("pipelines", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@ALLOW_ENV
def validate(pipelines: tuple[Path, ...], fmt: str, allow_env: tuple[str, ...]) -> None:
    """Check PIPELINES: YAML, schema, references, cycles, expressions, local files; all problems at once."""
    from runner.pipeline.spec import load_pipeline

    problems: list[dict[str, Any]] = []
    for path in pipelines:
        try:
            loaded = load_pipeline(path, allow_env=allow_env)
        except PipelineError as error:
            problems += [
                {
                    "path": i.location.path,
                    "line": i.location.line,
                    "column": i.location.column,
                    "message": i.message,
                }
                for i in error.issues
            ]
            if fmt == "text":
                for issue in error.issues:
                    click.echo(str(issue))
        else:
            if fmt == "text":
                count = len(loaded.stages)
                click.echo(f"{path}: valid ({count} stage{'s' if count != 1 else ''}).", err=True)
    if fmt == "json":
        click.echo(json.dumps({"valid": not problems, "problems": problems}, indent=2))
    if problems:
        if fmt == "text":
            count = len(problems)
            click.echo(f"Found {count} problem{'s' if count != 1 else ''}.", err=True)
        raise SystemExit(PipelineError.exit_code)


@cli.command()
@PIPELINE
@selection_options
@click.option(
    "--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing would run, 2 when some stage would (run, re-run, resume), 1 when a stage "
    "would fail at once — as terraform plan -detailed-exitcode does.",
)
@click.option(
    "--expiry-warning-days",
    type=click.IntRange(0, 3650),
    default=7,
    show_default=True,
    help="Warn about prepaid services whose term ends within this many days.",
)
@ALLOW_ENV
@click.pass_context
def plan(
    ctx: click.Context,
    pipeline: Path,
    select: tuple[str, ...],
    from_stages: tuple[str, ...],
    force: tuple[str, ...],
    state_path: Path | None,
    fmt: str,
    detailed_exitcode: bool,
    expiry_warning_days: int,
    allow_env: tuple[str, ...],
) -> None:
    """Show what a run of PIPELINE would do per stage, changing nothing."""
    from runner.pipeline.spec import load_pipeline
    from runner.render import plan as planformat
    from runner.run.plan import default_state_path, make_plan
    from runner.state.file import StateFile

    loaded = load_pipeline(pipeline, allow_env=allow_env)
    state = StateFile.load(state_path or default_state_path(loaded), loaded.name)
    result = make_plan(
        loaded,
        state,
        select=select,
        from_stages=from_stages,
        force=force,
        expiry_days=expiry_warning_days,
    )
    if fmt == "json":
        click.echo(planformat.as_json(result), nl=False)
    elif fmt == "markdown":
        click.echo(planformat.as_markdown(result), nl=False)
    else:
        click.echo(planformat.as_text(result, verbose=ctx.obj["verbose"]), nl=False)
    if detailed_exitcode:
        from runner.run.plan import INVALID, WILL_RUN

        if result.count(INVALID):
            raise SystemExit(1)
        if any(stage.action in WILL_RUN for stage in result.stages):
            raise SystemExit(2)


@cli.command()
@PIPELINE
@click.option(
    "--select",
    "-s",
    "select",
    multiple=True,
    metavar="SELECTOR",
    help="Stages whose resources to end: x, +x, x+ (default: every stage); repeatable.",
)
@STATE
@click.option("--yes", "-y", is_flag=True, help="Do not ask before releasing services and stopping tasks.")
def destroy(pipeline: Path, select: tuple[str, ...], state_path: Path | None, yes: bool) -> None:
    """Release PIPELINE's services and stop its running tasks; model versions are kept."""
    from runner.commands.destroy import destroy as destroy_pipeline
    from runner.run.connect import open_platform

    destroy_pipeline(
        pipeline,
        select=select,
        state_path=state_path,
        yes=yes,
        open_platform=lambda loaded: open_platform(
            loaded.platform, notify=lambda line: click.echo(line, err=True)
        ),
        echo=lambda line: click.echo(line, err=True),
    )


@cli.command()
@PIPELINE
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--live", is_flag=True, help="Also ask the platform how each deployed service is now (one request each)."
)
def status(pipeline: Path, state_path: Path | None, fmt: str, live: bool) -> None:
    """Show what the state file records for PIPELINE: each stage's status, task, outputs or error; each
    service's term and days left."""
    from runner.commands.status import render_status

    def platform(loaded: Any) -> Any:
        from runner.run.connect import open_platform

        return open_platform(loaded.platform, notify=lambda line: click.echo(line, err=True))

    click.echo(render_status(pipeline, state_path, fmt, live=platform if live else None), nl=False)


@cli.command()
@PIPELINE
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Colour stages by their status in this state file.",
)
@click.option("--status/--no-status", "with_status", default=False, help="Show each stage's recorded status.")
def graph(pipeline: Path, fmt: str, state_path: Path | None, with_status: bool) -> None:
    """Print the stage graph of PIPELINE as Mermaid or Graphviz dot."""
    from runner.pipeline.spec import load_pipeline
    from runner.render import graph as graphformat
    from runner.run.plan import default_state_path
    from runner.state.file import StateFile

    loaded = load_pipeline(pipeline, check_files=False, allow_env=None)
    types = {stage_id: stage.type for stage_id, stage in loaded.stages.items()}
    statuses = None
    if with_status or state_path:
        state = StateFile.load(state_path or default_state_path(loaded), loaded.name)
        statuses = {stage_id: record.status.value for stage_id, record in state.stages.items()}
    render = graphformat.as_dot if fmt == "dot" else graphformat.as_mermaid
    click.echo(render(loaded.graph, types, statuses), nl=False)


@cli.command()
@click.option("--state", "which", flag_value="state", help="Print the state file's schema instead.")
@click.option(
    "--pipeline", "which", flag_value="pipeline", default=True, help="Print the pipeline schema (default)."
)
def schema(which: str) -> None:
    """Print the JSON Schema of pipeline files (for editors and CI)."""
    from importlib import resources

    name = "state.schema.json" if which == "state" else "pipeline.schema.json"
    click.echo(resources.files("runner.schemas").joinpath(name).read_text(encoding="utf-8"), nl=False)


from runner.commands.platform import platform  # noqa: E402  (registers `qfrun platform ...`)
from runner.commands.report import report  # noqa: E402

cli.add_command(platform)
cli.add_command(report)


def fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: run the CLI and turn every error into a message and an exit code."""
    args = list(argv) if argv is not None else sys.argv[1:]
    verbose = any(arg in ("-v", "--verbose") for arg in args)
    try:
        # The arguments travel in ctx.obj so that the state and the lock record the command actually run.
        cli.main(args=args, prog_name="qfrun", standalone_mode=False, obj={"argv": args})
    except click.exceptions.Abort:
        fail("Aborted.", 130)
    except click.ClickException as error:
        error.show()
        raise SystemExit(error.exit_code) from None
    except PipelineError as error:
        for issue in error.issues:
            click.echo(str(issue), err=True)
        count = len(error.issues)
        fail(f"The pipeline is not valid: {count} problem{'s' if count != 1 else ''}.", error.exit_code)
    except (InterruptedRun, RunFailedError) as error:
        fail(str(error), error.exit_code)
    except QfrunError as error:
        fail(f"error: {_sentence(str(error))}", error.exit_code)
    except KeyboardInterrupt:
        fail("Interrupted.", 130)
    except SystemExit:
        raise
    except Exception as error:  # a bug in qfrun: say so plainly, show the trace only when asked
        if verbose:
            raise
        fail(
            f"internal error: {type(error).__name__}: {error}. "
            "Re-run with -v for the traceback and report it.",
            70,
        )


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else text + "."
