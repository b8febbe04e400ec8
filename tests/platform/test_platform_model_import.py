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

from runner.errors import PlatformError, PlatformStatusError
from runner.local.app import create_app
from runner.local.credentials import LocalKeys
from runner.local.home import Home
from runner.platform import model_import, wire
from runner.platform.bos import BosClient
from runner.platform.client import PlatformClient
from runner.platform.protocol import ModelVersion
from runner.platform.settings import settings_from_pipeline
from runner.platform.wire import WireError
from runner.testing.recording import Recording
from runner.testing.serving import serve_app

REPO = Path(__file__).resolve().parents[2]
AK, SK = "ak-model-import-01", "sk-model-import-02"


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
    pauses: list[float] = []
    platform = PlatformClient(
        settings_from_pipeline("local", environ={}, local_base_url="http://127.0.0.1:9"),
        sleep=pauses.append,
    )
    answers = iter([_version("Creating"), _version("Creating"), _version("Ready")])
    monkeypatch.setattr(platform._models, "describe_version", lambda version_id: next(answers))
    ready = platform._models.until_ready(_version("Creating"))
    assert ready.details["status"] == "Ready"
    assert pauses == [1.0, 2.0, 4.0]


def test_a_failed_import_is_a_sentence_naming_the_version() -> None:
    platform = PlatformClient(
        settings_from_pipeline("local", environ={}, local_base_url="http://127.0.0.1:9")
    )
    with pytest.raises(
        PlatformStatusError, match="the import of model version amv-1 failed; see it in the console"
    ):
        platform._models.until_ready(_version("Fail"))


class LosingAnswers(Recording):
    """Sends each request; for the actions named, the first answer is lost on its way back (the platform
    acted), or with ``before`` the request is lost on its way there (the platform never saw it)."""

    def __init__(self, *actions: str, before: bool = False) -> None:
        super().__init__()
        self.lose = set(actions)
        self.before = before

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        action = request.url.params.get("Action")
        if action in self.lose and self.before:
            self.lose.discard(action)
            raise httpx.ReadError("the connection broke", request=request)
        response = super().handle_request(request)
        if action in self.lose:
            self.lose.discard(action)
            response.read()
            raise httpx.ReadError("the answer was lost", request=request)
        return response


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    with serve_app(create_app(Home(tmp_path / "home"), keys=LocalKeys(AK, SK))) as url:
        yield url


def _platform(url: str, transport: httpx.BaseTransport) -> PlatformClient:
    env = {"QFRUN_LOCAL_ACCESS_KEY": AK, "QFRUN_LOCAL_SECRET_KEY": SK}
    return PlatformClient(
        settings_from_pipeline("local", environ=env, local_base_url=url), transport=transport
    )


def test_creates_whose_answers_were_lost_are_found_again_and_never_made_twice(
    served: str, adder: Path
) -> None:
    losing = LosingAnswers("CreateCustomModelSet", "CreateCustomModel")
    with _platform(served, losing) as platform:
        version = platform.import_through_bos(name="adder", path=str(adder))
        assert version.details["status"] == "Ready"
    assert losing.lose == set()  # both answers were lost, and both creates acted
    with _platform(served, Recording()) as platform:
        assert platform.list_model_versions([version.version_id]) == {version.version_id}
        reply = platform._http.console("model", "DescribeCustomModelSets", {})
        sets = reply.body["result"]["customModelSetList"]
        assert [(s["modelSetName"], s["modelIds"]) for s in sets] == [("adder", [version.version_id])]


@pytest.mark.parametrize("action", ["CreateCustomModelSet", "CreateCustomModel"])
def test_a_create_that_never_arrived_is_an_error_not_a_guess(served: str, adder: Path, action: str) -> None:
    with _platform(served, LosingAnswers(action, before=True)) as platform:
        with pytest.raises(PlatformError, match=f"Action={action}: the connection failed"):
            platform.import_through_bos(name="adder", path=str(adder))


def test_the_version_is_looked_for_in_its_own_model_only(served: str, adder: Path, tmp_path: Path) -> None:
    with _platform(served, Recording()) as platform:
        other = platform.import_through_bos(name="other", path=str(adder))
        mine = platform.import_through_bos(name="adder", path=str(adder))
    assert mine.model_id != other.model_id
    assert mine.version_id != other.version_id


def test_links_and_special_files_aside_only_the_models_own_files_count(adder: Path) -> None:
    before = model_import.read_folder(adder)
    (adder / ".git").mkdir()
    (adder / ".git" / "HEAD").write_text("ref\n", encoding="utf-8")
    assert model_import.read_folder(adder).digest == before.digest
    (adder / "extra").mkdir()
    (adder / "extra" / "notes.txt").write_text("n\n", encoding="utf-8")
    after = model_import.read_folder(adder)
    assert "extra/notes.txt" in [item.relative for item in after.files]
    assert after.digest != before.digest


def test_a_file_too_large_for_one_upload_is_refused_naming_it(
    adder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_import, "MAX_OBJECT_BYTES", 1000)
    with pytest.raises(
        PlatformError, match=r"model\.safetensors has \d+ bytes, more than one BOS upload takes"
    ):
        model_import.read_folder(adder)


def test_a_version_creating_for_too_long_is_given_up_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    platform = PlatformClient(
        settings_from_pipeline("local", environ={}, local_base_url="http://127.0.0.1:9"),
        sleep=lambda pause: None,
    )
    monkeypatch.setattr("runner.platform.polling.IMPORT_WAIT_LIMIT_S", 2.0)
    monkeypatch.setattr(platform._models, "describe_version", lambda version_id: _version("Creating"))
    with pytest.raises(
        PlatformStatusError, match=r"amv-1 is still Creating after 3 s; see it in the console"
    ):
        platform._models.until_ready(_version("Creating"))


def test_the_local_platform_answers_create_custom_model_as_documented_and_refuses_what_it_cannot(
    served: str, adder: Path
) -> None:
    with _platform(served, Recording()) as platform, BosClient(platform.settings) as bos:
        model_set = platform._http.console(
            "model", "CreateCustomModelSet", {"modelSetName": "direct", "modelType": "Text2Text"}
        ).body["result"]
        assert isinstance(model_set, str)
        for item in model_import.read_folder(adder).files:
            bos.put_object("qfrun-local", "direct/" + item.relative, item.path.read_bytes())
        bos.put_object("qfrun-local", "direct/empty/", b"")  # a folder marker, which is no file
        meta = {"bucket": "qfrun-local", "objectPath": "/direct", "modelFormat": "HuggingFace.Transformers"}
        body = {"modelSetId": model_set, "sourceType": "Import", "importMeta": meta}
        first = platform._http.console("model", "CreateCustomModel", body).body["result"]
        again = platform._http.console("model", "CreateCustomModel", body).body["result"]
        assert (first["modelId"], first["status"], first["sourceInfo"]) == (
            again["modelId"],
            "Ready",
            {"sourceType": "Import"},
        )
        refusals = {
            # a training result is published from its task (runner.local.api_publish), not from BOS
            "needs the field 'trainMeta'": {**body, "sourceType": "Train"},
            "the description has more than 300 characters": {**body, "description": "x" * 301},
            "holds no Hugging Face model": {
                **body,
                "importMeta": {**meta, "objectPath": "direct/sub/"},
            },
        }
        bos.put_object("qfrun-local", "direct/sub/readme.txt", b"not a model")
        for message, refused in refusals.items():
            with pytest.raises(PlatformStatusError, match=message):
                platform._http.console("model", "CreateCustomModel", refused)


def test_answers_of_the_wrong_shape_are_named_by_their_field() -> None:
    with pytest.raises(WireError, match="the field 'result' should be the new model's id, a string"):
        wire.created_model_set({"modelSetId": "am-1"})
    with pytest.raises(WireError, match="modelId"):
        wire.created_version_id({"modelSetId": "am-1"})


@pytest.mark.parametrize(
    ("saved", "sent"),
    [
        ('"4.30.0"', "4.34.0"),  # older than any offered: the oldest offered, never an older one
        ('"4.38.1"', "4.39.3"),
        ('"4.40.2"', "4.40.2"),
        ('"4.40.0.dev0"', "4.40.2"),
        ('"5.17.0"', "4.40.2"),  # newer than any offered: the newest there is
        ("null", "4.40.2"),
    ],
)
def test_the_import_names_the_transformers_version_qianfan_offers_closest_to_the_saved_one(
    tmp_path: Path, saved: str, sent: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(f'{{"transformers_version": {saved}}}', encoding="utf-8")
    assert model_import.transformer_version(config) == sent


def test_the_import_body_sends_the_folders_transformers_version(adder: Path) -> None:
    folder = model_import.read_folder(adder)  # saved by transformers 5.17.0
    body = wire.import_version_body(
        "am-1", "b", folder.object_path, folder.description, folder.transformer_version
    )
    assert body["importMeta"]["transformerVersion"] == "4.40.2"
    assert body["importMeta"]["transformerVersion"] in model_import.TRANSFORMER_VERSIONS
