"""``qfrun report``: write the report of a pipeline's runs (HTML, markdown, JSON) from its state file."""

from __future__ import annotations

from pathlib import Path

import click

from runner.commands.options import PIPELINE, STATE, TARGET


@click.command(name="report")
@PIPELINE
@STATE
@TARGET
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder for report.html, report.md and report.json (default: .qfrun/reports/<name>).",
)
def command(pipeline: Path, state_path: Path | None, target: str | None, out: Path | None) -> None:
    """Write the report of PIPELINE's runs: a self-contained HTML page, report.md and report.json."""
    from runner.pipeline.spec import load_pipeline
    from runner.render.report import build_report, default_report_folder, write_reports
    from runner.state.connect import open_backend

    loaded = load_pipeline(pipeline, check_files=False, allow_env=None, target=target)
    state = open_backend(loaded, state_path, notify=lambda line: click.echo(line, err=True)).read()
    folder = out or default_report_folder(loaded, state)
    for path in write_reports(build_report(loaded, state), folder):
        click.echo(str(path))
