"""The ``sdk_platform`` fixture: one recorded local platform per test module (see tests/sdk_oracle.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner.testing.sdk_oracle import SdkPlatform, serve_recorded


@pytest.fixture(scope="module")
def sdk_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SdkPlatform]:
    with serve_recorded(tmp_path_factory.mktemp("sdk")) as platform:
        yield platform
