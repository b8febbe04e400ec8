"""The finetune stage at validate: hyper-parameters named and bounded as the platform documents them, LoRA
settings only with method lora, refused on Qianfan for now, each issue at its file:line:col."""

from __future__ import annotations

from pathlib import Path

from runner.testing.cli import invoke

ROOT = Path(__file__).resolve().parents[2]


def write(folder: Path, tuned: str, platform: str = "local") -> Path:
    (folder / ".git").mkdir(exist_ok=True)
    (folder / "train.jsonl").write_text('{"prompt": "3-1=?", "response": "2"}\n', encoding="utf-8")
    path = folder / "ft.yaml"
    path.write_text(
        f"version: 1\nname: ft\nplatform: {platform}\n"
        "datasets:\n  train: {path: train.jsonl}\n"
        "stages:\n  base: {type: model, version_id: amv-1}\n"
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


def test_on_qianfan_the_stage_is_refused_with_what_to_do_instead(tmp_path: Path, capsys) -> None:
    code, out, err = invoke(capsys, "validate", str(write(tmp_path, "", platform="qianfan")))
    assert code == 3  # an invalid pipeline
    assert "ft.yaml:8:3: stages.tuned: a finetune stage runs on the local platform only for now" in out + err
