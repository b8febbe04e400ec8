"""Files stay inside the repository: every local path a pipeline names (datasets, model folders to import,
custom evaluators' modules) resolves inside the pipeline's repository or a folder the user allowed outside
the file, is a regular file (or a folder of them), and is read with a size limit, never blocking."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from runner import content_hash
from runner.cli import main
from runner.errors import PipelineError
from runner.files import Confinement, PathRefused, read_regular, repository_of
from runner.pipeline.spec import load_pipeline
from runner.run.plan import INVALID, make_plan
from runner.state.file import StateFile

PIPELINE = """\
version: 1
name: files
datasets:
  qa: {{path: {dataset}}}
stages:
  m:
    type: model
    import: {model}
  e:
    type: evaluate
    models: [m]
    dataset: qa
    evaluators: [{{kind: custom, function: "{function}"}}]
"""


def repository(root: Path) -> Path:
    """A git work tree with a pipeline in pipelines/, its data in data/, a model and a scorer."""
    (root / ".git").mkdir(parents=True)
    (root / "pipelines").mkdir()
    (root / "data").mkdir()
    (root / "data" / "qa.jsonl").write_text('{"prompt": "1+1=?", "response": "2"}\n')
    (root / "models" / "tiny").mkdir(parents=True)
    (root / "models" / "tiny" / "config.json").write_text("{}")
    (root / "pipelines" / "evals").mkdir()  # custom modules are named from the pipeline's folder
    (root / "pipelines" / "evals" / "score.py").write_text("def score(rows):\n    return {}\n")
    return root


def pipeline(
    root: Path,
    *,
    dataset: str = "../data/qa.jsonl",
    model: str = "../models/tiny",
    function: str = "evals.score:score",
) -> Path:
    path = root / "pipelines" / "p.yaml"
    path.write_text(PIPELINE.format(dataset=dataset, model=model, function=function))
    return path


def problems(path: Path, **options: object) -> list[str]:
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path, **options)  # type: ignore[arg-type]
    return [str(issue) for issue in caught.value.issues]


def test_paths_inside_the_repository_are_read_wherever_the_pipeline_lies_in_it(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    loaded = load_pipeline(pipeline(root))
    assert repository_of(loaded.path) == root.resolve()
    assert loaded.files.repository == root.resolve()
    # the plan names the code a run executes, and where in the repository it comes from
    plan = make_plan(loaded, StateFile.load(tmp_path / "state.json", "files"))
    assert plan.code == (
        "e: custom evaluator evals.score:score runs pipelines/evals/score.py of the repository",
    )
    assert "custom evals.score:score (evals/score.py)" in plan.stages[1].summary


def test_a_path_out_of_the_repository_is_refused_at_validate_with_its_location(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    (tmp_path / "secret.jsonl").write_text('{"prompt": "k", "response": "v"}\n')
    (tmp_path / "weights").mkdir()
    path = pipeline(root, dataset="../../secret.jsonl", model=str(tmp_path / "weights"))
    found = problems(path)
    assert found[0] == (
        f"{path}:4:14: datasets.qa.path: ../../secret.jsonl resolves to "
        f"{(tmp_path / 'secret.jsonl').resolve()}, "
        f"outside the repository {root.resolve()} and the folders allowed with --allow-path or "
        "QFRUN_ALLOW_PATHS."
    )
    assert found[1].startswith(f"{path}:8:13: stages.m.import: {tmp_path / 'weights'} resolves to ")


def test_a_symlink_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    (tmp_path / "secret.jsonl").write_text("{}\n")
    (root / "data" / "leak.jsonl").symlink_to(tmp_path / "secret.jsonl")
    found = problems(pipeline(root, dataset="../data/leak.jsonl"))
    assert len(found) == 1
    assert "datasets.qa.path: ../data/leak.jsonl is a link to " in found[0]
    assert "outside the repository" in found[0]


def test_outside_git_the_boundary_is_the_pipelines_own_folder(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    (root / ".git").rmdir()
    found = problems(pipeline(root))
    assert [message.split(": ", 2)[1] for message in found] == ["datasets.qa.path", "stages.m.import"]
    assert f"outside the repository {(root / 'pipelines').resolve()}" in found[0]


def test_folders_the_user_allows_outside_the_file_widen_the_boundary_for_data_not_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = repository(tmp_path / "repo")
    shared = tmp_path / "shared"
    (shared / "tiny").mkdir(parents=True)
    (shared / "tiny" / "config.json").write_text("{}")
    (shared / "qa.jsonl").write_text("{}\n")
    (shared / "score.py").write_text("def score(rows):\n    return {}\n")
    (root / "pipelines" / "evals" / "score.py").unlink()
    (root / "pipelines" / "evals" / "score.py").symlink_to(shared / "score.py")
    path = pipeline(root, dataset=str(shared / "qa.jsonl"), model="../../shared/tiny")

    def validate(*args: str) -> tuple[int, str]:
        try:
            main(["validate", *args, str(path)])
        except SystemExit as stop:
            return int(stop.code or 0), capsys.readouterr().out
        return 0, capsys.readouterr().out

    code, out = validate()
    assert code == 3
    assert out.count("outside the repository") == 3
    code, out = validate("--allow-path", str(shared))
    # the data and the model may now come from there; code still only from the repository
    assert code == 3
    assert out.splitlines() == [
        f"{path}:13:43: stages.e.evaluators.0.function: evals/score.py is a link to "
        f"{(shared / 'score.py').resolve()}, outside the repository {root.resolve()} (code runs only from "
        "there)."
    ]
    monkeypatch.setenv("QFRUN_ALLOW_PATHS", os.pathsep.join([str(tmp_path / "elsewhere"), str(shared)]))
    assert validate()[1] == out
    (root / "pipelines" / "evals" / "score.py").unlink()
    (root / "pipelines" / "evals" / "score.py").write_text("def score(rows):\n    return {}\n")
    assert validate()[0] == 0


def test_a_fifo_or_a_device_named_as_a_dataset_is_refused_without_being_opened(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    os.mkfifo(root / "data" / "pipe.jsonl")
    found = problems(pipeline(root, dataset="../data/pipe.jsonl"))
    assert found == [
        f"{root / 'pipelines' / 'p.yaml'}:4:14: datasets.qa.path: ../data/pipe.jsonl is a FIFO, not a "
        "regular file; qfrun reads regular files only."
    ]
    # even from a folder the user allowed, a device is not a dataset (reading /dev/zero would never end)
    found = problems(pipeline(root, dataset="/dev/zero"), allow_paths=["/dev"])
    assert found[0].endswith(
        "datasets.qa.path: /dev/zero is a device, not a regular file; qfrun reads regular files only."
    )


def test_a_model_folder_holding_a_fifo_or_a_link_out_is_refused_at_validate(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    folder = root / "models" / "tiny"
    os.mkfifo(folder / "pipe")
    assert problems(pipeline(root)) == [
        f"{root / 'pipelines' / 'p.yaml'}:8:13: stages.m.import: ../models/tiny holds pipe, which is a FIFO; "
        "model folders hold regular files."
    ]
    (folder / "pipe").unlink()
    (folder / "zero.bin").symlink_to("/dev/zero")
    assert problems(pipeline(root)) == [
        f"{root / 'pipelines' / 'p.yaml'}:8:13: stages.m.import: ../models/tiny has a link out of it: "
        "zero.bin -> /dev/zero."
    ]


def test_hashing_reads_regular_files_only_with_a_size_limit_and_never_follows_a_link_out(
    tmp_path: Path,
) -> None:
    os.mkfifo(tmp_path / "pipe")
    outcome: list[BaseException] = []

    def hash_the_fifo() -> None:
        try:
            content_hash.of_file(tmp_path / "pipe")
        except Exception as error:  # noqa: BLE001 - the assertions below say which it must be
            outcome.append(error)

    reader = threading.Thread(target=hash_the_fifo, daemon=True)
    reader.start()
    reader.join(10)  # opening a FIFO without O_NONBLOCK would wait for a writer forever
    assert not reader.is_alive()
    assert isinstance(outcome[0], PathRefused)
    assert "is not a regular file" in str(outcome[0])

    big = tmp_path / "big.jsonl"
    big.write_bytes(b"x" * 1000)
    with pytest.raises(PathRefused, match="is 1,000 bytes, more than the 999 qfrun reads"):
        content_hash.of_file(big, limit=999)
    assert read_regular(big, 1000) == b"x" * 1000

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    before = content_hash.of_folder(folder)
    (folder / "alias.json").symlink_to(folder / "config.json")  # a link inside the folder is its content
    assert content_hash.of_folder(folder) != before
    (folder / "secret").symlink_to(big)
    with pytest.raises(PathRefused, match="has a link out of it: secret ->"):
        content_hash.of_folder(folder)


def test_an_import_path_an_expression_makes_is_confined_when_it_is_known(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "config.json").write_text("{}")
    path = root / "pipelines" / "p.yaml"
    path.write_text(
        "version: 1\nname: files\nvars: {folder: ../../weights}\nstages:\n"
        "  m: {type: model, import: '${{ vars.folder }}'}\n"
    )
    loaded = load_pipeline(path)  # validate cannot know the folder before the expression runs
    plan = make_plan(loaded, StateFile.load(tmp_path / "state.json", "files"))
    (stage,) = plan.stages
    assert stage.action == INVALID
    assert f"{path}:5:28: stages.m.import: ../../weights resolves to " in stage.reasons[0]
    assert "outside the repository" in stage.reasons[0]


def test_confinement_folds_dot_dot_before_it_compares(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    files = Confinement.for_pipeline(root / "pipelines" / "p.yaml")
    assert files.file("../data/../data/qa.jsonl") == (root / "data" / "qa.jsonl").resolve()
    with pytest.raises(PathRefused, match="resolves to"):
        files.file("../data/../../repo/../secret")


def test_a_loop_of_links_or_a_folder_named_as_a_file_is_refused_in_a_sentence(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo")
    (root / "data" / "a.jsonl").symlink_to(root / "data" / "b.jsonl")
    (root / "data" / "b.jsonl").symlink_to(root / "data" / "a.jsonl")
    assert problems(pipeline(root, dataset="../data/a.jsonl"))[0].endswith(
        "datasets.qa.path: ../data/a.jsonl is a loop of links."
    )
    assert problems(pipeline(root, dataset="../data"))[0].endswith(
        "datasets.qa.path: ../data is a folder, not a regular file; qfrun reads regular files only."
    )


def test_paths_of_a_pipeline_named_by_a_relative_path_are_confined_from_its_own_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = repository(tmp_path / "repo")
    pipeline(root)
    monkeypatch.chdir(root)
    loaded = load_pipeline("pipelines/p.yaml")
    files = make_plan(loaded, StateFile.load(tmp_path / "state.json", "files"))
    # the model stage's fingerprint reads its folder from the pipeline's folder, not the working folder
    assert files.stages[0].action != INVALID, files.stages[0].reasons
    assert loaded.datasets["qa"].path == (root / "pipelines" / "../data/qa.jsonl").absolute()
