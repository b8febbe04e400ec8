"""A pipeline's dataset file imported the way Qianfan imports one (its rows in the PromptResponse layout to
BOS, then CreateDataset and CreateImportTask [D1][D5]): a client of kind ``qianfan`` against the real local
platform over signed HTTP (127.0.0.1, a free port), which answers those actions from its own BOS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from runner import content_hash
from runner.errors import PlatformStatusError
from runner.local.app import create_app
from runner.local.credentials import LocalKeys
from runner.local.home import Home
from runner.platform import dataset_import
from runner.platform.bos import BosClient
from runner.platform.client import PlatformClient
from runner.platform.settings import LOCAL_BOS_BUCKET, settings_from_pipeline
from runner.testing.faults import FaultyTransport, action
from runner.testing.recording import Recording
from runner.testing.serving import serve_app

REPO = Path(__file__).resolve().parents[2]
AK, SK = "ak-dataset-import-01", "sk-dataset-import-02"
EVAL = REPO / "data" / "addition" / "eval.jsonl"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    with serve_app(create_app(Home(tmp_path / "home"), keys=LocalKeys(AK, SK))) as url:
        yield url


def cloud_client(url: str, transport: httpx.BaseTransport) -> PlatformClient:
    """A client of kind qianfan whose console, inference and BOS addresses are the local platform's."""
    env = {
        "QIANFAN_ACCESS_KEY": AK,
        "QIANFAN_SECRET_KEY": SK,
        "QIANFAN_CONSOLE_API_BASE_URL": url,
        "QIANFAN_BASE_URL": url,
        "QIANFAN_BOS_ENDPOINT": url,
        "QIANFAN_BOS_BUCKET": LOCAL_BOS_BUCKET,
    }
    settings = settings_from_pipeline("qianfan", environ=env)
    return PlatformClient(settings, transport=transport, sleep=lambda _: None)


@pytest.fixture
def cloud(served: str) -> Iterator[tuple[PlatformClient, Recording]]:
    transport = Recording()
    with cloud_client(served, transport) as client:
        yield client, transport


def console(client: PlatformClient, action: str, body: dict[str, object]) -> object:
    """One console call as another program (or an earlier, killed run) would make it."""
    return client._http.console("dataset", action, body).body["result"]


def ensure(client: PlatformClient, path: Path, name: str = "eval") -> object:
    return client.ensure_dataset(name=name, path=str(path), sha256=content_hash.of_file(path))


def test_a_dataset_file_becomes_a_finished_console_version_once_and_is_found_again(
    cloud: tuple[PlatformClient, Recording],
) -> None:
    client, transport = cloud
    dataset = client.ensure_dataset(name="eval", path=str(EVAL), sha256=content_hash.of_file(EVAL))
    assert dataset.dataset_id.startswith("ds-")
    assert dataset.rows == 200
    assert dataset.batch_input_uri  # batch inference's input still goes to BOS beside it
    assert transport.sent.count("POST CreateDataset") == 1
    assert transport.sent.count("POST CreateImportTask") == 1
    described = console(client, "DescribeDatasetVersion", {"versionId": dataset.dataset_id})
    assert isinstance(described, dict)
    assert described["importStatus"] == "ImportFinished"
    assert described["sampleCount"] == 200
    assert described["datasetName"] == dataset_import.dataset_name("eval", content_hash.of_file(EVAL))

    transport.sent.clear()
    again = client.ensure_dataset(name="eval", path=str(EVAL), sha256=content_hash.of_file(EVAL))
    assert again.dataset_id == dataset.dataset_id
    assert "POST CreateDataset" not in transport.sent
    assert "POST CreateImportTask" not in transport.sent
    assert not [line for line in transport.sent if line.startswith("PUT ")]  # same MD5: nothing uploaded


def test_the_imported_rows_are_the_files_rows_in_qianfans_layout(
    cloud: tuple[PlatformClient, Recording],
) -> None:
    client, _ = cloud
    dataset = ensure(client, EVAL)
    prepared = dataset_import.prepare(EVAL.read_text(), content_hash.of_file(EVAL), str(EVAL))
    with BosClient(client.settings) as bos:
        uploaded = bos.get_object(LOCAL_BOS_BUCKET, prepared.key).decode()
    first = json.loads(uploaded.splitlines()[0])
    assert first == [{"prompt": "97+57=?", "response": [["154"]]}]
    # The local platform read the layout back into the rows its engine scores with.
    exported = console(client, "ExportDatasetVersion", {"versionId": dataset.dataset_id, "limit": 2})
    assert isinstance(exported, dict)
    rows = [json.loads(line) for line in exported["content"].splitlines()]
    assert rows == [{"prompt": "97+57=?", "response": "154"}, {"prompt": "87+17=?", "response": "104"}]


def test_a_crash_between_create_dataset_and_the_import_makes_no_second_dataset(
    cloud: tuple[PlatformClient, Recording],
) -> None:
    client, transport = cloud
    sha = content_hash.of_file(EVAL)
    title = dataset_import.dataset_name("eval", sha)
    made = console(client, "CreateDataset", dataset_import.create_body(title))  # then the run was killed
    assert isinstance(made, dict)

    transport.sent.clear()
    dataset = ensure(client, EVAL)
    assert dataset.dataset_id == made["versionId"]
    assert "POST CreateDataset" not in transport.sent
    assert transport.sent.count("POST CreateImportTask") == 1
    listed = console(client, "DescribeDatasets", {"filter": {"datasetName": title}})
    assert isinstance(listed, dict)
    assert [item["datasetName"] for item in listed[dataset_import.DATASETS_FIELD]] == [title]


def test_an_import_an_earlier_run_started_is_waited_for_not_started_again(
    cloud: tuple[PlatformClient, Recording],
) -> None:
    client, transport = cloud
    sha = content_hash.of_file(EVAL)
    prepared = dataset_import.prepare(EVAL.read_text(), sha, str(EVAL))
    with BosClient(client.settings) as bos:
        bos.put_object(LOCAL_BOS_BUCKET, prepared.key, prepared.data)
    made = console(
        client, "CreateDataset", dataset_import.create_body(dataset_import.dataset_name("eval", sha))
    )
    assert isinstance(made, dict)
    bos_file = f"bos:/{LOCAL_BOS_BUCKET}/{prepared.key}"
    console(client, "CreateImportTask", dataset_import.import_body(made["versionId"], bos_file))

    transport.sent.clear()
    dataset = ensure(client, EVAL)
    assert dataset.dataset_id == made["versionId"]
    assert "POST CreateDataset" not in transport.sent
    assert "POST CreateImportTask" not in transport.sent


def test_a_file_with_a_bad_line_is_refused_before_anything_is_created(
    cloud: tuple[PlatformClient, Recording], tmp_path: Path
) -> None:
    client, transport = cloud
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "1+1=?", "response": "2"}\n{"prompt": "2+2=?", "response": 4}\n')
    with pytest.raises(PlatformStatusError, match=r"bad\.jsonl line 2 has a 'response' that is not a string"):
        ensure(client, bad)
    assert "POST CreateDataset" not in transport.sent


def test_an_import_the_platform_failed_is_an_error_that_names_the_version_and_the_line(
    cloud: tuple[PlatformClient, Recording],
) -> None:
    client, transport = cloud
    sha = content_hash.of_file(EVAL)
    made = console(
        client, "CreateDataset", dataset_import.create_body(dataset_import.dataset_name("eval", sha))
    )
    assert isinstance(made, dict)
    with BosClient(client.settings) as bos:  # an earlier import from a file the platform could not read
        bos.put_object(LOCAL_BOS_BUCKET, "elsewhere/broken.jsonl", b'[{"prompt": "1+1=?"}]\nnot json\n')
    task = console(
        client,
        "CreateImportTask",
        dataset_import.import_body(made["versionId"], f"bos:/{LOCAL_BOS_BUCKET}/elsewhere/broken.jsonl"),
    )
    state = console(client, "DescribeImportTask", {"taskId": task})
    assert isinstance(state, dict)
    assert state["importStatus"] == "ImportFailed"
    assert "broken.jsonl line 2 is not JSON" in state["errorMessage"]

    transport.sent.clear()
    with pytest.raises(PlatformStatusError) as failed:
        ensure(client, EVAL)
    assert f"the import into dataset version {made['versionId']} failed" in str(failed.value)
    assert "POST CreateImportTask" not in transport.sent  # a failed version is never imported into twice


def test_the_import_is_waited_for_until_it_finishes(cloud: tuple[PlatformClient, Recording]) -> None:
    """Against recorded DescribeImportTask answers: Importing twice, then ImportFinished."""
    client, _ = cloud
    answers = iter(["Importing", "Importing", "ImportFinished"])
    pauses: list[float] = []

    def describe(route: str, action: str, body: object, **_: object) -> object:
        return SimpleNamespace(body={"result": {"importStatus": next(answers), "sampleCount": 3}})

    client._http.console = describe  # type: ignore[method-assign,assignment]
    client._http.pause = pauses.append  # type: ignore[method-assign]
    client._datasets.until_imported("ds-1", "task-1")
    assert pauses == [1.0, 2.0]


def test_creates_whose_answers_were_lost_are_found_again_and_never_made_twice(served: str) -> None:
    recording = Recording()
    faulty = FaultyTransport(recording)
    faulty.lose_answer(action("CreateDataset"))
    faulty.lose_answer(action("CreateImportTask"))
    with cloud_client(served, faulty) as client:
        dataset = ensure(client, EVAL)
        assert len(faulty.log) == 2  # both answers were lost, and both creates acted
        assert recording.sent.count("POST CreateDataset") == 1
        assert recording.sent.count("POST CreateImportTask") == 1
        listed = console(client, "DescribeDatasets", {})
    assert isinstance(listed, dict)
    assert [item["datasetId"] for item in listed[dataset_import.DATASETS_FIELD]] == [
        console_dataset_id(served, dataset.dataset_id)
    ]


def console_dataset_id(url: str, version_id: str) -> str:
    with cloud_client(url, httpx.HTTPTransport()) as client:
        described = console(client, "DescribeDatasetVersion", {"versionId": version_id})
    assert isinstance(described, dict)
    return str(described["datasetId"])


def test_a_file_only_batch_inference_reads_goes_to_bos_and_is_imported_only_when_a_version_is_asked_for(
    cloud: tuple[PlatformClient, Recording],
) -> None:
    client, transport = cloud
    batch_only = client.ensure_dataset(
        name="eval", path=str(EVAL), sha256=content_hash.of_file(EVAL), version=False
    )
    assert (batch_only.dataset_id, batch_only.rows) == ("", 200)
    assert batch_only.batch_input_uri
    assert not [line for line in transport.sent if "Dataset" in line or "ImportTask" in line]

    versioned = ensure(client, EVAL)  # a later stage evaluates on it: now it is imported, once
    assert versioned.dataset_id.startswith("ds-")
    assert versioned.batch_input_uri == batch_only.batch_input_uri
    assert transport.sent.count("POST CreateDataset") == 1
    assert transport.sent.count("POST CreateImportTask") == 1
