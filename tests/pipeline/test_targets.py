"""Targets: one pipeline file, several platforms (``platforms:`` + ``default_target:``), each check made for
the platform kind of the target chosen, and every problem of a declaration said at its line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import PipelineError
from runner.pipeline.spec import load_pipeline

PROMOTED = """\
version: 1
name: promo
platforms:
  dev: local
  prod: {kind: qianfan}
default_target: dev
datasets:
  eval:
    path: eval.jsonl
    targets:
      prod: {qianfan_dataset_id: ds-prod-eval}
stages:
  base:
    type: model
    import: model
    targets:
      prod: {version_id: amv-prod-base}
  scores:
    type: evaluate
    models: [base]
    dataset: eval
    evaluators: [{kind: rule, accuracy: true}]
"""


def write(folder: Path, text: str) -> Path:
    (folder / "eval.jsonl").write_text('{"prompt": "1+1=?", "response": "2"}\n', encoding="utf-8")
    (folder / "model").mkdir(exist_ok=True)
    (folder / "model" / "config.json").write_text("{}", encoding="utf-8")
    path = folder / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path, **options: object) -> list[str]:
    with pytest.raises(PipelineError) as raised:
        load_pipeline(path, **options)  # type: ignore[arg-type]
    return [str(issue) for issue in raised.value.issues]


def test_the_default_target_is_loaded_with_its_own_platform_and_sources(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, PROMOTED))
    assert (pipeline.target, pipeline.platform, pipeline.state_name) == (
        "dev",
        {"kind": "local"},
        "promo.dev",
    )
    assert pipeline.stages["base"].fields == {"import": "model"}
    assert pipeline.datasets["eval"].path == tmp_path / "eval.jsonl"
    assert pipeline.target_names == ("dev", "prod")


def test_another_target_sees_its_overlay_in_place_of_the_stage_source(tmp_path: Path) -> None:
    pipeline = load_pipeline(write(tmp_path, PROMOTED), target="prod")
    assert (pipeline.target, pipeline.platform_spec.name, pipeline.state_name) == (
        "prod",
        "qianfan",
        "promo.prod",
    )
    assert pipeline.stages["base"].fields == {"version_id": "amv-prod-base"}
    assert (pipeline.datasets["eval"].path, pipeline.datasets["eval"].qianfan_dataset_id) == (
        None,
        "ds-prod-eval",
    )


def test_a_pipeline_of_one_platform_keeps_its_state_name_and_answers_to_no_other_target(
    tmp_path: Path,
) -> None:
    text = PROMOTED.replace("platforms:\n  dev: local\n  prod: {kind: qianfan}\ndefault_target: dev\n", "")
    text = text.replace("    targets:\n      prod: {qianfan_dataset_id: ds-prod-eval}\n", "")
    text = text.replace("    targets:\n      prod: {version_id: amv-prod-base}\n", "")
    path = write(tmp_path, text)
    pipeline = load_pipeline(path)
    assert (pipeline.state_name, pipeline.targets_declared) == ("promo", False)
    assert problems(path, target="prod") == [
        f"{path}:1:1: --target prod: this pipeline declares no targets (platforms:), only one platform; "
        "leave --target and QFRUN_TARGET out, or declare its targets under platforms."
    ]


def test_an_unknown_target_is_refused_at_the_platforms_key_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, PROMOTED)
    assert problems(path, target="prd") == [
        f"{path}:3:1: --target prd: there is no target 'prd'; did you mean 'prod'?"
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "default_target: dev\n",
            "default_target: dve\nplatform: local\n",
            [
                "7:1: platform: give either platform (one platform) or platforms (named targets), not both; "
                "move it into platforms.",
                "6:17: default_target: there is no target 'dve'; did you mean 'dev'?",
            ],
        ),
        (
            "default_target: dev\n",
            "",
            ["3:1: platforms: name the target used without --target in default_target (one of dev, prod)."],
        ),
        (
            "      prod: {version_id: amv-prod-base}",
            "      prd: {version_id: amv-prod-base}",
            ["17:7: stages.base.targets: there is no target 'prd'; did you mean 'prod'?"],
        ),
        (
            "  prod: {kind: qianfan}\n",
            "  prod: {kind: qianfan}\n  Prod: local\n",
            [
                "6:3: platforms: 'Prod' is not a valid target name: use lower-case letters, digits, '_' and "
                "'-', starting with a letter, at most 32 characters.",
            ],
        ),
        (
            "      prod: {version_id: amv-prod-base}",
            "      prod: {version_id: amv-prod-base, import: model}",
            [
                "17:7: stages.base.targets.prod: give only one of 'version_id', 'import' or 'endpoint', "
                "not several."
            ],
        ),
    ],
)
def test_each_problem_of_a_target_declaration_is_said_where_it_is_written(
    tmp_path: Path, old: str, new: str, expected: list[str]
) -> None:
    path = write(tmp_path, PROMOTED.replace(old, new))
    assert sorted(problems(path)) == sorted(f"{path}:{line}" for line in expected)


def test_default_target_without_platforms_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path, "version: 1\nname: p\ndefault_target: dev\nstages: {m: {type: model, version_id: v}}\n"
    )
    assert problems(path) == [
        f"{path}:3:1: default_target: names a target of platforms:, which this pipeline does not declare."
    ]


def test_an_overlay_in_a_pipeline_of_one_platform_is_refused(tmp_path: Path) -> None:
    text = (
        "version: 1\nname: p\nstages:\n  m: {type: model, version_id: v, targets: {prod: {version_id: w}}}\n"
    )
    path = write(tmp_path, text)
    assert problems(path) == [
        f"{path}:4:45: stages.m.targets: this pipeline has one platform; declare targets under platforms to "
        "give one a source of its own."
    ]


def test_validation_checks_every_target_and_names_the_one_a_problem_belongs_to(tmp_path: Path) -> None:
    """BLEU is a metric of the local platform's rule evaluator only: only the prod target has that problem,
    and the message says so. Without its prod overlay the dataset file is imported on Qianfan too, which is
    no problem."""
    text = PROMOTED.replace("    targets:\n      prod: {qianfan_dataset_id: ds-prod-eval}\n", "")
    path = write(
        tmp_path, text.replace("{kind: rule, accuracy: true}", "{kind: rule, accuracy: true, bleu: true}")
    )
    found = problems(path, every_target=True)
    assert found
    assert all(": target prod: " in line for line in found), found
    assert any("stages.scores.evaluators" in line for line in found)
    assert not any("stages.scores.dataset" in line for line in found)
    load_pipeline(path)  # the default target alone is valid
    load_pipeline(path, target="dev")


def test_a_problem_every_target_has_is_said_once_without_a_target(tmp_path: Path) -> None:
    path = write(tmp_path, PROMOTED.replace("models: [base]", "models: [bsae]"))
    found = problems(path, every_target=True)
    assert found == [f"{path}:20:14: stages.scores.models.0: there is no stage 'bsae'; did you mean 'base'?"]


def test_a_local_target_with_a_remote_url_is_refused_at_that_targets_key(tmp_path: Path) -> None:
    path = write(
        tmp_path, PROMOTED.replace("  dev: local\n", "  dev: {kind: local, url: 'http://example.com'}\n")
    )
    found = problems(path, every_target=True)
    assert len(found) == 1
    assert found[0].startswith(
        f"{path}:4:27: target dev: platforms.dev.url: the local platform runs on this machine"
    )
