"""The one entry point the local platform's task workers run in a subprocess.

``python -m runner.local.engine.job SPEC.json`` where SPEC is
``{"kind": "batch_inference" | "evaluation" | "compression", "params": {...}, "workdir": DIR,
"progress_file": FILE}``. Progress ``{"done", "total"}`` is written atomically to ``progress_file``; the
result goes to ``<workdir>/result.json`` and the process exits 0, or ``{"error": "<sentence>"}`` goes there
and it exits 1. Running the model in a child process keeps torch out of the server and lets a worker kill a
task without harming anything else.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.atomic import write_json

KINDS = ("batch_inference", "evaluation", "compression")
RULE_METRICS = ("accuracy", "exact_match", "similarity", "bleu", "rouge_l")


def _require(params: dict[str, Any], name: str, kind: str) -> Any:
    if params.get(name) in (None, ""):
        raise ValueError(f"The {kind} job's params lack '{name}'.")
    return params[name]


def _progress_writer(
    progress_file: Path | None, offset: int = 0, total: int | None = None
) -> Callable[[int, int], None]:
    def report(done: int, count: int) -> None:
        if progress_file is not None:
            write_json(progress_file, {"done": offset + done, "total": total if total is not None else count})

    return report


def batch_inference(params: dict[str, Any], progress: Path | None) -> dict[str, Any]:
    from runner.local.engine.inference import run_batch

    output = Path(_require(params, "output_path", "batch_inference"))
    rows = run_batch(
        Path(_require(params, "model_dir", "batch_inference")),
        Path(_require(params, "dataset_path", "batch_inference")),
        output,
        params.get("inference_params") or {},
        int(params.get("batch_size") or 32),
        _progress_writer(progress),
    )
    return {"rows": rows, "output_path": str(output)}


def _rule_names(evaluator: dict[str, Any]) -> list[str]:
    extra = sorted(set(evaluator) - {"kind", *RULE_METRICS})
    if extra:
        raise ValueError(
            f"The rule evaluator has unknown field(s) {', '.join(extra)}; use {', '.join(RULE_METRICS)}."
        )
    names = [name for name in RULE_METRICS if evaluator.get(name)]
    if not names:
        raise ValueError(
            f"The rule evaluator turns on no metric; set one of {', '.join(RULE_METRICS)} to true."
        )
    return names


def load_custom(reference: str, source: str) -> Callable[[list[dict[str, Any]]], dict[str, float]]:
    """The function ``module:function`` of a custom evaluator's module ``source``.

    The source is what qfrun read from the pipeline's repository and sent with the task; nothing is
    imported by name, so a task cannot make the worker run a module that merely lies on its Python path.
    """
    module_name, _, function_name = reference.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"The custom evaluator '{reference}' must be written as module:function.")
    # A name of its own: registered as ``module_name`` it could replace a module the worker uses (``json``).
    module = types.ModuleType(f"qfrun_custom_evaluator.{module_name}")
    module.__file__ = f"<custom evaluator {module_name}>"
    sys.modules[module.__name__] = module  # what dataclasses look a class's module up by
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    except Exception as error:  # noqa: BLE001 - the user's module failed as it loaded: one sentence says so
        raise ValueError(
            f"The custom evaluator's module '{module_name}' failed to load: {type(error).__name__}: {error}."
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(
            f"The module '{module_name}' has no function '{function_name}' for the custom evaluator."
        )
    return function  # type: ignore[no-any-return]


def _url_judge(url: str) -> Callable[[str], str]:
    import httpx

    # The platform hands a judging job its token (replicas answer nobody without it), and no other job.
    headers = {"Authorization": f"Bearer {os.environ.get('QFRUN_LOCAL_TOKEN', '')}"}

    def ask(prompt: str) -> str:
        reply = httpx.post(
            url,
            json={"messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": 4},
            headers=headers,
            timeout=60,
        )
        reply.raise_for_status()
        return str(reply.json()["choices"][0]["message"]["content"])

    return ask


def apply_evaluators(rows: list[dict[str, Any]], evaluators: list[dict[str, Any]]) -> dict[str, float]:
    """Every evaluator's metrics over one model's result rows, merged into one dict."""
    from runner.local.engine.judge import judge_scores
    from runner.local.engine.metrics import score

    metrics: dict[str, float] = {}
    for index, evaluator in enumerate(evaluators):
        kind = evaluator.get("kind")
        if kind == "rule":
            metrics.update(score(rows, _rule_names(evaluator)))
        elif kind == "llm_judge":
            judge: Path | Callable[[str], str]
            if evaluator.get("judge_url"):
                judge = _url_judge(str(evaluator["judge_url"]))
            else:
                judge = Path(_require(evaluator, "judge_model_dir", "llm_judge evaluator"))
            metrics.update(
                judge_scores(judge, rows, evaluator.get("prompt"), float(evaluator.get("max_score") or 10))
            )
        elif kind == "custom":
            function = str(_require(evaluator, "function", "custom evaluator"))
            result = load_custom(function, str(_require(evaluator, "source", "custom evaluator")))(rows)
            if not isinstance(result, dict) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in result.values()
            ):
                raise ValueError(
                    f"The custom evaluator {evaluator['function']} must return a dict of numbers."
                )
            metrics.update({str(k): float(v) for k, v in result.items()})
        else:
            raise ValueError(f"evaluators[{index}] has kind '{kind}'; use rule, llm_judge or custom.")
    return metrics


def evaluation(params: dict[str, Any], progress: Path | None) -> dict[str, Any]:
    from runner.local.engine.inference import read_rows, run_batch

    models = _require(params, "models", "evaluation")
    evaluators = _require(params, "evaluators", "evaluation")
    output_dir = Path(_require(params, "output_dir", "evaluation"))
    dataset = params.get("dataset_path")
    per_model = len(read_rows(Path(dataset))) if dataset else 0
    total = per_model * len(models)
    results: dict[str, Any] = {}
    for position, entry in enumerate(models):
        version = str(_require(entry, "version_id", "evaluation model"))
        results_path = entry.get("results_path")
        if results_path:
            path = Path(results_path)
        else:
            if not dataset:
                raise ValueError(
                    f"The evaluation of {version} needs 'dataset_path' or precomputed 'results_path'."
                )
            path = output_dir / f"{version}.jsonl"
            run_batch(
                Path(_require(entry, "model_dir", "evaluation model")),
                Path(dataset),
                path,
                params.get("inference_params") or {},
                int(params.get("batch_size") or 64),
                _progress_writer(progress, position * per_model, total),
            )
        rows = read_rows(path)
        results[version] = {
            "metrics": apply_evaluators(rows, evaluators),
            "samples": len(rows),
            "results_path": str(path),
        }
    if progress is not None:
        write_json(progress, {"done": total, "total": total})
    return {"models": results}


def compression(params: dict[str, Any], progress: Path | None) -> dict[str, Any]:
    from runner.local.engine.compress import compress
    from runner.local.engine.inference import read_rows

    calib = params.get("calib_path")
    report = _progress_writer(progress)
    report(0, 1)
    result = compress(
        Path(_require(params, "model_dir", "compression")),
        Path(_require(params, "output_dir", "compression")),
        str(_require(params, "strategy", "compression")),
        params.get("weight"),
        read_rows(Path(calib)) if calib else None,
    )
    report(1, 1)
    return result


def describe(error: BaseException) -> str:
    """One sentence for the worker: the engine's own messages as they are, system errors with their file."""
    if isinstance(error, OSError) and error.filename:
        return f"The job could not use the file {error.filename}: {error.strerror or error}."
    message = str(error).strip() or type(error).__name__
    return message if message.endswith(".") else f"{message}."


RUNNERS: dict[str, Callable[[dict[str, Any], Path | None], dict[str, Any]]] = {
    "batch_inference": batch_inference,
    "evaluation": evaluation,
    "compression": compression,
}


def run_spec(spec_path: Path) -> tuple[Path | None, dict[str, Any], int]:
    """Run one spec; returns (result file, result, exit code). Never raises for a job's own failure."""
    result_file: Path | None = None
    try:
        try:
            spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(
                f"The job spec {spec_path} is not valid JSON (line {error.lineno}, column {error.colno}: "
                f"{error.msg})."
            ) from None
        if not isinstance(spec, dict):
            raise ValueError(f"The job spec {spec_path} is not a JSON object.")
        workdir = Path(_require(spec, "workdir", "job spec"))
        result_file = workdir / "result.json"
        kind = spec.get("kind")
        if kind not in RUNNERS:
            raise ValueError(f"The job kind '{kind}' is unknown; use one of {', '.join(KINDS)}.")
        progress = Path(spec["progress_file"]) if spec.get("progress_file") else None
        return result_file, RUNNERS[kind](dict(spec.get("params") or {}), progress), 0
    except Exception as error:  # noqa: BLE001 - every failure becomes the result's sentence
        traceback.print_exc(file=sys.stderr)
        return result_file, {"error": describe(error)}, 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m runner.local.engine.job SPEC.json\n")
        return 2
    result_file, result, code = run_spec(Path(args[0]))
    if result_file is not None:
        write_json(result_file, result)
    if code:
        sys.stderr.write(f"{result['error']}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
