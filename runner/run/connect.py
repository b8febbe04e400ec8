"""Open the platform a pipeline names (runner.platform.registry holds how each kind opens).

Commands open platforms through ``open_platform``, the one seam the CLI tests replace with a fake.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from runner.platform.client import PlatformClient
from runner.platform.envfile import platform_environment
from runner.platform.registry import platform_spec


def open_platform(
    platform: Mapping[str, Any], *, notify: Callable[[str], None], pipeline_file: Path | None = None
) -> PlatformClient:
    """A client of ``platform``; a kind that reads the SDK's settings also reads ``pipeline_file``'s .env."""
    environ = platform_environment(pipeline_file, platform) if pipeline_file else None
    return platform_spec(platform).open(notify, environ)
