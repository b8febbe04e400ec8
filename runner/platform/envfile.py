"""The environment Qianfan settings come from: the process environment over the repository's ``.env`` file.

The official SDK reads its settings with pydantic (``qianfan/config.py``: ``env_prefix = "QIANFAN_"``, and
``_env_file`` is ``$QIANFAN_DOT_ENV_CONFIG_FILE`` or ``.env``, relative to the working folder); a variable
set in the process environment wins over the file, even when set empty. qfrun reads the same file the same
way, so one ``.env`` serves both, and only its ``QIANFAN_`` names, as the SDK does: a ``.env`` shared with
other tools holds names qfrun must not pick up.

One difference: the file must lie inside the pipeline's repository (``files.repository_of``). A ``.env`` in
the home folder or a parent folder belongs to something else, and a pipeline run from elsewhere
(``qfrun ~/repo/p.yaml``) should read its own repository's file, not the one where the shell happens to be.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from runner.errors import PlatformError
from runner.files import PathRefused, read_regular, repository_of
from runner.platform.settings import ENV_DOT_ENV

DEFAULT_DOT_ENV = ".env"
PREFIX = "QIANFAN_"
MAX_DOT_ENV_BYTES = 1 << 20  # a settings file, not data: anything larger is a mistake


class Environment(Mapping[str, str]):
    """The process environment first, then the ``QIANFAN_`` values of one ``.env`` file (maybe none).

    Lookups read the process environment when made, not when built, so a token rotated in the environment
    is seen by ``Credentials.refresh_bearer``.
    """

    def __init__(
        self, process: Mapping[str, str], file_values: Mapping[str, str], file: Path | None = None
    ) -> None:
        self._process = process
        self._file_values = dict(file_values)
        self.file = file

    def __getitem__(self, name: str) -> str:
        if name in self._process:
            return self._process[name]
        return self._file_values[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._process
        yield from (name for name in self._file_values if name not in self._process)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def from_file(self, name: str) -> bool:
        """Whether ``name``'s value comes from the ``.env`` file (the process environment does not set it)."""
        return name not in self._process and name in self._file_values

    def __repr__(self) -> str:  # never the values: they include secrets
        return f"Environment(file={str(self.file) if self.file else None})"


def environment_for(
    pipeline_file: Path, *, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Environment:
    """``environ`` (default ``os.environ``) over the ``.env`` file of ``pipeline_file``'s repository.

    The file is ``$QIANFAN_DOT_ENV_CONFIG_FILE`` (relative to the working folder, as the SDK reads it), which
    must exist inside the repository; else ``.env`` in the working folder when that lies inside the
    repository; else ``.env`` at the repository's root. A missing default file is no error.
    """
    process = environ if environ is not None else os.environ
    here = (cwd or Path.cwd()).resolve()
    repository = repository_of(pipeline_file)
    named = process.get(ENV_DOT_ENV, "").strip()
    if named:
        path = _resolved(here / Path(named).expanduser(), named)
        if not path.is_relative_to(repository):
            raise PlatformError(
                f"{ENV_DOT_ENV} names {path}, outside the pipeline's repository {repository}; qfrun "
                "reads a .env file only from inside it"
            )
        if not path.exists():
            raise PlatformError(f"{ENV_DOT_ENV} names {path}, which does not exist")
    else:
        folder = here if here.is_relative_to(repository) else repository
        written = folder / DEFAULT_DOT_ENV
        if not os.path.lexists(written):
            return Environment(process, {})
        path = _resolved(written, str(written))
        if not path.is_relative_to(repository):
            raise PlatformError(
                f"the .env file {written} is a link to {path}, outside the pipeline's repository "
                f"{repository}; qfrun reads a .env file only from inside it"
            )
    return Environment(process, _values(path), path)


def _resolved(path: Path, shown: str) -> Path:
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        raise PlatformError(f"the .env file {shown} is a loop of links") from None


def _values(path: Path) -> dict[str, str]:
    try:
        text = read_regular(path, MAX_DOT_ENV_BYTES).decode("utf-8")
    except PathRefused as refused:
        raise PlatformError(f"the .env file cannot be read: {str(refused).rstrip('.')}") from None
    except UnicodeDecodeError:
        raise PlatformError(f"the .env file {path} is not UTF-8 text") from None
    # python-dotenv is what pydantic, and so the SDK, parses the file with; a name without "=" has no value.
    from dotenv import dotenv_values  # only when there is a file: most runs never need the parser

    parsed = dotenv_values(stream=io.StringIO(text), encoding="utf-8")
    return {name: value for name, value in parsed.items() if name.startswith(PREFIX) and value is not None}


def platform_environment(pipeline_file: Path, platform: Mapping[str, Any]) -> Mapping[str, str]:
    """What ``platform``'s settings are read from: the environment over the ``.env`` file for a kind that
    reads the SDK's settings (Qianfan); else the process environment alone (the local platform's token and
    keys are qfrun's, never in the SDK's file)."""
    from runner.platform.registry import platform_spec

    if platform_spec(platform).kind.reads_dot_env:
        return environment_for(pipeline_file)
    return os.environ
