"""A model import copies the model folder's own files and nothing else."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runner.local.home import Home

if TYPE_CHECKING:
    from conftest import Api


def _import(api: Api, folder: Path) -> tuple[int, str]:
    response = api.post("/v2/model?Action=ImportLocalModel", {"name": "m", "path": str(folder)})
    return response.status_code, response.json().get("message", "")


def test_a_link_out_of_the_model_folder_is_refused(
    platform_api: Api, fake_model: Callable[[Path], Path], tmp_path: Path
) -> None:
    folder = fake_model(tmp_path / "m")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the platform")
    (folder / "tokenizer.json").symlink_to(secret)
    status, message = _import(platform_api, folder)
    assert status == 400
    assert "has a link out of it: tokenizer.json ->" in message


def test_a_link_inside_the_folder_is_fine(
    platform_api: Api, fake_model: Callable[[Path], Path], tmp_path: Path
) -> None:
    folder = fake_model(tmp_path / "m")
    (folder / "alias.safetensors").symlink_to(folder / "model.safetensors")
    assert _import(platform_api, folder)[0] == 200


def test_a_fifo_in_the_folder_is_refused_instead_of_blocking(
    platform_api: Api, fake_model: Callable[[Path], Path], tmp_path: Path
) -> None:
    folder = fake_model(tmp_path / "m")
    os.mkfifo(folder / "pipe")
    status, message = _import(platform_api, folder)
    assert status == 400
    assert "pipe, which is neither a file nor a folder" in message


def test_a_folder_holding_the_platforms_home_is_refused(platform_api: Api, platform_home: Home) -> None:
    folder = platform_home.root.parent
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * 8)
    status, message = _import(platform_api, folder)
    assert status == 400
    assert "holds the platform's own data" in message
