"""``qfrun validate``: every problem at once, sorted, as FILE:LINE:COL: message, exit 3, never a traceback."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from runner.cli import main
from runner.errors import PipelineError
from runner.pipeline.spec import load_pipeline

BAD = """\
version: 1
name: bad
env: [REGION]
vars:
  limit: 3
datasets:
  qa: {path: missing.jsonl}
  present: {path: present.jsonl}
stages:
  base:
    type: model
    import: ./no_such_folder
  inf:
    type: infer
    model: bsae
    dataset: qaa
  inf2:
    type: infer
    model: inf
    dataset: present
  ev:
    type: evaluate
    infer: [inf2]
    evaluators: [{kind: rule}]
    needs: [nope]
  a:
    type: compress
    model: b
    strategy: quantization
    weight: W4A16C16
  b:
    type: compress
    model: a
    strategy: quantization
    weight: W4A16C16
  x1:
    type: model
    version_id: ${{ vars.limit + }}
  x2:
    type: model
    version_id: ${{ stages.ghost.outputs.v }}
  x3:
    type: model
    version_id: ${{ vars.limt }}
  x4:
    type: model
    version_id: ${{ env.SECRET }}
  ../x:
    type: model
    version_id: amv-1
"""
LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.+)$")


def validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(["validate", *args])
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    (tmp_path / "present.jsonl").write_text('{"prompt": "p", "response": "r"}\n')
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    return path


def problems(out: str) -> list[tuple[str, int, int, str]]:
    found = []
    for line in out.splitlines():
        match = LINE.match(line)
        assert match, f"not FILE:LINE:COL: message: {line!r}"
        found.append((match["path"], int(match["line"]), int(match["col"]), match["message"]))
    return found


def message_at(found: list[tuple[str, int, int, str]], line: int) -> str:
    return " | ".join(message for _, at, _, message in found if at == line)


def test_every_kind_of_problem_is_reported_at_once_with_its_position(
    bad: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = validate(capsys, str(bad))
    assert code == 3
    found = problems(out)
    assert "did you mean 'base'?" in message_at(found, 15)  # model: bsae
    assert "there is no dataset 'qaa'; did you mean 'qa'?" in message_at(found, 16)
    assert (
        "'inf' is an infer stage, but this field takes a compress or finetune or model stage"
        in message_at(found, 19)
    )
    assert "rule evaluator needs at least one metric" in message_at(found, 24)
    assert "there is no stage 'nope'" in message_at(found, 25)
    assert "a -> b -> a form a cycle" in message_at(found, 26)
    assert "'vars.limit +' is not valid" in message_at(found, 38)
    assert "there is no stage 'ghost'" in message_at(found, 41)
    assert "there is no variable 'limt'; did you mean 'limit'?" in message_at(found, 44)
    assert "environment variable SECRET, which is not listed under env:" in message_at(found, 47)
    assert "'../x' is not a valid stage id" in message_at(found, 48)
    assert "missing.jsonl does not exist" in message_at(found, 7)
    assert "no_such_folder does not exist" in message_at(found, 12)
    assert f"Found {len(found)} problems." in err
    assert "Traceback" not in out + err


def test_problems_are_sorted_by_file_line_and_column(bad: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = validate(capsys, str(bad))
    found = problems(out)
    assert len(found) >= 13
    assert found == sorted(found)


def test_unsupported_version_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "v2.yaml"
    path.write_text("version: 2\nname: v2\nstages:\n  m: {type: model, version_id: amv-1}\n")
    code, out, _ = validate(capsys, str(path))
    assert code == 3
    assert f"{path}:1:10: version: this qfrun reads pipeline format 1; the file says 2." in out.splitlines()


def test_yaml_syntax_error_is_reported_with_position_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "syntax.yaml"
    path.write_text("version: 1\nname: y\nstages:\n  a: [\n")
    code, out, err = validate(capsys, str(path))
    assert code == 3
    [(where, line, _, message)] = problems(out)
    assert (where, line) == (str(path), 5)
    assert "invalid YAML" in message
    assert "Traceback" not in out + err


def test_several_files_are_validated_together_and_all_problems_listed(
    bad: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(
        "version: 1\nname: other\nstages:\n"
        "  m: {type: model, version_id: amv-1}\n  i: {type: infer, model: mm}\n"
    )
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\nname: good\nstages:\n  m: {type: model, version_id: amv-1}\n")
    code, out, err = validate(capsys, str(bad), str(other), str(good))
    assert code == 3
    paths = {where for where, *_ in problems(out)}
    assert paths == {str(bad), str(other)}
    assert f"{good}: valid (1 stage)." in err


def test_valid_file_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\nname: good\nstages:\n  m: {type: model, version_id: amv-1}\n")
    code, out, err = validate(capsys, str(good))
    assert code == 0
    assert out == ""
    assert "valid" in err


def test_json_format_lists_every_problem_with_its_position(
    bad: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = validate(capsys, "--format", "json", str(bad))
    assert code == 3
    report = json.loads(out)
    assert report["valid"] is False
    assert len(report["problems"]) >= 13
    first = report["problems"][0]
    assert set(first) == {"path", "line", "column", "message"}
    assert all(p["path"] == str(bad) and p["line"] > 0 for p in report["problems"])


def test_json_format_of_a_valid_file_says_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\nname: good\nstages:\n  m: {type: model, version_id: amv-1}\n")
    code, out, _ = validate(capsys, "--format", "json", str(good))
    assert code == 0
    assert json.loads(out) == {"valid": True, "problems": []}


def test_missing_pipeline_file_is_reported_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = validate(capsys, str(tmp_path / "absent.yaml"))
    assert code == 3
    assert "absent.yaml" in out + err
    assert "Traceback" not in out + err


def test_load_pipeline_raises_one_error_carrying_every_issue(bad: Path) -> None:
    with pytest.raises(PipelineError) as caught:
        load_pipeline(bad)
    assert len(caught.value.issues) >= 13
    assert list(caught.value.issues) == sorted(caught.value.issues)


def test_edges_come_from_references_expressions_and_needs(tmp_path: Path) -> None:
    (tmp_path / "qa.jsonl").write_text('{"prompt": "p", "response": "r"}\n')
    path = tmp_path / "p.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            name: edges
            datasets: {qa: {path: qa.jsonl}}
            stages:
              base: {type: model, version_id: amv-1}
              other: {type: model, version_id: "${{ stages.base.outputs.version_id }}"}
              inf: {type: infer, model: base, dataset: qa, needs: [other]}
            """
        )
    )
    pipeline = load_pipeline(path)
    assert set(pipeline.graph.edges) == {("base", "other"), ("base", "inf"), ("other", "inf")}
    assert pipeline.stages["inf"].upstream == ("base", "other")


def test_check_files_false_skips_missing_local_files(bad: Path, tmp_path: Path) -> None:
    path = tmp_path / "files.yaml"
    path.write_text(
        "version: 1\nname: f\ndatasets: {qa: {path: none.jsonl}}\n"
        "stages:\n  m: {type: model, import: ./absent}\n  i: {type: infer, model: m, dataset: qa}\n"
    )
    with pytest.raises(PipelineError):
        load_pipeline(path)
    assert set(load_pipeline(path, check_files=False).stages) == {"m", "i"}


def test_an_unclosed_expression_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "unclosed.yaml"
    path.write_text(
        "version: 1\nname: u\nvars: {limit: 3}\nstages:\n"
        '  m: {type: model, version_id: "amv-${{ vars.limit"}\n'
        '  n: {type: model, version_id: "amv-${{ vars.limit }}-${{ vars.limit"}\n'
    )
    code, out, _ = validate(capsys, str(path))
    assert code == 3
    assert [(line, message) for _, line, _, message in problems(out)] == [
        (5, "stages.m.version_id: a `${{` is not closed by `}}`."),
        (6, "stages.n.version_id: a `${{` is not closed by `}}`."),
    ]


def test_a_qianfan_pipeline_is_told_what_only_the_local_platform_can_do(tmp_path: Path) -> None:
    (tmp_path / "models" / "m").mkdir(parents=True)
    (tmp_path / "x.jsonl").write_text("{}\n")
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: qf\nplatform: qianfan\ndatasets:\n  local: {path: x.jsonl}\n"
        "  console: {qianfan_dataset_id: ds-1}\nstages:\n"
        "  m: {type: model, import: models/m}\n"
        "  v: {type: model, version_id: amv-1}\n"
        "  i: {type: infer, model: v, dataset: local}\n"
        "  j: {type: infer, model: v, dataset: console, output_bos_uri: 'bos:/b/out/'}\n"
        "  e: {type: evaluate, models: [v], dataset: local, evaluators: [{kind: rule, accuracy: true}]}\n"
    )
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path)
    # A local file for batch inference or evaluation is fine (it is uploaded to BOS and imported into the
    # console's datasets), and so is a model folder (it goes through BOS).
    assert [str(issue) for issue in caught.value.issues] == [
        f"{path}:11:3: stages.j: batch inference on Qianfan reads its input from BOS; the dataset "
        "'console' is a console dataset, so add input_bos_uri (the BOS folder of its {id, query} lines), or "
        "use a local file, which qfrun uploads.",
    ]


def test_a_qianfan_evaluation_is_told_which_evaluators_only_the_local_platform_runs(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: qf\nplatform: qianfan\ndatasets:\n  d: {qianfan_dataset_id: ds-1}\nstages:\n"
        "  m: {type: model, version_id: amv-1}\n"
        "  e:\n    type: evaluate\n    models: [m]\n    dataset: d\n    evaluators:\n"
        "      - {kind: rule, accuracy: true, bleu: true}\n"
        "      - {kind: custom, function: 'evals:score'}\n"
        "      - {kind: llm_judge, judge: m}\n"
    )
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{path}:13:44: stages.e.evaluators.0.bleu: Qianfan's rule evaluation scores only accuracy and "
        "similarity; bleu works on the local platform only.",
        f"{path}:14:9: stages.e.evaluators.1: a custom scorer runs on the local platform only; Qianfan's "
        "evaluation takes rule metrics and an LLM judge.",
        f"{path}:15:34: stages.e.evaluators.2.judge: on Qianfan the judge is a deployed service "
        "(autoModelEvalConfig.apiName), so name a deploy stage, not the model stage 'm'.",
    ]


def test_a_prompt_template_without_input_is_refused_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: qf\nplatform: qianfan\ndatasets:\n  d: {qianfan_dataset_id: ds-1}\nstages:\n"
        "  m: {type: model, version_id: amv-1}\n"
        "  e: {type: evaluate, models: [m], dataset: d, prompt_template: 'Answer: {question}',\n"
        "      evaluators: [{kind: rule, accuracy: true}]}\n"
    )
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{path}:8:65: stages.e.prompt_template: 'Answer: {{question}}' is not valid: a prompt template must "
        "contain {input}, where each prompt goes (Qianfan's rule)."
    ]


def test_a_preset_endpoint_feeds_batch_inference_only_and_exists_on_qianfan_only(tmp_path: Path) -> None:
    body = (
        "datasets:\n  d: {qianfan_dataset_id: ds-1}\nstages:\n"
        "  ernie: {type: model, endpoint: ernie-x1-turbo-32k}\n"
        "  i: {type: infer, model: ernie, dataset: d, input_bos_uri: 'bos:/b/i/', output_bos_uri: 'bos:/o'}\n"
        "  w4: {type: compress, model: ernie, strategy: quantization, weight: W4A16C16}\n"
    )
    cloud, local = tmp_path / "cloud.yaml", tmp_path / "local.yaml"
    cloud.write_text("version: 1\nname: qf\nplatform: qianfan\n" + body)
    local.write_text("version: 1\nname: qf\nplatform: local\n" + body)
    with pytest.raises(PipelineError) as caught:
        load_pipeline(cloud)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{cloud}:9:31: stages.w4.model: 'ernie' names a preset endpoint, which only batch inference takes; "
        "evaluate, compress and deploy need a model version (version_id).",
    ]
    with pytest.raises(PipelineError) as caught:
        load_pipeline(local)
    assert f"{local}:7:34: stages.ernie.endpoint: preset model endpoints exist on Qianfan only" in str(
        caught.value.issues[0]
    )


def test_a_local_platform_url_off_this_machine_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: qf\nplatform: {kind: local, url: 'https://collector.example:8443'}\nstages:\n"
        "  m: {type: model, version_id: amv-1}\n"
    )
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{path}:3:30: platform.url: the local platform runs on this machine, and qfrun sends it the local "
        "token and keys; 'https://collector.example:8443' is not a loopback address (127.0.0.1, localhost or "
        "[::1]).",
    ]
    path.write_text(path.read_text().replace("https://collector.example:8443", "http://127.0.0.1:8765"))
    assert load_pipeline(path).platform["url"] == "http://127.0.0.1:8765"


def test_every_address_of_a_local_platform_a_pipeline_names_must_be_on_this_machine(tmp_path: Path) -> None:
    # qfrun sends the local token and keys to the console, the chat and the BOS of the local platform
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nname: qf\nplatform:\n  kind: local\n  inference_url: 'https://chat.example'\n"
        "  bos: {endpoint: 'https://bos.example', bucket: loot}\nstages:\n"
        "  m: {type: model, version_id: amv-1}\n"
    )
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path)
    assert [issue.message.split(":")[0] for issue in caught.value.issues] == [
        "platform.inference_url",
        "platform.bos.endpoint",
    ]
    assert [str(issue.location).rsplit(":", 2)[1] for issue in caught.value.issues] == ["5", "6"]
    path.write_text(path.read_text().replace("chat.example", "[::1]:9").replace("bos.example", "localhost:9"))
    assert load_pipeline(path).platform["bos"]["endpoint"] == "https://localhost:9"
