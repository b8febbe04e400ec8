"""The whole path as a user takes it: the qfrun CLI in a subprocess, the real local platform on 127.0.0.1.

A small pipeline (import, batch inference, evaluation of the stored results, a deployed service with a
smoke test) runs to the end; a second run does nothing; editing one stage re-runs exactly that stage and what
its new outputs change; the platform is stopped at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parent.parent

PIPELINE = """\
version: 1
name: e2e
platform: local
datasets:
  smoke: {{path: {data}}}
stages:
  adder:
    type: model
    import: {model}
  answers:
    type: infer
    model: adder
    dataset: smoke
    params: {{temperature: 0, max_output_tokens: {tokens}}}
  scores:
    type: evaluate
    infer: [answers]
    evaluators:
      - {{kind: rule, accuracy: true, similarity: true}}
      - {{kind: custom, function: "evals.length:score"}}
  serve:
    type: deploy
    model: adder
    if: ${{{{ stages.scores.outputs.metrics.accuracy >= 0.8 }}}}
    service:
      name: e2e
      url_suffix: e2e
      replicas: 1
      billing: {{payment: postpaid, charge: computing_unit}}
      resource_type: CPU-1-1
    smoke_test:
      - messages: [{{role: user, content: "23+45=?"}}]
        expect: {{contains: "68"}}
"""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "home"
    yield folder
    subprocess.run(
        [sys.executable, "-m", "runner", "platform", "stop"],
        env=_env(folder),
        check=False,
        capture_output=True,
    )


def _env(home: Path) -> dict[str, str]:
    # The pipeline lies outside this repository and reads its data and model: the user allows both folders.
    allowed = os.pathsep.join(str(ROOT / folder) for folder in ("data", "models"))
    return {**os.environ, "QFRUN_HOME": str(home), "CI": "1", "QFRUN_ALLOW_PATHS": allowed}


def qfrun(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def write(folder: Path, tokens: int) -> Path:
    path = folder / "e2e.yaml"
    data, model = ROOT / "data" / "addition" / "smoke.jsonl", ROOT / "models" / "tiny-adder"
    path.write_text(PIPELINE.format(data=data, model=model, tokens=tokens))
    (folder / "evals").mkdir(exist_ok=True)
    (folder / "evals" / "length.py").write_text(
        "def score(rows):\n    return {'mean_len': sum(len(str(r['output'])) for r in rows) / len(rows)}\n"
    )
    return path


@pytest.mark.slow
def test_a_pipeline_runs_end_to_end_then_resumes_to_nothing_then_reruns_only_what_changed(
    tmp_path: Path, home: Path
) -> None:
    path = write(tmp_path, tokens=5)
    first = qfrun(home, str(path))
    assert first.returncode == 0, first.stderr
    assert "local platform at http://127.0.0.1:" in first.stderr
    assert "4 succeeded." in first.stderr
    assert "smoke test 1 of 1 passed" in first.stderr
    assert "curl -s http://127.0.0.1:" in first.stderr
    # qfrun used the token the platform made at its first start; what it prints names it, never shows it
    assert 'Authorization: Bearer $QFRUN_LOCAL_TOKEN"' in first.stderr
    token = json.loads((home / "credentials.json").read_text())["token"]
    assert token not in first.stderr + first.stdout

    status = json.loads(qfrun(home, "status", str(path), "--format", "json").stdout)
    stages = {stage["id"]: stage for stage in status["stages"]}
    assert {stage["status"] for stage in stages.values()} == {"succeeded"}
    assert stages["scores"]["outputs"]["samples"] == 10
    # the answers were written to BOS and read back [B5]: a copy beside the pipeline, one line per row
    answers = stages["answers"]["outputs"]
    assert len(answers["output_dir"]) == 24
    copied = (tmp_path / answers["results_file"]).read_text(encoding="utf-8").splitlines()
    assert len(copied) == answers["rows"] == 10
    assert json.loads(copied[0])["output"]["object"] == "chat.completion"
    assert stages["scores"]["outputs"]["metrics"]["accuracy"] >= 0.8
    assert stages["scores"]["outputs"]["metrics"]["mean_len"] > 0  # the repository's own scorer ran
    assert (tmp_path / ".qfrun" / "reports" / "e2e" / "report.html").is_file()

    again = qfrun(home, str(path))
    assert again.returncode == 0, again.stderr
    assert "4 up to date." in again.stderr

    write(tmp_path, tokens=6)  # one field of one stage
    plan = json.loads(qfrun(home, "plan", str(path), "--format", "json").stdout)
    actions = {stage["id"]: stage["action"] for stage in plan["stages"]}
    assert actions == {"adder": "up to date", "answers": "re-run", "scores": "re-run", "serve": "up to date"}
    changed = qfrun(home, str(path))
    assert changed.returncode == 0, changed.stderr
    assert "2 succeeded, 2 up to date." in changed.stderr

    # The compute instance of the service outlived the qfrun processes in the state file [S5] ...
    state = json.loads((tmp_path / ".qfrun" / "e2e.state.json").read_text(encoding="utf-8"))
    task = state["stages"]["serve"]["task"]
    assert task["instance_id"].startswith("unit-")
    # ... and destroy releases it with that (ReleaseComputeUnit): the chat stops answering, a second destroy
    # has nothing to do, and the plan deploys it again
    url = stages["serve"]["outputs"]["url"]
    chat = {"messages": [{"role": "user", "content": "1+1=?"}]}
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.post(url, json=chat, timeout=30).status_code == 401  # the service needs the token too
    assert httpx.post(url, json=chat, headers=bearer, timeout=30).status_code == 200
    destroyed = qfrun(home, "destroy", str(path), "--yes")
    assert destroyed.returncode == 0, destroyed.stderr
    assert f"serve: released {task['task_id']}" in destroyed.stderr
    assert httpx.post(url, json=chat, headers=bearer, timeout=30).status_code == 404
    assert "Nothing to destroy" in qfrun(home, "destroy", str(path), "--yes").stderr
    plan = json.loads(qfrun(home, "plan", str(path), "--format", "json").stdout)
    assert {stage["id"]: stage["action"] for stage in plan["stages"]}["serve"] == "run"
