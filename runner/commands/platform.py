"""``qfrun platform serve|start|stop|status|env``: the embedded local platform."""

from __future__ import annotations

import os
import shlex

import click


def _where_credentials(url: str) -> str:
    """How to get the platform's credentials, never the credentials themselves (this goes to logs)."""
    from runner.local.credentials import credentials_path
    from runner.local.home import Home

    path = credentials_path(Home.default())
    return (
        f"The local platform answers at {url}; it requires the token or AK/SK pair in {path} (mode 0600; "
        'qfrun reads it itself). `eval "$(qfrun platform env)"` points the official qianfan SDK at it.'
    )


@click.group(name="platform")
def command() -> None:
    """Manage the local platform (a real model platform on 127.0.0.1, with its data in QFRUN_HOME)."""


@command.command()
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port."
)
def serve(port: int) -> None:
    """Serve the local platform in the foreground (Ctrl-C stops it)."""
    from runner.local.credentials import LocalKeys
    from runner.local.home import Home
    from runner.local.server import serve as serve_platform

    token = os.environ.get("QFRUN_LOCAL_TOKEN") or None
    serve_platform(
        Home.default(),
        port=port,
        token=token,
        keys=LocalKeys.from_env(os.environ),
        on_ready=lambda url: click.echo(_where_credentials(url), err=True),
    )


@command.command()
def start() -> None:
    """Start the local platform in the background (or say where it already runs)."""
    from runner.local.home import Home
    from runner.local.launcher import start as start_platform

    home = Home.default()
    endpoint = start_platform(home, os.environ.get("QFRUN_LOCAL_TOKEN") or None)
    click.echo(f"{_where_credentials(endpoint.url)} Data in {home.root}, log {home.log_path}.")


@command.command()
def stop() -> None:
    """Stop the background local platform and its services."""
    from runner.local.home import Home
    from runner.local.launcher import stop as stop_platform

    home = Home.default()
    if stop_platform(home):
        click.echo(f"Stopped the local platform of {home.root}.")
    else:
        click.echo(f"No local platform runs for {home.root}.")


@command.command()
def status() -> None:
    """Say whether the local platform runs, where, and whether it answers."""
    from runner.local.home import Home
    from runner.local.launcher import status as platform_status

    home = Home.default()
    found = platform_status(home)
    if found is None:
        click.echo(f"No local platform runs for {home.root}; `qfrun platform start` starts one.")
        raise SystemExit(1)
    health = "answering" if found.healthy else "NOT answering"
    click.echo(
        f"The local platform runs at {found.url} (pid {found.pid}, started {found.started_at}), {health}."
    )
    if not found.healthy:
        raise SystemExit(1)


@command.command()
def env() -> None:
    """Print the official qianfan SDK's variables for the running platform, as shell `export` lines.

    They hold the platform's AK/SK pair: use them as `eval "$(qfrun platform env)"`, do not paste them
    into logs.
    """
    from runner.local.credentials import effective
    from runner.local.home import Home
    from runner.local.launcher import status as platform_status

    home = Home.default()
    found = platform_status(home)
    if found is None:
        raise click.ClickException(
            f"No local platform runs for {home.root}; `qfrun platform start` starts one."
        )
    for name, value in effective(home, os.environ).sdk_environment(found.url).items():
        click.echo(f"export {name}={shlex.quote(value)}")
