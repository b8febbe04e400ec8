"""The worker entry point, run the way workers run it: a subprocess with a spec file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.local.kinds import LOCAL_KINDS

ROOT = Path(__file__).resolve().parents[3]
ADDER = ROOT / "models" / "tiny-adder"
GRADER = ROOT / "models" / "tiny-grader"
DATA = ROOT / "data" / "addition"


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


pytestmark = pytest.mark.slow


def run_job(tmp_path, kind, params, env_extra=None):
    local = LOCAL_KINDS.get(kind)
    spec = {
        "kind": kind,
        "entry": local.engine if local is not None else f"runner.local.kinds.{kind}:run_job",
        "params": params,
        "workdir": str(tmp_path / "work"),
        "progress_file": str(tmp_path / "work" / "progress.json"),
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, **(env_extra or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "runner.local.engine.job", str(spec_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    result_path = tmp_path / "work" / "result.json"
    result = json.loads(result_path.read_text(encoding="utf-8")) if result_path.exists() else None
    return proc, result


def test_batch_inference_job_writes_rows_progress_and_result(tmp_path):
    out = tmp_path / "rows.jsonl"
    params = {
        "model_dir": str(ADDER),
        "dataset_path": str(DATA / "smoke.jsonl"),
        "output_path": str(out),
        "inference_params": {"temperature": 0, "max_output_tokens": 5},
        "batch_size": 4,
    }
    proc, result = run_job(tmp_path, "batch_inference", params)
    assert proc.returncode == 0, proc.stderr
    assert result == {"rows": 10, "output_path": str(out)}
    assert len(read_jsonl(out)) == 10
    assert json.loads((tmp_path / "work" / "progress.json").read_text()) == {"done": 10, "total": 10}


LENGTH_SCORER = (
    "def length(rows):\n    return {'mean_len': sum(len(r['output']) for r in rows) / len(rows)}\n"
)


def test_evaluation_job_scores_rules_judge_and_custom_per_model(tmp_path):
    precomputed = tmp_path / "pre.jsonl"
    precomputed.write_text(
        "".join(json.dumps({**r, "output": r["response"]}) + "\n" for r in read_jsonl(DATA / "smoke.jsonl")),
        encoding="utf-8",
    )
    params = {
        "models": [
            {"version_id": "amv-base", "model_dir": str(ADDER)},
            {"version_id": "amv-perfect", "results_path": str(precomputed)},
        ],
        "dataset_path": str(DATA / "smoke.jsonl"),
        "evaluators": [
            {"kind": "rule", "accuracy": True, "similarity": True},
            {"kind": "llm_judge", "judge_model_dir": str(GRADER), "max_score": 10},
            {"kind": "custom", "function": "my_eval:length", "source": LENGTH_SCORER},
        ],
        "inference_params": {"max_output_tokens": 5},
        "output_dir": str(tmp_path / "eval"),
    }
    proc, result = run_job(tmp_path, "evaluation", params)
    assert proc.returncode == 0, proc.stderr
    perfect = result["models"]["amv-perfect"]
    assert perfect["samples"] == 10
    assert perfect["metrics"]["accuracy"] == 1.0
    assert perfect["metrics"]["similarity"] == 1.0
    assert perfect["metrics"]["judge_score"] >= 0.7
    assert perfect["metrics"]["mean_len"] > 0
    base = result["models"]["amv-base"]
    assert base["samples"] == 10
    assert set(base["metrics"]) == {
        "accuracy",
        "similarity",
        "judge_score",
        "judge_score_raw",
        "judge_unparsed",
        "mean_len",
    }
    assert len(read_jsonl(tmp_path / "eval" / "amv-base.jsonl")) == 10
    # per-sample records from the real grader: each row's metrics (their mean is the model's) and its reply
    records = read_jsonl(Path(perfect["records_path"]))
    assert [r["index"] for r in records] == list(range(1, 11))
    assert {name for r in records for name in r["metrics"]} == set(base["metrics"]) - {"judge_unparsed"}
    judged = sum(r["metrics"]["judge_score"] for r in records) / 10
    assert judged == pytest.approx(perfect["metrics"]["judge_score"], abs=1e-5)
    assert all(r["reason"] for r in records)  # what the judge answered, for a reviewer to read
    assert len(read_jsonl(Path(base["records_path"]))) == 10


def test_failed_job_writes_one_sentence_and_exits_1(tmp_path):
    params = {
        "model_dir": str(tmp_path / "missing"),
        "dataset_path": str(DATA / "smoke.jsonl"),
        "output_path": str(tmp_path / "o.jsonl"),
    }
    proc, result = run_job(tmp_path, "batch_inference", params)
    assert proc.returncode == 1
    assert result == {
        "error": f"The model folder {tmp_path / 'missing'} has no config.json, so it is not a model folder."
    }


def test_an_engine_entry_that_does_not_exist_is_refused_in_one_sentence(tmp_path):
    proc, result = run_job(tmp_path, "training", {})
    assert proc.returncode == 1
    assert result["error"] == "No module named 'runner.local.kinds.training'."


def test_compression_job_writes_a_reloadable_checkpoint_and_its_record(tmp_path):
    out = tmp_path / "w8"
    params = {
        "model_dir": str(ADDER),
        "output_dir": str(out),
        "strategy": "quantization",
        "weight": "W8A16C16",
        "calib_path": str(DATA / "calib.jsonl"),
    }
    proc, result = run_job(tmp_path, "compression", params)
    assert proc.returncode == 0, proc.stderr
    assert result["scheme"] == "W8A16"
    assert result["size_bytes"] < result["source_size_bytes"] / 2
    assert result["calibration_samples"] == 256
    assert "W8A16" in result["recipe"]
    assert (out / "model.safetensors").is_file()
    assert (out / "tokenizer_config.json").is_file()
    assert json.loads((tmp_path / "work" / "progress.json").read_text()) == {"done": 1, "total": 1}


def test_spec_that_is_not_json_is_reported_with_its_position(tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text('{"kind": "evaluation",', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "runner.local.engine.job", str(spec_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert f"The job spec {spec_path} is not valid JSON (line 1" in proc.stderr


def test_a_custom_evaluator_runs_the_source_sent_with_the_task_never_a_module_found_by_name() -> None:
    from runner.local.engine.evaluators import load_custom

    # "json:dumps" names a module on the worker's path: the source sent is what runs, and json is untouched
    scorer = load_custom("json:dumps", "def dumps(rows):\n    return {'sent': float(len(rows))}\n")
    assert scorer([{}, {}]) == {"sent": 2.0}
    assert json.dumps({}) == "{}"
    with pytest.raises(ValueError, match="The module 'evals' has no function 'score'"):
        load_custom("evals:score", "x = 1\n")
    with pytest.raises(ValueError, match="failed to load: ZeroDivisionError"):
        load_custom("evals:score", "1 / 0\n")
