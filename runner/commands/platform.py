"""``qfrun platform serve|start|stop|status``: the embedded local platform."""

from __future__ import annotations

import os

import click


@click.group(name="platform")
def command() -> None:
    """Manage the local platform (a real model platform on 127.0.0.1, with its data in QFRUN_HOME)."""


@command.command()
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port."
)
def serve(port: int) -> None:
    """Serve the local platform in the foreground (Ctrl-C stops it)."""
    from runner.local.access import LocalKeys
    from runner.local.daemon import serve as serve_platform
    from runner.local.home import Home

    token = os.environ.get("QFRUN_LOCAL_TOKEN") or None
    serve_platform(Home.default(), port=port, token=token, keys=LocalKeys.from_env(os.environ))


@command.command()
def start() -> None:
    """Start the local platform in the background (or say where it already runs)."""
    from runner.local.daemon import start as start_platform
    from runner.local.home import Home

    home = Home.default()
    endpoint = start_platform(home, os.environ.get("QFRUN_LOCAL_TOKEN") or None)
    click.echo(f"The local platform answers at {endpoint.url} (data in {home.root}, log {home.log_path}).")


@command.command()
def stop() -> None:
    """Stop the background local platform and its services."""
    from runner.local.daemon import stop as stop_platform
    from runner.local.home import Home

    home = Home.default()
    if stop_platform(home):
        click.echo(f"Stopped the local platform of {home.root}.")
    else:
        click.echo(f"No local platform runs for {home.root}.")


@command.command()
def status() -> None:
    """Say whether the local platform runs, where, and whether it answers."""
    from runner.local.daemon import status as platform_status
    from runner.local.home import Home

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
