"""The job entry point's own decisions, called in-process (no model is loaded): every way a spec or an
evaluator can be wrong ends in one sentence in ``result.json`` and exit 1, and evaluators score result rows
as they are given."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.local.engine import evaluators, job
from runner.local.kinds import evaluation

ROOT = Path(__file__).resolve().parents[3]

ROWS = [
    {"prompt": "1+1=?", "response": "2", "output": "2"},
    {"prompt": "2+2=?", "response": "4", "output": "5"},
]
CHECKS = """
def share_of_long_answers(rows):
    return {"long": sum(len(row["output"]) > 1 for row in rows) / len(rows)}

def not_numbers(rows):
    return {"long": "many"}

def fails(rows):
    raise RuntimeError("the grader broke")
"""


def _spec(tmp_path: Path, spec: Any) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec), encoding="utf-8")
    return path


def test_rule_and_custom_evaluators_score_the_rows_and_merge_their_metrics() -> None:
    metrics = evaluators.apply_evaluators(
        ROWS,
        [
            {"kind": "rule", "accuracy": True, "exact_match": True},
            {"kind": "custom", "function": "checks:share_of_long_answers", "source": CHECKS},
        ],
    )
    assert metrics == {"accuracy": 0.5, "exact_match": 0.5, "long": 0.0}


@pytest.mark.parametrize(
    ("evaluator", "words"),
    [
        (
            {"kind": "rule", "accuracy": True, "recall": True},
            "The rule evaluator has unknown field(s) recall",
        ),
        ({"kind": "rule", "accuracy": False}, "The rule evaluator turns on no metric"),
        ({"kind": "vibes"}, "evaluators[0] has kind 'vibes'; use rule, llm_judge or custom."),
        ({"kind": "custom", "function": "checks", "source": CHECKS}, "must be written as module:function"),
        ({"kind": "custom", "function": "checks:absent", "source": CHECKS}, "has no function 'absent'"),
        (
            {"kind": "custom", "function": "checks:not_numbers", "source": CHECKS},
            "must return a dict of numbers",
        ),
        ({"kind": "custom", "function": "checks:f", "source": "def f(:"}, "failed to load: SyntaxError"),
        ({"kind": "custom", "function": "checks:f"}, "params lack 'source'."),
        ({"kind": "llm_judge"}, "params lack 'judge_model_dir'."),
    ],
)
def test_an_evaluator_that_cannot_score_is_one_sentence(evaluator: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        evaluators.apply_evaluators(ROWS, [evaluator])


@pytest.mark.slow  # an evaluation job imports the model runtime
def test_a_custom_evaluator_that_raises_fails_the_job_with_its_error(tmp_path: Path) -> None:
    results = tmp_path / "answers.jsonl"
    results.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    spec = {
        "kind": "evaluation",
        "entry": evaluation.KIND.engine,
        "workdir": str(tmp_path / "work"),
        "params": {
            "models": [{"version_id": "amv-1", "results_path": str(results)}],
            "evaluators": [{"kind": "custom", "function": "checks:fails", "source": CHECKS}],
            "output_dir": str(tmp_path / "out"),
        },
    }
    result_file, result, code = job.run_spec(_spec(tmp_path, spec))
    assert (result_file, code) == (tmp_path / "work" / "result.json", 1)
    assert result == {"error": "the grader broke."}


@pytest.mark.slow  # an evaluation job imports the model runtime
def test_an_evaluation_of_given_answers_scores_each_model_and_reports_its_progress(tmp_path: Path) -> None:
    results = tmp_path / "answers.jsonl"
    results.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    progress = tmp_path / "progress.json"
    params = {
        "models": [{"version_id": "amv-1", "results_path": str(results)}],
        "evaluators": [{"kind": "rule", "accuracy": True}],
        "output_dir": str(tmp_path / "out"),
    }
    outcome = evaluation.run_job(params, progress)
    records = tmp_path / "out" / "records-amv-1.jsonl"
    assert outcome == {
        "models": {
            "amv-1": {
                "metrics": {"accuracy": 0.5},
                "samples": 2,
                "results_path": str(results),
                "records_path": str(records),  # the per-sample records its result export is written from
            }
        }
    }
    kept = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines()]
    assert [(r["index"], r["metrics"], r["passed"]) for r in kept] == [
        (1, {"accuracy": 1.0}, True),
        (2, {"accuracy": 0.0}, False),
    ]
    assert json.loads(progress.read_text()) == {"done": 0, "total": 0}  # nothing inferred here


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("{broken", "is not valid JSON (line 1, column 2"),
        ("[1, 2]", "is not a JSON object."),
        ({"kind": "batch_inference"}, "names no 'workdir', where the job writes."),
        (
            {"kind": "training", "workdir": "w"},
            "The job spec of kind 'training' names no engine entry ('module:function'), but None.",
        ),
        (
            {"kind": "x", "workdir": "w", "entry": "json:nothing"},
            "The engine entry 'json:nothing' is not a function.",
        ),
        pytest.param(
            {
                "kind": "evaluation",
                "entry": evaluation.KIND.engine,
                "workdir": "w",
                "params": {"models": [{"version_id": "amv-1"}], "evaluators": [], "output_dir": "o"},
            },
            "The evaluation of amv-1 needs 'dataset_path' or precomputed 'results_path'.",
            marks=pytest.mark.slow,  # an evaluation job imports the model runtime
        ),
    ],
)
def test_a_spec_the_job_cannot_run_is_one_sentence_and_exit_1(tmp_path: Path, spec: Any, words: str) -> None:
    _, result, code = job.run_spec(_spec(tmp_path, spec))
    assert code == 1
    assert words in result["error"]
    assert result["error"].endswith(".")


def test_main_writes_the_result_file_and_the_sentence_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, {"kind": "training", "workdir": str(tmp_path / "work")})
    assert job.main([str(spec)]) == 1
    written = json.loads((tmp_path / "work" / "result.json").read_text())
    assert written["error"].startswith("The job spec of kind 'training' names no engine entry")
    assert capsys.readouterr().err.endswith(written["error"] + "\n")
    assert job.main([]) == 2
    assert "usage: python -m runner.local.engine.job SPEC.json" in capsys.readouterr().err


def test_a_system_error_names_the_file_it_could_not_use() -> None:
    error = FileNotFoundError(2, "No such file or directory", "/data/rows.jsonl")
    assert (
        job.describe(error) == "The job could not use the file /data/rows.jsonl: No such file or directory."
    )
    assert job.describe(KeyError()) == "KeyError."
    assert job.describe(ValueError("Row 3 is empty.")) == "Row 3 is empty."


def test_a_job_process_ends_with_its_code_and_output_but_without_the_interpreters_teardown() -> None:
    # Tearing down a process that imported the model libraries costs seconds after the result is written;
    # exit_now skips it, but what the job printed (buffered: stdout is a pipe) and its exit code must remain.
    script = (
        "import atexit, sys\n"
        "from runner.local.engine.job import exit_now\n"
        "atexit.register(lambda: sys.stderr.write('teardown ran'))\n"
        "print('result written')\n"
        "sys.stderr.write('one sentence')\n"
        "exit_now(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "result written\n", "one sentence")
