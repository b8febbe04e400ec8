"""A dataset file only batch inference reads needs no dataset version: on Qianfan it goes to BOS only, and is
imported into the console's dataset management (CreateDataset, CreateImportTask) only once a stage that reads
a version (evaluation, fine-tuning) asks for it. The run asks the platform for what each stage reads, and the
plan says which files a Qianfan target imports."""

from __future__ import annotations

from pathlib import Path

from runner.pipeline.spec import load_pipeline
from runner.run.plan import source_lines
from runner.testing.fake_platform import FakePlatform
from runner.testing.pipelines import DEMO, run, write

BOTH = """\
version: 1
name: both
platform: {platform}
datasets:
  qa: {{path: qa.jsonl}}
  held_out: {{path: qa.jsonl}}
  unused: {{path: qa.jsonl}}
stages:
  base: {{type: model, version_id: amv-base}}
  answers: {{type: infer, model: base, dataset: qa, params: {{temperature: 0.1}}}}
  scored:
    type: evaluate
    models: [base]
    dataset: {scored}
    needs: [answers]
    evaluators: [{{kind: rule, accuracy: true}}]
"""


def test_a_file_read_only_by_batch_inference_is_asked_for_without_a_version(tmp_path: Path) -> None:
    platform = FakePlatform()
    summary, _, _ = run(write(tmp_path, DEMO), platform)
    assert not summary.failed
    assert platform.data["datasets_ensured"] == [("qa", False)]


def test_a_later_stage_that_reads_a_version_gets_one_and_the_first_read_is_not_repeated(
    tmp_path: Path,
) -> None:
    platform = FakePlatform()
    summary, _, _ = run(write(tmp_path, BOTH.format(platform="local", scored="qa")), platform)
    assert not summary.failed
    # the infer stage runs first (needs), then the evaluation upgrades the same file to a version, once
    assert platform.data["datasets_ensured"] == [("qa", False), ("qa", True)]


def test_the_plan_says_which_files_a_qianfan_target_imports_and_which_go_to_bos_only(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, BOTH.format(platform="qianfan", scored="held_out")))
    lines = {line.split(":", 1)[0]: line for line in source_lines(pipeline)}
    assert "only batch inference reads it" in lines["dataset qa"]
    assert "CreateDataset" not in lines["dataset qa"]
    assert (
        "imported into Qianfan's datasets once (CreateDataset, CreateImportTask)" in lines["dataset held_out"]
    )
    assert lines["dataset unused"].endswith("read by no stage, so nothing is uploaded")
