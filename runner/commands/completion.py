"""``qfrun completion SHELL``: print the script that makes SHELL complete qfrun's verbs, options and files.

The script is click's own shell completion (the one ``_QFRUN_COMPLETE=bash_source qfrun`` prints): it calls
qfrun back with ``_QFRUN_COMPLETE`` set on every Tab, so completions always match the installed version.
"""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
HOW_TO_LOAD = {
    "bash": 'eval "$(qfrun completion bash)"  # in ~/.bashrc',
    "zsh": 'eval "$(qfrun completion zsh)"  # in ~/.zshrc',
    "fish": "qfrun completion fish > ~/.config/fish/completions/qfrun.fish",
}


def completion_script(shell: str) -> str:
    """The completion script for ``shell``, for the ``qfrun`` console script."""
    from click.shell_completion import get_completion_class

    from runner.commands.group import cli

    complete = get_completion_class(shell)
    if complete is None:  # click registers every shell in SHELLS; a newer click that dropped one is a bug
        raise click.UsageError(f"click cannot complete {shell} here; use one of {', '.join(SHELLS)}.")
    # The variable click's entry point reads: ``_{PROG_NAME}_COMPLETE`` with the program name upper-cased.
    return complete(cli, {}, "qfrun", "_QFRUN_COMPLETE").source()


@click.command(
    name="completion",
    epilog="Load it: " + "; ".join(f"{shell}: {line}" for shell, line in HOW_TO_LOAD.items()),
)
@click.argument("shell", type=click.Choice(SHELLS))
def command(shell: str) -> None:
    """Print SHELL's completion script for qfrun (bash, zsh or fish)."""
    click.echo(completion_script(shell))
