"""Dataset and model uploads, called in-process: each refusal names the line or folder at fault, and nothing
a refused upload sent is kept in the platform's data directory."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from runner import content_hash
from runner.local import api_datasets
from runner.local.home import Home

if TYPE_CHECKING:
    from conftest import Api

IMPORT_DATASET = "/v2/dataset?Action=ImportLocalDataset"
IMPORT_MODEL = "/v2/model?Action=ImportLocalModel"


def _dataset_body(name: str, text: str) -> dict[str, Any]:
    return {"name": name, "sha256": hashlib.sha256(text.encode()).hexdigest(), "content": text}


def _refused(response: Any) -> str:
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "InvalidParameter"
    return str(response.json()["message"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prompt": "a"}\nnot json\n', "ImportLocalDataset: line 2 is not valid JSON"),
        ('["prompt", "a"]\n', "ImportLocalDataset: line 1 must be a JSON object."),
        ('{"prompt": 7}\n', "ImportLocalDataset: line 1 needs a string field 'prompt'."),
        ('{"prompt": "a", "response": 2}\n', "ImportLocalDataset: line 1 has a 'response' that is not"),
        ("\n  \n", "ImportLocalDataset: the field 'content' must not be empty."),
    ],
)
def test_a_dataset_with_a_bad_row_is_refused_naming_its_line_and_nothing_is_stored(
    asgi_api: Api, platform_home: Home, content: str, message: str
) -> None:
    assert _refused(asgi_api.post(IMPORT_DATASET, _dataset_body("d", content))).startswith(message)
    assert list(platform_home.datasets_dir.iterdir()) == []


def test_blank_lines_are_not_rows_and_the_sha256_is_compared_in_any_case(asgi_api: Api) -> None:
    text = '\n{"prompt": "1+1=?", "response": "2"}\n\n{"prompt": "2+2=?"}\n'
    body = _dataset_body("d", text)
    upper = asgi_api.call("dataset", "ImportLocalDataset", {**body, "sha256": body["sha256"].upper()})
    assert upper["sampleCount"] == 2
    assert upper["sizeBytes"] == len(text.encode())
    assert asgi_api.call("dataset", "ImportLocalDataset", body)["versionId"] == upper["versionId"]


def test_a_dataset_over_the_size_limit_is_refused_before_it_is_hashed(
    asgi_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_datasets, "MAX_CONTENT_BYTES", 16)
    body = _dataset_body("d", '{"prompt": "1+1=?"}\n')
    body["sha256"] = "0" * 64  # a wrong hash too: the size is what is named
    assert _refused(asgi_api.post(IMPORT_DATASET, body)) == (
        "ImportLocalDataset: the content has 20 bytes; the limit is 16."
    )


def test_an_export_returns_the_first_rows_up_to_its_limit(asgi_api: Api) -> None:
    rows = [json.dumps({"prompt": f"{n}+1=?", "response": str(n + 1)}) for n in range(5)]
    version = asgi_api.upload("d", "\n".join(rows) + "\n")["versionId"]
    two = asgi_api.call("dataset", "ExportDatasetVersion", {"versionId": version, "limit": 2})
    assert two == {"versionId": version, "entityCount": 2, "content": rows[0] + "\n" + rows[1] + "\n"}
    none = asgi_api.call("dataset", "ExportDatasetVersion", {"versionId": version, "limit": 0})
    assert (none["entityCount"], none["content"]) == (0, "")
    every = asgi_api.call("dataset", "ExportDatasetVersion", {"versionId": version})
    assert every["entityCount"] == 5
    negative = asgi_api.post("/v2/dataset?Action=ExportDatasetVersion", {"versionId": version, "limit": -1})
    assert "'limit' must be between 0" in _refused(negative)


def _import(api: Api, path: Path | str, name: str = "m") -> Any:
    return api.post(IMPORT_MODEL, {"name": name, "path": str(path)})


def test_a_model_path_must_be_an_absolute_model_folder(
    asgi_api: Api, tmp_path: Path, fake_model: Callable[[Path], Path]
) -> None:
    assert _refused(_import(asgi_api, "relative/m")) == (
        "ImportLocalModel needs an absolute path; 'relative/m' is relative."
    )
    a_file = tmp_path / "weights.bin"
    a_file.write_bytes(b"\0")
    assert "does not exist or is not a folder" in _refused(_import(asgi_api, a_file))
    bare = tmp_path / "bare"
    bare.mkdir()
    assert _refused(_import(asgi_api, bare)).endswith("has no config.json, so it is not a model folder.")
    (bare / "config.json").write_text("{}")
    assert _refused(_import(asgi_api, bare)).endswith("has no .safetensors weights.")


def test_the_platforms_own_data_folder_cannot_be_imported(
    asgi_api: Api, platform_home: Home, fake_model: Callable[[Path], Path]
) -> None:
    inside = fake_model(platform_home.root / "models" / "planted")
    # The folder that holds the data directory is refused; a model folder inside it is a model folder.
    fake_model(platform_home.root.parent)
    assert "holds the platform's own data" in _refused(_import(asgi_api, platform_home.root.parent))
    assert _import(asgi_api, inside).status_code == 200


def test_a_model_folder_with_a_link_out_of_it_or_a_fifo_is_refused_and_nothing_is_copied(
    asgi_api: Api, platform_home: Home, tmp_path: Path, fake_model: Callable[[Path], Path]
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not a model's")
    linked = fake_model(tmp_path / "linked")
    (linked / "tokenizer.json").symlink_to(secret)
    assert "has a link out of it: tokenizer.json ->" in _refused(_import(asgi_api, linked))
    piped = fake_model(tmp_path / "piped")
    os.mkfifo(piped / "stream")
    assert "has stream, which is neither a file nor a folder" in _refused(_import(asgi_api, piped))
    assert [p.name for p in platform_home.models_dir.iterdir()] == []


def test_a_link_inside_the_folder_is_imported_as_the_file_it_names(
    asgi_api: Api, tmp_path: Path, fake_model: Callable[[Path], Path]
) -> None:
    folder = fake_model(tmp_path / "m")
    (folder / "generation_config.json").write_text('{"max_new_tokens": 4}')
    (folder / "alias.json").symlink_to(folder / "generation_config.json")
    described = _import(asgi_api, folder).json()["result"]
    copied = Path(described["details"]["imported_from"])
    assert copied == folder
    assert described["sourceInfo"] == {"sourceType": "Import"}


def test_an_unreadable_model_folder_is_refused_with_the_reason(
    asgi_api: Api, tmp_path: Path, fake_model: Callable[[Path], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = fake_model(tmp_path / "m")

    def unreadable(path: Path) -> content_hash.Tree:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(content_hash, "of_folder", unreadable)
    assert _refused(_import(asgi_api, folder)) == (
        f"ImportLocalModel: the folder {folder} cannot be read: Permission denied."
    )


def test_the_same_content_under_another_name_is_another_model(
    asgi_api: Api, tmp_path: Path, fake_model: Callable[[Path], Path]
) -> None:
    folder = fake_model(tmp_path / "m")
    first = _import(asgi_api, folder, "first").json()["result"]
    second = _import(asgi_api, folder, "second").json()["result"]
    assert first["modelSetId"] != second["modelSetId"]
    assert (first["version"], second["version"]) == ("1", "1")
    assert Path(asgi_api.app.state.context.store.version(second["modelId"]).path).is_dir()
