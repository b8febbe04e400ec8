"""A model folder imported the way Qianfan imports one (its files to BOS, then CreateCustomModelSet and
CreateCustomModel with sourceType Import [M4][M5]): against the real local platform over signed HTTP
(127.0.0.1, a free port), which answers those actions from its own BOS; the waiting and failures of the
import against recorded DescribeModel answers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.errors import PlatformStatusError
from runner.local.app import create_app
from runner.local.credentials import LocalKeys
from runner.local.home import Home
from runner.platform import model_import
from runner.platform.client import PlatformClient
from runner.platform.protocol import ModelVersion
from runner.platform.settings import settings_from_pipeline
from runner.testing.serving import serve_app

REPO = Path(__file__).resolve().parents[2]
AK, SK = "ak-model-import-01", "sk-model-import-02"


class Recording(httpx.HTTPTransport):
    """A real transport that remembers each request's method and path (with the console's action)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        action = request.url.params.get("Action")
        self.sent.append(f"{request.method} {action or request.url.path}")
        return super().handle_request(request)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[PlatformClient, Recording]]:
    home = Home(tmp_path / "home")
    with serve_app(create_app(home, keys=LocalKeys(AK, SK))) as url:
        env = {"QFRUN_LOCAL_ACCESS_KEY": AK, "QFRUN_LOCAL_SECRET_KEY": SK}
        transport = Recording()
        with PlatformClient(
            settings_from_pipeline("local", environ=env, local_base_url=url), transport=transport
        ) as c:
            yield c, transport


@pytest.fixture
def adder(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-adder"
    shutil.copytree(REPO / "models" / "tiny-adder", folder)
    return folder


def test_a_folder_goes_to_bos_and_becomes_a_ready_version_once(
    client: tuple[PlatformClient, Recording], adder: Path
) -> None:
    platform, transport = client
    version = platform.import_through_bos(name="adder", path=str(adder))
    folder = model_import.read_folder(adder)
    assert version.details["status"] == "Ready"
    assert version.details["description"] == f"qfrun import sha256:{folder.digest}"
    assert version.name == "adder"
    puts = [line for line in transport.sent if line.startswith("PUT ")]
    assert len(puts) == len(folder.files) == 7  # every file of the folder, under its digest
    assert all(f"/qfrun-local/qfrun/models/{folder.digest}/" in line for line in puts)
    assert "POST CreateCustomModelSet" in transport.sent
    assert "POST CreateCustomModel" in transport.sent

    transport.sent.clear()
    again = platform.import_through_bos(name="adder", path=str(adder))
    assert again.version_id == version.version_id  # found by its description, not made twice
    assert not [line for line in transport.sent if line.startswith("PUT ") or "Create" in line]
    assert platform.list_model_versions([version.version_id]) == {version.version_id}


def test_changed_content_is_a_new_version_of_the_same_model(
    client: tuple[PlatformClient, Recording], adder: Path
) -> None:
    platform, _ = client
    first = platform.import_through_bos(name="adder", path=str(adder))
    (adder / "README.md").write_text("changed\n", encoding="utf-8")
    second = platform.import_through_bos(name="adder", path=str(adder))
    assert second.version_id != first.version_id
    assert second.model_id == first.model_id


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda folder: (folder / "config.json").unlink(),
            "has no config.json, so it is no Hugging Face model",
        ),
        (
            lambda folder: (folder / "link").symlink_to("/etc/hostname"),
            "has link, which is not a regular file",
        ),
    ],
)
def test_a_folder_that_is_no_model_is_refused_before_anything_is_uploaded(
    client: tuple[PlatformClient, Recording], adder: Path, make: Any, message: str
) -> None:
    platform, transport = client
    make(adder)
    with pytest.raises(PlatformStatusError, match=message):
        platform.import_through_bos(name="adder", path=str(adder))
    assert transport.sent == []


def test_the_local_platform_refuses_an_import_of_a_bos_folder_without_a_model(
    client: tuple[PlatformClient, Recording],
) -> None:
    platform, _ = client
    body = {"modelSetName": "empty", "modelType": "Text2Text"}
    reply = platform._http.console("model", "CreateCustomModelSet", body)
    meta = {"bucket": "qfrun-local", "objectPath": "nothing/", "modelFormat": "HuggingFace.Transformers"}
    with pytest.raises(PlatformStatusError, match=r"there is no object under bos:/qfrun-local/nothing/"):
        platform._http.console(
            "model",
            "CreateCustomModel",
            {"modelSetId": reply.body["result"], "sourceType": "Import", "importMeta": meta},
        )


def _version(status: str) -> ModelVersion:
    return ModelVersion(version_id="amv-1", model_id="am-1", name="m", details={"status": status})


def test_a_version_still_creating_is_asked_again_with_a_growing_pause_until_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform = PlatformClient(
        settings_from_pipeline("local", environ={}, local_base_url="http://127.0.0.1:9")
    )
    answers = iter([_version("Creating"), _version("Creating"), _version("Ready")])
    monkeypatch.setattr(platform, "describe_model_version", lambda version_id: next(answers))
    pauses: list[float] = []
    ready = platform._until_ready(_version("Creating"), pauses.append)
    assert ready.details["status"] == "Ready"
    assert pauses == [1.0, 2.0, 4.0]


def test_a_failed_import_is_a_sentence_naming_the_version() -> None:
    platform = PlatformClient(
        settings_from_pipeline("local", environ={}, local_base_url="http://127.0.0.1:9")
    )
    with pytest.raises(
        PlatformStatusError, match="the import of model version amv-1 failed; see it in the console"
    ):
        platform._until_ready(_version("Fail"), lambda pause: None)
