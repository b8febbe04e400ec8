"""The finetune stage at validate: hyper-parameters named and bounded as the platform documents them, LoRA
settings only with method lora, on Qianfan a console dataset and a model version as the base, each issue at
its file:line:col; plan says what training costs is not known."""

from __future__ import annotations

from pathlib import Path

from runner.stages.finetune import FinetuneStage
from runner.testing.cli import invoke

ROOT = Path(__file__).resolve().parents[2]


def write(
    folder: Path, tuned: str, platform: str = "local", train: str = "{path: train.jsonl}", base: str = ""
) -> Path:
    (folder / ".git").mkdir(exist_ok=True)
    (folder / "train.jsonl").write_text('{"prompt": "3-1=?", "response": "2"}\n', encoding="utf-8")
    path = folder / "ft.yaml"
    path.write_text(
        f"version: 1\nname: ft\nplatform: {platform}\n"
        f"datasets:\n  train: {train}\n"
        f"stages:\n  base: {base or '{type: model, version_id: amv-1}'}\n"
        f"  tuned:\n    type: finetune\n    model: base\n    dataset: train\n{tuned}",
        encoding="utf-8",
    )
    return path


def test_the_example_pipeline_and_a_minimal_stage_are_valid(tmp_path: Path, capsys) -> None:
    assert invoke(capsys, "validate", str(ROOT / "pipelines" / "finetune.yaml"))[0] == 0
    assert invoke(capsys, "validate", str(write(tmp_path, "")))[0] == 0


def test_a_hyper_parameter_out_of_range_or_misspelt_is_placed_at_its_line(tmp_path: Path, capsys) -> None:
    tuned = "    hyperparameters:\n      epochs: 0\n      learning_rte: 0.1\n"
    code, out, err = invoke(capsys, "validate", str(write(tmp_path, tuned)))
    assert code == 3  # an invalid pipeline
    assert "ft.yaml:13:15: stages.tuned.hyperparameters.epochs:" in out + err
    assert "ft.yaml:14:7: stages.tuned.hyperparameters: unknown key 'learning_rte'" in out + err


def test_lora_settings_with_full_fine_tuning_are_refused(tmp_path: Path, capsys) -> None:
    tuned = "    method: full\n    hyperparameters:\n      lora_rank: 8\n"
    code, out, err = invoke(capsys, "validate", str(write(tmp_path, tuned)))
    assert code == 3  # an invalid pipeline
    assert (
        "ft.yaml:14:18: stages.tuned.hyperparameters.lora_rank: lora_rank applies to method: lora only."
        in out + err
    )


def test_on_qianfan_a_local_training_file_is_valid_since_qfrun_imports_it(tmp_path: Path, capsys) -> None:
    code, out, err = invoke(capsys, "validate", str(write(tmp_path, "", platform="qianfan")))
    assert (code, out + err) == (0, f"{tmp_path / 'ft.yaml'}: valid (2 stages).\n")


def test_on_qianfan_the_base_must_be_a_model_version_not_an_endpoint(tmp_path: Path, capsys) -> None:
    path = write(
        tmp_path,
        "",
        platform="qianfan",
        train="{qianfan_dataset_id: ds-he8srs01ym0b8fh7}",
        base="{type: model, endpoint: ernie-speed-8k}",
    )
    code, out, err = invoke(capsys, "validate", str(path))
    assert code == 3  # an invalid pipeline
    assert "ft.yaml:10:12: stages.tuned.model: on Qianfan the base model is named in the fine-tuning job" in (
        out + err
    )


def test_on_qianfan_a_console_dataset_is_valid_and_plan_says_the_cost_is_not_known(
    tmp_path: Path, capsys
) -> None:
    path = write(tmp_path, "", platform="qianfan", train="{qianfan_dataset_id: ds-he8srs01ym0b8fh7}")
    assert invoke(capsys, "validate", str(path))[0] == 0
    stage = FinetuneStage()
    fields = {"model": "base", "dataset": "train", "hyperparameters": {"epochs": 2}}
    detail = stage.plan(stage.planned_fields("tuned", fields))
    assert detail.summary == "fine-tune base on train (lora, epochs=2)"
    assert detail.cost is not None
    assert detail.cost.startswith("not known: no captured Qianfan page gives")
