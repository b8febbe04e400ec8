"""A headless Chromium for tests that must see a page as a reader does (the HTML report), through Playwright.

Playwright's own browser download comes from a CDN that CI machines cannot reach, so this drives the
system's Chromium (Debian's ``chromium`` package, which ``.ci/run`` installs where it can); ``QFRUN_CHROMIUM``
names another binary. Where neither Playwright nor a Chromium is present, ``chromium_or_skip`` skips the
test with the reason, so the suite still runs on a machine without them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# The flags Chromium needs on a closed network as root: no sandbox (root), and none of the background
# connections that would otherwise be refused one after another at every start.
FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def chromium_path() -> str | None:
    """The Chromium binary to drive, or None where there is none."""
    named = os.environ.get("QFRUN_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Visit:
    """One page opened in the browser, with what it said on its console and the dialogs it tried to open."""

    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@contextmanager
def chromium_or_skip() -> Iterator[Browser]:
    """A launched headless Chromium; the test is skipped where Playwright or a Chromium is missing."""
    import pytest

    binary = chromium_path()
    if binary is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium, or set QFRUN_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (it is in the dev extra)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=list(FLAGS))
        try:
            yield browser
        finally:
            browser.close()


def visit(browser: Browser, path: Path) -> Visit:
    """Open a local file with JavaScript on and offline, collecting console errors and dialogs."""
    context = browser.new_context(offline=True, java_script_enabled=True)
    page = context.new_page()
    seen = Visit(page)

    def on_console(message: Any) -> None:
        if message.type == "error":
            seen.errors.append(message.text)

    def on_dialog(dialog: Any) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    page.on("dialog", on_dialog)
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return seen
