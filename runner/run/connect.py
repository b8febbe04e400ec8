"""Open the platform a pipeline names (runner.platform.registry holds how each kind opens).

Commands open platforms through ``open_platform``, the one seam the CLI tests replace with a fake.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from runner.platform.client import PlatformClient
from runner.platform.registry import platform_spec


def open_platform(platform: Mapping[str, Any], *, notify: Callable[[str], None]) -> PlatformClient:
    return platform_spec(platform).open(notify)
