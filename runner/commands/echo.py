"""``click.echo`` for text on the standard streams, without importing click.

``qfrun validate`` runs without click (runner.commands.validating) yet must print exactly what the click
command prints: a line and a newline, flushed, with ANSI escape codes removed when the stream is not a
terminal. Any stream that click would treat specially (a misconfigured ASCII encoding it re-wraps, a pager,
a notebook, Windows' console) is handed to click.echo itself.
"""

from __future__ import annotations

import codecs
import re
import sys
from typing import IO, Any

# click._compat._ansi_re: what click.echo strips from text bound for something other than a terminal.
_ANSI = re.compile(r"\033\[[0-?]*[ -/]*[@-~]")


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print ``message`` (and a newline) on stdout, or stderr with ``err``, as click.echo does."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:  # no standard stream attached (pythonw): click prints nothing either
        return
    if not _plain(stream):
        import click

        click.echo(message, err=err, nl=nl)
        return
    out = message + "\n" if nl else message
    if out and not _isatty(stream):
        out = _ANSI.sub("", out)
    if out:
        stream.write(out)
    stream.flush()


def _plain(stream: IO[Any]) -> bool:
    """Whether click.echo would write to ``stream`` as it is: a text stream of a real encoding, on a
    system other than Windows, that is neither a pager nor a Jupyter kernel's."""
    if sys.platform.startswith("win") or hasattr(stream, "color"):
        return False
    if type(stream).__module__.startswith("ipykernel."):
        return False
    encoding = getattr(stream, "encoding", None)
    if not isinstance(encoding, str) or not isinstance(getattr(stream, "errors", None), str):
        return False  # click would look for the binary stream underneath and wrap it
    try:
        return codecs.lookup(encoding).name != "ascii"
    except LookupError:
        return False


def _isatty(stream: IO[Any]) -> bool:
    try:
        return stream.isatty()
    except Exception:  # noqa: BLE001 (click's isatty: a stream that cannot tell is not a terminal)
        return False
