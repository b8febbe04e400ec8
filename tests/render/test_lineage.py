"""Lineage, before/after and loss curves, built from a state the real executor wrote (the platform is the fake
one here: the slow test in test_lineage_local.py runs the same on the real local platform).

A fine-tuned model reads: base → fine-tuning task and the training dataset's fingerprint → version →
compression → evaluations → service, in the report (JSON, Markdown, HTML) and in ``qfrun status``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from runner.pipeline.spec import load_pipeline
from runner.render.lineage import build_lineage, gains
from runner.render.report import as_markdown, build_report
from runner.render.report_html import as_html
from runner.state.file import StateFile
from runner.testing.cli import invoke
from runner.testing.fake_platform import FakePlatform, Script
from runner.testing.pipelines import run, write

PIPELINE = """\
version: 1
name: ft
datasets:
  qa: {path: qa.jsonl}
  other: {path: other.jsonl}
  train: {path: train.jsonl}
stages:
  base: {type: model, version_id: amv-base}
  tuned:
    type: finetune
    model: base
    dataset: train
    method: full
    hyperparameters: {epochs: 2}
EVALUATIONS
  w8: {type: compress, model: tuned, strategy: quantization, weight: W8A16C16}
  serve:
    type: deploy
    model: w8
    service:
      name: svc
      url_suffix: s8
      replicas: 1
      resource_type: CPU-1-1
      billing: {payment: postpaid, charge: computing_unit}
"""
SIDE_BY_SIDE = """\
  scores:
    type: evaluate
    models: [base, tuned]
    dataset: qa
    evaluators: [{kind: rule, accuracy: true}]
"""
APART = """\
  base_eval:
    type: evaluate
    models: [base]
    dataset: qa
    evaluators: [{kind: rule, accuracy: true}]
  tuned_eval:
    type: evaluate
    models: [tuned]
    dataset: DATASET
    evaluators: [{kind: rule, accuracy: true}]
"""
CURVE = [  # a validation loss in its own point (as Trainer logs it) or beside the training loss
    {"step": 10, "loss": 2.5},
    {"step": 20, "eval_loss": 1.2},
    {"step": 20, "loss": 1.0},
    {"step": 30, "eval_loss": 0.9, "loss": 0.4},
]
TRAIN = '{"prompt": "3-1=?", "response": "2"}\n'


def _scores(*metrics: tuple[str, float]) -> Script:
    return Script(result={"models": {vid: {"metrics": {"accuracy": a}, "samples": 10} for vid, a in metrics}})


def _run(tmp_path: Path, evaluations: str = SIDE_BY_SIDE) -> tuple[Path, StateFile]:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "train.jsonl").write_text(TRAIN)
    (tmp_path / "other.jsonl").write_text('{"prompt": "9-9=?", "response": "0"}\n')
    path = write(tmp_path, PIPELINE.replace("EVALUATIONS\n", evaluations))
    fake = FakePlatform(
        scripts={
            "tuned": Script(result={"version_id": "amv-tuned", "model_id": "am-1", "loss_curve": CURVE}),
            "scores": _scores(("amv-base", 0.02), ("amv-tuned", 0.92)),
            "base_eval": _scores(("amv-base", 0.02)),
            "tuned_eval": _scores(("amv-tuned", 0.9)),
        }
    )
    summary, state, _ = run(path, fake)
    assert {outcome.outcome for outcome in summary.outcomes.values()} == {"succeeded"}
    return path, state


def test_each_version_is_traced_from_its_base_through_training_and_compression_to_its_service(
    tmp_path: Path,
) -> None:
    path, state = _run(tmp_path)
    nodes = {node["stage"]: node for node in build_lineage(load_pipeline(path), state)}
    assert list(nodes) == ["base", "tuned", "w8"]  # versions only, in pipeline order
    assert (nodes["base"]["source"], nodes["tuned"]["source"], nodes["w8"]["source"]) == (
        None,
        "base",
        "tuned",
    )
    tuned = nodes["tuned"]
    assert tuned["version_id"] == "amv-tuned"
    assert tuned["task"] == f"finetuning task {state.stages['tuned'].task['task_id']}"  # type: ignore[index]
    # the fingerprint of the training data the task read, as the executor hashed it for the run
    assert tuned["inputs"] == {"dataset train": hashlib.sha256(TRAIN.encode()).hexdigest()}
    assert tuned["made_by"] == "fine-tune base on train (full, epochs=2)"
    assert tuned["evaluations"] == [{"stage": "scores", "series": "tuned", "metrics": {"accuracy": 0.92}}]
    assert nodes["w8"]["made_by"] == "compress tuned by quantization W8A16C16"
    assert nodes["w8"]["task"] is not None
    assert nodes["w8"]["task"].startswith("compression task ")
    assert nodes["w8"]["services"] == [{"stage": "serve", "url_suffix": "s8"}]
    assert nodes["base"]["services"] == nodes["tuned"]["services"] == []


def test_a_side_by_side_evaluation_gives_the_tuned_models_gain_over_its_base(tmp_path: Path) -> None:
    path, state = _run(tmp_path)
    pipeline = load_pipeline(path)
    (gain,) = gains(pipeline, state, build_lineage(pipeline, state))
    assert gain == {
        "model": "tuned",
        "source": "base",
        "evaluation": "scores",
        "metric": "accuracy",
        "before": 0.02,
        "after": 0.92,
        "delta": gain["delta"],
    }
    assert round(gain["delta"], 9) == 0.9


def test_two_evaluations_of_one_dataset_scored_alike_are_compared_but_not_of_two_datasets(
    tmp_path: Path,
) -> None:
    path, state = _run(tmp_path / "same", APART.replace("DATASET", "qa"))
    pipeline = load_pipeline(path)
    (gain,) = gains(pipeline, state, build_lineage(pipeline, state))
    assert (gain["evaluation"], gain["before"], gain["after"]) == ("base_eval → tuned_eval", 0.02, 0.9)

    path, state = _run(tmp_path / "other", APART.replace("DATASET", "other"))
    pipeline = load_pipeline(path)
    assert gains(pipeline, state, build_lineage(pipeline, state)) == []  # different rows: no "gain"


def test_the_report_shows_the_loss_curve_the_gain_and_the_lineage_in_every_format(tmp_path: Path) -> None:
    path, state = _run(tmp_path)
    report = build_report(load_pipeline(path), state)
    (training,) = report["training"]
    assert training["curves"] == {
        "loss": [[10.0, 2.5], [20.0, 1.0], [30.0, 0.4]],
        "eval_loss": [[20.0, 1.2], [30.0, 0.9]],
    }
    assert json.loads(json.dumps(report))["lineage"] == report["lineage"]  # report.json keeps it as is

    markdown = as_markdown(report)
    assert (
        "- `tuned`: logged at steps 10 to 30; training loss 2.5 → 0.4 (lowest 0.4 at step 30); "
        "validation loss 1.2 → 0.9 (lowest 0.9 at step 30)"
    ) in markdown
    assert "| `tuned` | `base` | scores | accuracy | 0.02 | 0.92 | +0.9 |" in markdown
    assert "  - tuned: version amv-tuned from base, fine-tune base on train (full, epochs=2)" in markdown
    assert "    - read dataset train (sha256 " in markdown
    assert "      - served by serve (URL suffix s8)" in markdown

    html = as_html(report)
    chart = html[html.index('aria-label="loss of tuned"') : html.index("</svg>", html.index("loss of tuned"))]
    assert ">step</text>" in chart
    assert ">loss</text>" in chart
    assert "<title>training loss, step 30: 0.4</title>" in chart
    assert 'stroke-dasharray="6 4"' in chart
    assert "validation loss (dashed)" in chart
    tuned_colour = html.split('<span class="swatch" style="background:')[2][:7]  # the models table's 2nd row
    assert f'stroke="{tuned_colour}"' in chart  # the tuned model's colour, as in every other chart
    assert '<td class="num up">+0.9</td>' in html
    assert "<h2>Lineage</h2>" in html
    assert "compression task " in html


def test_qfrun_status_shows_the_lineage_as_text_and_in_json(tmp_path: Path, capsys: Any) -> None:
    path, _ = _run(tmp_path)
    code, out, _ = invoke(capsys, "status", str(path))
    assert code == 0
    lines = out[out.index("Lineage:") :].splitlines()
    assert lines[1] == "  base: version amv-base, use model version amv-base"
    assert lines[3].startswith("    └─ tuned: version amv-tuned from base, fine-tune base on train")
    assert lines[4].startswith("         read dataset train (sha256 ")
    assert lines[6].startswith("      └─ w8: version ")
    assert lines[7] == "           served by serve (URL suffix s8)"
    code, out, _ = invoke(capsys, "status", str(path), "--format", "json")
    assert [node["stage"] for node in json.loads(out)["lineage"]] == ["base", "tuned", "w8"]


def test_a_pipeline_that_made_no_version_has_no_lineage_section(tmp_path: Path, capsys: Any) -> None:
    path = write(tmp_path, "version: 1\nname: none\nstages:\n  base: {type: model, version_id: amv-1}\n")
    code, out, _ = invoke(capsys, "status", str(path))  # never run
    assert code == 0
    assert "Lineage:" not in out
    report = build_report(load_pipeline(path), StateFile.load(tmp_path / "s.json", "none"))
    assert (report["lineage"], report["gains"], report["training"]) == ([], [], [])
    assert "<h2>Lineage</h2>" not in as_html(report)
    assert "**Lineage**" not in as_markdown(report)


INFERRED = """\
version: 1
name: inferred
datasets:
  qa: {path: qa.jsonl}
stages:
  base: {type: model, version_id: amv-base}
  w4: {type: compress, model: base, strategy: quantization, weight: W4A16C16}
  base_infer: {type: infer, model: base, dataset: qa}
  w4_infer: {type: infer, model: w4, dataset: qa}
  both:
    type: evaluate
    infer: [base_infer, w4_infer]
    evaluators: [{kind: rule, accuracy: true}]
  base_eval:
    type: evaluate
    infer: [base_infer]
    evaluators: [{kind: rule, accuracy: true}]
  w4_eval:
    type: evaluate
    infer: [w4_infer]
    evaluators: [{kind: rule, accuracy: true}]
"""


def test_results_of_infer_stages_are_compared_within_one_evaluation_only(tmp_path: Path) -> None:
    """Two evaluations of infer stages' results name no dataset of their own: whether they scored the same
    rows cannot be told from them, so only the evaluation that scored both side by side gives a gain."""
    path = write(tmp_path, INFERRED)
    fake = FakePlatform(scripts={"w4": Script(result={"version_id": "amv-w4", "model_id": "am-1"})})
    fake.scripts["both"] = _scores(("amv-base", 0.9), ("amv-w4", 0.85))
    run(path, fake)
    pipeline = load_pipeline(path)
    state = StateFile.load(tmp_path / ".qfrun" / "inferred.state.json", "inferred")
    nodes = build_lineage(pipeline, state)
    assert [(s["stage"], s["series"]) for s in nodes[1]["evaluations"]] == [
        ("both", "w4_infer"),
        ("w4_eval", "w4_infer"),
    ]
    (gain,) = gains(pipeline, state, nodes)
    assert (gain["evaluation"], gain["before"], gain["after"]) == ("both", 0.9, 0.85)
    assert r"evaluated by both (as w4\_infer): accuracy 0.85" in as_markdown(build_report(pipeline, state))


def test_a_record_whose_fields_no_longer_fit_its_type_still_shows_its_version(tmp_path: Path) -> None:
    path = write(tmp_path, INFERRED)
    run(path, FakePlatform(scripts={"w4": Script(result={"version_id": "amv-w4", "model_id": "am-1"})}))
    state = StateFile.load(tmp_path / ".qfrun" / "inferred.state.json", "inferred")
    record = state.stages["w4"]
    assert record.last_success is not None
    del record.last_success["inputs"]["fields"]["strategy"]  # as an older qfrun may have recorded it
    (_, w4) = build_lineage(load_pipeline(path), state)[:2]
    assert (w4["version_id"], w4["source"], w4["made_by"]) == ("amv-w4", "base", "")


def test_text_from_the_pipeline_in_the_lineage_stays_text_in_html_and_markdown(tmp_path: Path) -> None:
    path, state = _run(tmp_path)
    report = build_report(load_pipeline(path), state)
    report["lineage"][1]["made_by"] = "fine-tune <script>alert(1)</script> on *train*"
    report["gains"][0]["metric"] = "<b>|acc|</b>"  # a custom scorer names its metrics
    html = as_html(report)
    assert "<script>" not in html
    assert "fine-tune &lt;script&gt;alert(1)&lt;/script&gt; on *train*" in html
    assert "<td>&lt;b&gt;|acc|&lt;/b&gt;</td>" in html
    markdown = as_markdown(report)
    assert r"fine-tune \<script\>alert(1)\</script\> on \*train\*" in markdown
    assert r"| \<b\>\|acc\|\</b\> |" in markdown  # literal text, and the table keeps its columns
