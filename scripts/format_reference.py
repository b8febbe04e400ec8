"""Write docs/pipeline-format.md from schemas/pipeline.schema.json, so the reference cannot drift from it.

python scripts/format_reference.py          # rewrite the reference
python scripts/format_reference.py --check  # exit 1 when the committed reference is stale (a test runs this)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "pipeline.schema.json"
OUTPUT = ROOT / "docs" / "pipeline-format.md"
SECTIONS = (
    ("The pipeline file", None),
    ("Dataset", "dataset"),
    ("Per-target dataset source (`datasets.<id>.targets.<target>`)", "datasetSource"),
    ("Stage: model", "modelStage"),
    ("Per-target model source (`model.targets.<target>`)", "modelSource"),
    ("Stage: infer", "inferStage"),
    ("Stage: evaluate", "evaluateStage"),
    ("Stage: compress", "compressStage"),
    ("Stage: deploy", "deployStage"),
    ("Stage: finetune", "finetuneStage"),
    ("Hyper-parameters (`finetune.hyperparameters`)", "hyperparameters"),
    ("Matrix (`matrix`, any stage; see matrix.md)", "matrix"),
    ("Inference parameters (`params`)", "inferenceParams"),
    ("Evaluator: rule", "ruleEvaluator"),
    ("Evaluator: llm_judge", "judgeEvaluator"),
    ("Evaluator: custom", "customEvaluator"),
    ("Evaluator: manual", "manualEvaluator"),
    ("Evaluator: opencompass (benchmark files: benchmarks.md)", "opencompassEvaluator"),
    ("Service (`deploy.service`)", "service"),
    ("Billing (`deploy.service.billing`)", "billing"),
    ("Smoke test (`deploy.smoke_test[]`)", "smokeTest"),
    ("Chat message", "message"),
    ("Expectation (`smoke_test[].expect`)", "expect"),
)


def render(schema: dict[str, Any]) -> str:
    definitions = schema["$defs"]
    lines = [
        "# Pipeline format 1: field reference",
        "",
        "Generated from `schemas/pipeline.schema.json` by `scripts/format_reference.py`; a test fails when",
        "the two differ. Where a number, boolean or choice is expected, a whole `${{ ... }}` expression may",
        "stand instead.",
        "",
    ]
    for title, name in SECTIONS:
        node = schema if name is None else definitions[name]
        lines += [f"## {title}", "", _markdown(node), ""]
        if not node.get("properties"):  # a mapping of free keys (matrix): its description says it all
            continue
        lines += ["| field | type | required | meaning |", "| --- | --- | --- | --- |"]
        required = set(node.get("required", []))
        for field, spec in node.get("properties", {}).items():
            lines.append(
                f"| `{field}` | {_type(spec, definitions)} | {'yes' if field in required else ''} | "
                f"{_cell(_meaning(spec, definitions))} |"
            )
        lines.append("")
    return "\n".join(lines)


def _resolve(spec: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    ref = spec.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**definitions[ref.removeprefix("#/$defs/")], **{k: v for k, v in spec.items() if k != "$ref"}}
    return spec


def _type(spec: dict[str, Any], definitions: dict[str, Any]) -> str:
    spec = _resolve(spec, definitions)
    if "enum" in spec:
        return " \\| ".join(f"`{value}`" for value in spec["enum"])
    if "const" in spec:
        return f"`{spec['const']}`"
    choices = spec.get("anyOf") or spec.get("oneOf")
    if choices:
        kinds = [_type(choice, definitions) for choice in choices]
        return " or ".join(dict.fromkeys(kind for kind in kinds if kind))
    kind = spec.get("type", "")
    if kind == "array" and isinstance(spec.get("items"), dict):
        return f"list of {_type(spec['items'], definitions)}"
    bounds = [f"{word} {spec[key]}" for key, word in (("minimum", "≥"), ("maximum", "≤")) if key in spec]
    text = spec.get("title", kind) if kind == "object" and "title" in spec else kind
    return f"{text} ({', '.join(bounds)})" if bounds else str(text)


def _meaning(spec: dict[str, Any], definitions: dict[str, Any]) -> str:
    resolved = _resolve(spec, definitions)
    text = _markdown(spec) or _markdown(resolved)
    if "default" in resolved:
        text += f" Default: `{json.dumps(resolved['default'])}`."
    if resolved.get("pattern") and "enum" not in resolved:
        text += f" Pattern: `{resolved['pattern']}`."
    return text


def _markdown(node: dict[str, Any]) -> str:
    """A node's description as Markdown: ``markdownDescription`` where it has one (code in backticks)."""
    return str(node.get("markdownDescription") or node.get("description", ""))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true")
    text = render(json.loads(SCHEMA.read_text(encoding="utf-8")))
    if parser.parse_args().check:
        if OUTPUT.read_text(encoding="utf-8") != text:
            print(
                f"{OUTPUT.relative_to(ROOT)} is stale: run python scripts/format_reference.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
