"""pipelines/compression-matrix.yaml in its matrix form means what its explicit form meant: the same stages
and, ids aside, the same fingerprints."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.pipeline import dag
from runner.pipeline.spec import Pipeline, load_pipeline
from runner.run import fingerprint
from runner.run.inputs import Inputs, Upstream

EXAMPLE = Path(__file__).resolve().parents[2] / "pipelines" / "compression-matrix.yaml"
# The example as it was written before matrix: existed, one compress stage per scheme.
EXPLICIT = """\
version: 1
name: compression-matrix
platform: local
datasets:
  eval: {path: ../data/addition/eval.jsonl}
  calib: {path: ../data/addition/calib.jsonl}
stages:
  base:
    type: model
    import: ../models/tiny-adder
  int8:
    type: compress
    model: base
    strategy: quantization
    weight: INT8-PTQ
    dataset: calib
  w8:
    type: compress
    model: base
    strategy: quantization
    weight: W8A16C16
  w4:
    type: compress
    model: base
    strategy: quantization
    weight: W4A16C16
    dataset: calib
  sparse:
    type: compress
    model: base
    strategy: sparsity
    dataset: calib
  compare:
    type: evaluate
    models: [base, int8, w8, w4, sparse]
    dataset: eval
    params: {temperature: 0, max_output_tokens: 5}
    evaluators:
      - {kind: rule, accuracy: true, similarity: true}
"""
OLD_IDS = {f"compress@scheme={scheme}": scheme for scheme in ("int8", "w8", "w4", "sparse")}


def renamed(value: Any) -> Any:
    """``value`` with every member id written as the explicit form's stage id."""
    if isinstance(value, str):
        return OLD_IDS.get(value, value)
    if isinstance(value, Mapping):
        return {renamed(key): renamed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [renamed(item) for item in value]
    return value


def fingerprints(pipeline: Pipeline) -> dict[str, str]:
    """Each stage's fingerprint under its explicit-form id, every upstream output the same in both forms."""
    inputs = Inputs(pipeline, environ={})
    found: dict[str, str] = {}
    upstream: dict[str, Upstream] = {}
    for stage_id in dag.topological(pipeline.graph):
        stage = pipeline.stages[stage_id]
        seen = {up: upstream[up] for up in stage.upstream}
        material = renamed(inputs.material(stage, inputs.resolve(stage, seen), seen))
        found[renamed(stage_id)] = fingerprint.digest(material)
        upstream[stage_id] = Upstream(
            found[renamed(stage_id)], {"model_version_id": f"amv-{renamed(stage_id)}"}
        )
    return found


def test_the_matrix_form_expands_to_the_explicit_stages_ids_aside() -> None:
    matrix = load_pipeline(EXAMPLE)
    explicit = load_pipeline(EXAMPLE.with_name("explicit.yaml"), text=EXPLICIT)
    assert [renamed(s) for s in matrix.stages] == list(explicit.stages)
    for stage_id, stage in matrix.stages.items():
        old = explicit.stages[renamed(stage_id)]
        written = (stage.type, renamed(stage.fields), renamed(list(stage.upstream)))
        assert written == (old.type, old.fields, list(old.upstream))


def test_the_matrix_form_has_the_explicit_forms_fingerprints_ids_aside() -> None:
    matrix = fingerprints(load_pipeline(EXAMPLE))
    explicit = fingerprints(load_pipeline(EXAMPLE.with_name("explicit.yaml"), text=EXPLICIT))
    assert matrix == explicit
    assert len(matrix) == 6
