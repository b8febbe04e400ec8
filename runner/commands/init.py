"""``qfrun init [FOLDER]``: a starter pipeline that runs as it is on the local platform, and its schema.

It writes the pipeline, its evaluation data, the demo model it imports, and a copy of the pipeline schema
that the pipeline's modeline names by a relative path. A copy rather than the schema's URL: it works offline
and in every editor that reads the modeline, it describes exactly the qfrun that wrote it (``qfrun schema >
FILE`` refreshes it after an upgrade), and the URL is hosted only once SchemaStore publishes it.
Nothing that exists is overwritten: when any file is already there, nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import click

from runner.atomic import replace_file
from runner.errors import UsageError

PIPELINE = Path("pipeline.yaml")
SCHEMA = Path("schemas") / "qfrun-pipeline.schema.json"
DATA = Path("data") / "eval.jsonl"
MODEL = Path("models") / "tiny-adder"


def starter_files(pipeline_shown: str) -> dict[Path, bytes]:
    """Each file ``init`` writes, relative to the folder, with its content."""
    from runner.commands.schema import schema_text

    starter = resources.files("runner.starter")
    template = starter.joinpath("pipeline.yaml").read_text(encoding="utf-8")
    # The modeline is relative to the pipeline's own folder, as yaml-language-server resolves it.
    pipeline = template.replace("{schema}", SCHEMA.as_posix()).replace("{pipeline}", pipeline_shown)
    files = {
        PIPELINE: pipeline.encode(),
        SCHEMA: schema_text("pipeline").encode(),
        DATA: starter.joinpath("eval.jsonl").read_bytes(),
    }
    files.update((MODEL / entry.name, entry.read_bytes()) for entry in _model_files(starter))
    return files


def _model_files(starter: Traversable) -> list[Traversable]:
    return sorted(
        (entry for entry in starter.joinpath("tiny-adder").iterdir() if entry.is_file()),
        key=lambda entry: entry.name,
    )


def init(folder: Path) -> list[Path]:
    """Write the starter into ``folder`` (made when missing); returns what it wrote, the model as a folder."""
    shown = os.path.relpath(folder / PIPELINE) if folder.is_absolute() else str(folder / PIPELINE)
    files = starter_files(shown)
    present = [
        str(folder / name) for name in _entries(name for name in files if os.path.lexists(folder / name))
    ]
    if present:
        raise UsageError(
            f"qfrun init wrote nothing, because {_listed(present)} already "
            f"{'exists' if len(present) == 1 else 'exist'}; init another folder or move them away"
        )
    for name, data in files.items():
        path = folder / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Exclusive: a file that appeared since the check above is left as it is, and named.
            done = replace_file(path, data, exclusive=True)
        except OSError as error:
            raise UsageError(f"qfrun init cannot write {path}: {error.strerror or error}") from None
        if not done:
            raise UsageError(
                f"qfrun init stopped: {path} appeared while it wrote; the files before it are new"
            )
    return [folder / name for name in _entries(files)]


def _entries(names: Iterable[Path]) -> list[Path]:
    """``names`` as a person reads them: the model's files as its one folder."""
    return list(dict.fromkeys(MODEL if name.is_relative_to(MODEL) else name for name in names))


def _listed(paths: list[str]) -> str:
    return paths[0] if len(paths) == 1 else f"{', '.join(paths[:-1])} and {paths[-1]}"


@click.command(name="init")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."), required=False)
def command(folder: Path) -> None:
    """Write a starter pipeline into FOLDER (default: here) that runs as it is on the local platform."""
    for path in init(folder):
        click.echo(f"wrote {path}")
    pipeline = folder / PIPELINE
    click.echo(
        "\nNext:\n"
        f"  qfrun validate {pipeline}\n"
        f"  qfrun plan {pipeline}\n"
        f"  qfrun {pipeline}          # runs it on the local platform (needs qfrun's local extra)\n"
        "Keep .qfrun/ (state, reports) and .env (credentials) out of git."
    )
