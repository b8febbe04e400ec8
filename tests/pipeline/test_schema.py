"""runner.pipeline.schema and schemas/pipeline.schema.json: what format 1 accepts, how each refusal reads."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from runner.errors import Issue, Location
from runner.pipeline.schema import pipeline_schema, schema_issues, schema_text
from runner.pipeline.yamlio import load_document

REPO = Path(__file__).resolve().parents[2]

HEAD = "version: 1\nname: demo\n"

EVERY_STAGE = textwrap.dedent(
    """\
    version: 1
    name: qa-release
    description: every stage type and option in one file
    platform: {kind: qianfan, url: "https://qianfan.baidubce.com", inference_url: "https://x.example", rps: 5}
    vars:
      min_accuracy: 0.6
      nested: {any: [json, 1, true, null]}
    env: [MIN_ACCURACY, RUN_LABEL]
    datasets:
      qa_eval: {path: data/qa_eval.jsonl, description: held-out questions}
      prod_eval: {qianfan_dataset_id: ds-123}
    stages:
      base:
        type: model
        version_id: amv-xxxx
        description: the base model
        timeout_minutes: 30
      local_base:
        type: model
        import: models/tiny-qa
        name: tiny-qa
      base_infer:
        type: infer
        model: base
        dataset: qa_eval
        batch_size: 16
        params: {temperature: 0.5, top_p: 0.9, top_k: 40, max_output_tokens: 16, do_sample: true,
                 seed: 7, penalty_score: 1.2}
      base_eval:
        type: evaluate
        models: [base, local_base]
        dataset: qa_eval
        params: {temperature: "${{ vars.min_accuracy }}"}
        evaluators:
          - {kind: rule, accuracy: true, similarity: true, bleu: false, rouge_l: true, exact_match: true}
          - {kind: llm_judge, judge: judge_svc, prompt: "Grade {answer} for {question} ({reference})",
             max_score: 10}
          - {kind: custom, function: "evals.arith:score"}
      infer_eval:
        type: evaluate
        infer: [base_infer]
        needs: [base_eval]
        evaluators: [{kind: rule, accuracy: true}]
      w4:
        type: compress
        model: base
        strategy: quantization
        weight: W4A16C16
        dataset: qa_eval
        name: base-w4
      sparse:
        type: compress
        model: base
        strategy: sparsity
      judge_svc:
        type: deploy
        model: local_base
        if: true
        service: {name: judge, url_suffix: judge, billing: {payment: postpaid, charge: tokens}}
      serve:
        type: deploy
        model: w4
        if: ${{ stages.base_eval.outputs.metrics.accuracy >= vars.min_accuracy }}
        service:
          name: qa
          url_suffix: qa_w4
          billing: {payment: prepaid, months: "${{ vars.months }}"}
          resource_type: GPU-1-2
          region: bj
          replicas: "${{ vars.replicas }}"
          qps: 1.5
        smoke_test:
          - messages: [{role: system, content: be brief}, {role: user, content: "2+3=?"}]
            expect: {contains: "5"}
          - messages: [{role: user, content: "1+1=?"}]
            expect: {regex: "^ ?2$"}
    """
)


def issues_of(text: str, name: str = "p.yaml") -> list[str]:
    return [str(issue) for issue in schema_issues(load_document(name, text=text))]


def stage(body: str) -> str:
    """A pipeline whose only stage, ``s``, has ``body`` (flow-style mapping content) on line 4."""
    return HEAD + f"stages:\n  s: {{{body}}}\n"


def test_schema_is_valid_draft_2020_12_with_its_id() -> None:
    schema = pipeline_schema()
    Draft202012Validator.check_schema(schema)  # against the draft's meta-schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    # Where SchemaStore serves a schema it hosts (see docs/schemastore.md): stable across qfrun releases,
    # one file per pipeline format.
    assert schema["$id"] == "https://www.schemastore.org/qfrun-pipeline-1.json"


def walk_descriptions(node: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            found.append((where, node))
        for key, value in node.items():
            found += walk_descriptions(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += walk_descriptions(value, f"{where}/{index}")
    return found


def test_markdown_lives_in_markdown_description_and_description_is_its_plain_text() -> None:
    described = walk_descriptions(pipeline_schema())
    # Editors that read only description would show raw backticks; those that read markdownDescription
    # (VS Code's JSON and YAML servers) render them as code.
    assert [where for where, node in described if "`" in node["description"]] == []
    with_markdown = [(where, node) for where, node in described if "markdownDescription" in node]
    assert len(with_markdown) > 50
    for where, node in with_markdown:
        assert "`" in node["markdownDescription"], where
        assert node["description"] == node["markdownDescription"].replace("`", ""), where


def test_schema_has_the_top_level_fields_schemastore_checks_before_hosting_it() -> None:
    schema = pipeline_schema()
    # SchemaStore's cli.js: an http(s) $id, a $schema dialect it knows (2020-12 is listed in its
    # highSchemaVersion), and title, description and type at the top (docs/schemastore.md).
    assert schema["$id"].startswith("https://")
    assert schema["$schema"] in (
        "http://json-schema.org/draft-07/schema#",
        "https://json-schema.org/draft/2020-12/schema",
    )
    assert {"title", "description", "type"} <= set(schema)


def test_schema_text_is_the_shipped_file() -> None:
    assert schema_text() == (REPO / "schemas" / "pipeline.schema.json").read_text(encoding="utf-8")
    assert pipeline_schema() is pipeline_schema()


def walk_object_schemas(node: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((where, node))
        for key, value in node.items():
            found += walk_object_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += walk_object_schemas(value, f"{where}/{index}")
    return found


def test_every_property_has_a_title_and_a_description() -> None:
    missing = []
    for where, schema in walk_object_schemas(pipeline_schema()):
        if "if" in where.split("/"):
            continue  # the discriminating conditions of if/then are not properties a user sees
        for name, sub in schema["properties"].items():
            if (
                isinstance(sub, dict)
                and set(sub) != {"$ref"}
                and not ("title" in sub and "description" in sub)
            ):
                missing.append(f"{where}/properties/{name}")
    assert missing == []


def test_every_object_with_fixed_properties_forbids_others() -> None:
    schema = pipeline_schema()
    objects = [schema, *(sub for sub in schema["$defs"].values() if sub.get("type") == "object")]
    dispatchers = {"stage", "evaluator"}  # they only route to a type's schema, which is closed
    for sub in objects:
        if sub.get("title", "").lower() in dispatchers or (
            "allOf" in sub and "additionalProperties" not in sub
        ):
            continue
        if "properties" in sub:
            assert sub["additionalProperties"] is False, sub["title"]


def test_pipeline_with_every_stage_type_and_option_is_valid() -> None:
    assert issues_of(EVERY_STAGE) == []


@pytest.mark.parametrize("platform", ["local", "qianfan", "{kind: local}", "{kind: local, rps: 100}"])
def test_platform_forms_are_valid(platform: str) -> None:
    assert issues_of(HEAD + f"platform: {platform}\nstages:\n  m: {{type: model, version_id: v}}\n") == []


def test_minimal_pipeline_is_valid() -> None:
    assert issues_of(stage("type: model, version_id: amv-1")) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "version: 2\nname: Bad Name\nstages: {}\n",
            ["p.yaml:1:10: version: this qfrun reads pipeline format 1; the file says 2."],
        ),
        (
            "version: '1'\nname: x\nstages: {m: {type: model, version_id: v}}\n",
            ["p.yaml:1:10: version: this qfrun reads pipeline format 1; the file says '1'."],
        ),
        (
            "name: x\n",
            ["p.yaml:1:1: top level: 'stages' is required.", "p.yaml:1:1: top level: 'version' is required."],
        ),
        (
            HEAD + "stages: {}\n",
            ["p.yaml:3:9: stages: must not be empty."],
        ),
        (
            "version: 1\nname: Bad Name\nstages: {m: {type: model, version_id: v}}\n",
            [
                "p.yaml:2:7: name: 'Bad Name' is not valid: use lower-case letters, digits, '_' and '-', "
                "starting with a letter or digit, at most 63 characters."
            ],
        ),
        (
            HEAD + "stages:\n  ../etc/passwd: {type: model, version_id: v}\n",
            [
                "p.yaml:4:3: stages: '../etc/passwd' is not a valid stage id: "
                "use letters, digits, '_' and '-', starting with a letter or '_', at most 64 characters."
            ],
        ),
        (
            HEAD + "platform: cloud\nstages: {m: {type: model, version_id: v}}\n",
            ["p.yaml:3:11: platform: 'cloud' is not one of local, qianfan."],
        ),
        (
            HEAD + "platform: {kind: qianfan, access_key: abc}\nstages: {m: {type: model, version_id: v}}\n",
            [
                "p.yaml:3:27: platform: unknown key 'access_key'; "
                "allowed keys are bos, inference_url, kind, rps, url."
            ],
        ),
        (
            HEAD + "platform: {kind: local, rps: 0}\nstages: {m: {type: model, version_id: v}}\n",
            ["p.yaml:3:30: platform.rps: 0 is less than or equal to the minimum of 0."],
        ),
        (
            HEAD + "env: [QIANFAN_SECRET_KEY, home]\nstages: {m: {type: model, version_id: v}}\n",
            [
                "p.yaml:3:7: env[0]: 'QIANFAN_SECRET_KEY' is a credential; expressions may never read "
                "credentials, so env cannot list it.",
                "p.yaml:3:27: env[1]: 'home' is not valid: "
                "environment variable names use upper-case letters, digits and '_'.",
            ],
        ),
        (
            HEAD + "vars: {1x: 2}\nstages: {m: {type: model, version_id: v}}\n",
            [
                "p.yaml:3:8: vars: '1x' is not a valid variable name: use letters, digits and '_', "
                "not starting with a digit."
            ],
        ),
        (
            HEAD
            + "datasets:\n  a: {path: x, qianfan_dataset_id: y}\n  b: {}\n"
            + "stages: {m: {type: model, version_id: v}}\n",
            [
                "p.yaml:4:3: datasets.a: give only one of 'path' or 'qianfan_dataset_id', not both.",
                "p.yaml:5:3: datasets.b: needs exactly one of 'path' or 'qianfan_dataset_id'.",
            ],
        ),
    ],
)
def test_pipeline_level_errors_read_well(text: str, expected: list[str]) -> None:
    assert issues_of(text) == expected


@pytest.mark.parametrize(
    ("body", "at", "message"),
    [
        ("description: x", None, "stages.s: 'type' is required."),
        (
            "type: modle",
            "modle",
            "stages.s.type: 'modle' is not one of model, infer, evaluate, compress, deploy, "
            "finetune; "
            "did you mean 'model'?",
        ),
        (
            "type: model",
            None,
            "stages.s: needs exactly one of 'version_id', 'import', 'train_task_id' or 'endpoint'.",
        ),
        (
            "type: model, version_id: a, import: b",
            None,
            "stages.s: give only one of 'version_id', 'import', 'train_task_id' or 'endpoint', not several.",
        ),
        ("type: model, version_id: a, needs: [b, b]", "[b", "stages.s.needs: lists b more than once."),
        (
            "type: model, version_id: a, timeout_minutes: 0",
            "0",
            "stages.s.timeout_minutes: 0 is less than the minimum of 1.",
        ),
        (
            "type: model, version_id: a, if: x > 1",
            "x >",
            "stages.s.if: 'x > 1' is not valid: a condition is a '${{ ... }}' expression or true/false.",
        ),
        ("type: infer, dataset: d", None, "stages.s: 'model' is required for an infer stage."),
        (
            "type: infer, model: m, dataset: d, batch_size: 1000",
            "1000",
            "stages.s.batch_size: 1000 is greater than the maximum of 256.",
        ),
        (
            "type: infer, model: m, dataset: d, params: {temperature: 3}",
            "3",
            "stages.s.params.temperature: 3 is greater than the maximum of 2.",
        ),
        (
            "type: infer, model: m, dataset: d, params: {top_k: many}",
            "many",
            "stages.s.params.top_k: expected an integer or a '${{ ... }}' expression, got the string 'many'.",
        ),
        (
            "type: infer, model: m, dataset: d, params: {seed: '${{ vars.seed'}",
            "'$",
            "stages.s.params.seed: '${{ vars.seed' is not valid: "
            "an expression is the whole value, '${{ ... }}'.",
        ),
        (
            "type: infer, model: m, dataset: d, params: 5",
            "5",
            "stages.s.params: expected a mapping, got the integer 5.",
        ),
        (
            "type: evaluate, models: [m], evaluators: [{kind: rule, accuracy: true}]",
            None,
            "stages.s: needs either 'models' with 'dataset', or 'infer'.",
        ),
        ("type: evaluate, infer: [i], evaluators: []", "[]", "stages.s.evaluators: must not be empty."),
        (
            "type: evaluate, infer: [i], evaluators: [{kind: rule, acuracy: true}]",
            "acuracy",
            "stages.s.evaluators[0]: unknown key 'acuracy'; did you mean 'accuracy'?",
        ),
        (
            "type: evaluate, infer: [i], evaluators: [{kind: judge}]",
            "judge",
            "stages.s.evaluators[0].kind: 'judge' is not one of rule, llm_judge, custom, manual, "
            "opencompass; did you mean 'llm_judge'?",
        ),
        (
            "type: evaluate, infer: [i], evaluators: [{kind: llm_judge}]",
            "{kind",
            "stages.s.evaluators[0]: 'judge' is required when kind is llm_judge.",
        ),
        (
            "type: evaluate, infer: [i], evaluators: [{kind: llm_judge, judge: j, max_score: 101}]",
            "101",
            "stages.s.evaluators[0].max_score: 101 is greater than the maximum of 100.",
        ),
        (
            "type: evaluate, infer: [i], evaluators: [{kind: custom, function: score}]",
            "score",
            "stages.s.evaluators[0].function: 'score' is not valid: "
            "write it as 'module:function', e.g. 'evals.arith:score'.",
        ),
        (
            "type: compress, model: m, strategy: quantization",
            None,
            "stages.s: 'weight' is required when strategy is quantization.",
        ),
        (
            "type: compress, model: m, strategy: sparsity, weight: INT8-PTQ",
            "weight",
            "stages.s: 'weight' is not allowed when strategy is sparsity.",
        ),
        (
            "type: compress, model: m, strategy: quantization, weight: W4A16",
            "W4A16",
            "stages.s.weight: 'W4A16' is not one of INT8-PTQ, W8A16C16, W4A16C16; did you mean 'W4A16C16'?",
        ),
        (
            "type: compress, model: m, strategy: Quantization, weight: W4A16C16",
            "Quantization",
            "stages.s.strategy: 'Quantization' is not one of quantization, sparsity; "
            "did you mean 'quantization'?",
        ),
        ("type: deploy, model: m", None, "stages.s: 'service' is required for a deploy stage."),
    ],
)
def test_stage_errors_read_well(body: str, at: str | None, message: str) -> None:
    """``at`` is the text the issue points at on line 4 (None: the stage's key, column 3)."""
    column = 3 if at is None else len("  s: {") + 1 + body.index(at)
    assert issues_of(stage(body)) == [f"p.yaml:4:{column}: {message}"]


def test_misspelt_key_is_located_at_the_key_with_a_suggestion() -> None:
    text = HEAD + "stages:\n  w4:\n    type: compress\n    model: m\n"
    text += "    strategy: quantization\n    wieght: W4A16C16\n"
    assert issues_of(text) == [
        "p.yaml:4:3: stages.w4: 'weight' is required when strategy is quantization.",
        "p.yaml:8:5: stages.w4: unknown key 'wieght'; did you mean 'weight'?",
    ]


SERVE = textwrap.dedent(
    """\
    version: 1
    name: demo
    stages:
      serve:
        type: deploy
        model: w4
        service:
          name: qa
          url_suffix: qa-w4-
          replicas: 0
          billing: {payment: prepaid, months: one}
          resource_type: GPU-1-3
        smoke_test:
          - messages: []
            expect: {contains: "5", equals: "5"}
          - messages: [{role: usr, content: hi}]
            expect: {}
    """
)


def test_evaluate_takes_models_with_dataset_or_infer_results_never_both() -> None:
    body = "type: evaluate, infer: [i], models: [m], dataset: d, evaluators: [{kind: rule, accuracy: true}]"
    assert issues_of(stage(body)) == [
        "p.yaml:4:3: stages.s: give either 'models' with 'dataset', or 'infer', not both.",
        "p.yaml:4:35: stages.s: 'models' is not allowed with 'infer'.",
        "p.yaml:4:48: stages.s: 'dataset' is not allowed with 'infer'.",
    ]
    body = "type: evaluate, infer: [i], params: {temperature: 0}, evaluators: [{kind: rule, accuracy: true}]"
    assert issues_of(stage(body)) == ["p.yaml:4:35: stages.s: 'params' is not allowed with 'infer'."]


def test_all_deploy_errors_are_reported_at_once_and_sorted() -> None:
    assert issues_of(SERVE, "serve.yaml") == [
        "serve.yaml:9:19: stages.serve.service.url_suffix: 'qa-w4-' is not valid: use 2 to 20 lower-case "
        "letters, digits, '_' or '-', starting and ending with a letter or digit (Qianfan's rule for a URL "
        "suffix).",
        "serve.yaml:10:17: stages.serve.service.replicas: 0 is less than the minimum of 1.",
        "serve.yaml:11:43: stages.serve.service.billing.months: expected an integer or a '${{ ... }}' "
        "expression, got the string 'one'.",
        "serve.yaml:12:22: stages.serve.service.resource_type: 'GPU-1-3' is not one of CPU-1-1, GPU-1-1, "
        "GPU-1-2, GPU-1-4, GPU-1-8, GPU-5-1, GPU-5-2, GPU-6-1, GPU-6-2, GPU-7-1, GPU-7-2; did you mean "
        "'GPU-1-8'?",
        "serve.yaml:14:19: stages.serve.smoke_test[0].messages: must not be empty.",
        "serve.yaml:15:9: stages.serve.smoke_test[0].expect: "
        "give only one of 'contains', 'equals' or 'regex', not several.",
        "serve.yaml:16:27: stages.serve.smoke_test[1].messages[0].role: 'usr' is not one of user, assistant, "
        "system; did you mean 'user'?",
        "serve.yaml:17:9: stages.serve.smoke_test[1].expect: "
        "needs exactly one of 'contains', 'equals' or 'regex'.",
    ]


def service_stage(*lines: str) -> str:
    """A deploy stage whose ``service:`` block holds ``lines`` (from line 8 on, at column 7)."""
    body = "".join(f"      {line}\n" for line in lines)
    return HEAD + "stages:\n  s:\n    type: deploy\n    model: m\n    service:\n" + body


VALID_SERVICE = (
    "name: qa",
    "url_suffix: qa",
    "billing: {payment: prepaid, months: 1}",
    "resource_type: GPU-1-1",
)


@pytest.mark.parametrize(
    ("old", "message"),
    [
        (
            "hours: 24",
            "p.yaml:12:7: stages.s.service: `hours` is gone: Qianfan sells services by the month; use "
            "`billing: {payment: prepaid, months: 1}` (or `billing: {payment: postpaid, charge: "
            "computing_unit}`).",
        ),
        (
            "pool_type: private",
            "p.yaml:12:7: stages.s.service: `pool_type` is gone: Qianfan buys compute by resource type; use "
            "`resource_type:` (e.g. GPU-1-1) and optionally `region: bj`.",
        ),
        (
            "service_type: chat",
            "p.yaml:12:7: stages.s.service: `service_type` is gone: every deployed service is a chat service "
            "and CreateService takes no type; remove it.",
        ),
        (
            "endpoint_suffix: qa_w4",
            "p.yaml:12:7: stages.s.service: `endpoint_suffix` is gone: Qianfan calls it urlSuffix; use "
            "`url_suffix:` (2 to 20 of a-z, 0-9, '_', '-').",
        ),
    ],
)
def test_an_old_service_spelling_is_refused_naming_the_new_one(old: str, message: str) -> None:
    assert issues_of(service_stage(*VALID_SERVICE, old)) == [message]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "name: twenty-one-characters",
            "p.yaml:8:13: stages.s.service.name: 'twenty-one-characters' has 21 characters; use 2 to 20.",
        ),
        ("name: q", "p.yaml:8:13: stages.s.service.name: 'q' has 1 character; use 2 to 20."),
        (
            "url_suffix: Qa_W4",
            "p.yaml:9:19: stages.s.service.url_suffix: 'Qa_W4' is not valid: use 2 to 20 lower-case "
            "letters, digits, '_' or '-', starting and ending with a letter or digit (Qianfan's rule for a "
            "URL suffix).",
        ),
        (
            "billing: {payment: prepaid, months: 13}",
            "p.yaml:10:43: stages.s.service.billing.months: 13 is greater than the maximum of 12.",
        ),
        (
            "billing: {payment: prepaid}",
            "p.yaml:10:7: stages.s.service.billing: 'months' is required when payment is prepaid.",
        ),
        (
            "billing: {payment: postpaid, charge: tokens, months: 1}",
            "p.yaml:10:52: stages.s.service.billing: 'months' is not allowed when payment is postpaid.",
        ),
        (
            "resource_type: GPU-I-2",
            "p.yaml:11:22: stages.s.service.resource_type: 'GPU-I-2' is not one of CPU-1-1, GPU-1-1, "
            "GPU-1-2, GPU-1-4, GPU-1-8, GPU-5-1, GPU-5-2, GPU-6-1, GPU-6-2, GPU-7-1, GPU-7-2; did you mean "
            "'GPU-7-2'?",
        ),
        ("qps: 0", "p.yaml:12:12: stages.s.service.qps: 0 is less than or equal to the minimum of 0."),
        ("region: gz", "p.yaml:12:15: stages.s.service.region: 'gz' is not one of bj, bd."),
    ],
)
def test_a_service_is_held_to_what_qianfan_sells(line: str, message: str) -> None:
    key = line.split(":")[0]
    lines = [line if existing.startswith(f"{key}:") else existing for existing in VALID_SERVICE]
    if key not in {existing.split(":")[0] for existing in VALID_SERVICE}:
        lines.append(line)
    assert issues_of(service_stage(*lines)) == [message]


def test_a_service_postpaid_by_tokens_needs_no_resource_type_and_others_do() -> None:
    tokens = ("name: qa", "url_suffix: qa", "billing: {payment: postpaid, charge: tokens}")
    assert issues_of(service_stage(*tokens)) == []
    by_unit = ("name: qa", "url_suffix: qa", "billing: {payment: postpaid, charge: computing_unit}")
    assert issues_of(service_stage(*by_unit)) == [
        "p.yaml:7:5: stages.s.service: 'resource_type' is required unless billing.charge is tokens."
    ]
    assert issues_of(service_stage("name: qa", "url_suffix: qa", "resource_type: CPU-1-1")) == [
        "p.yaml:7:5: stages.s.service: 'billing' is required for a deploy stage."
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("platform: 5", "platform: expected one of local, qianfan or a mapping, got the integer 5."),
        (
            "stages: {m: {type: infer, model: m, dataset: d, params: {top_p: true}}}",
            "stages.m.params.top_p: expected a number or a '${{ ... }}' expression, got the boolean true.",
        ),
        (
            "stages: {m: {type: infer, model: m, dataset: d, params: {temperature: [1]}}}",
            "stages.m.params.temperature: expected a number or a '${{ ... }}' expression, got a list.",
        ),
        (
            "stages: {m: {type: infer, model: m, dataset: d, params: {temperature: 0.5, top_p: 1.5}}}",
            "stages.m.params.top_p: 1.5 is greater than the maximum of 1.",
        ),
        (
            "stages: {m: {type: model, version_id: v, if: 3}}",
            "stages.m.if: expected a boolean or a string, got the integer 3.",
        ),
        (
            "stages: {m: {type: model, version_id: v, description: null}}",
            "stages.m.description: expected a string, got null.",
        ),
        (
            "stages: {m: {type: model, version_id: v, needs: {a: 1}}}",
            "stages.m.needs: expected a list, got a mapping.",
        ),
    ],
)
def test_values_of_the_wrong_kind_say_what_was_expected(line: str, message: str) -> None:
    text = HEAD + line + "\n"
    if not line.startswith("stages"):
        text += "stages: {m: {type: model, version_id: v}}\n"
    (issue,) = issues_of(text)
    assert issue.split(": ", 1)[1] == message


def test_version_that_is_not_a_number_is_named_as_written() -> None:
    text = "version: true\nname: x\nstages: {m: {type: model, version_id: v}}\n"
    assert issues_of(text) == [
        "p.yaml:1:10: version: this qfrun reads pipeline format 1; the file says true."
    ]


def test_issues_are_issue_objects_with_locations() -> None:
    (issue,) = schema_issues(load_document("p.yaml", text=stage("type: deploy, model: m")))
    assert issue == Issue(Location("p.yaml", 4, 3), "stages.s: 'service' is required for a deploy stage.")


def test_unknown_key_without_a_close_match_lists_the_allowed_keys() -> None:
    (message,) = issues_of(stage("type: model, version_id: v, colour: red"))
    assert message == (
        "p.yaml:4:35: stages.s: unknown key 'colour'; allowed keys are checkpoint_step, description, "
        "endpoint, if, import, matrix, name, needs, targets, timeout_minutes, train_task_id, type, "
        "version_id."
    )


def test_yaml_anchors_in_a_valid_pipeline_validate() -> None:
    text = HEAD + textwrap.dedent(
        """\
        stages:
          a: &deploy
            type: deploy
            model: m
            service: {name: aa, url_suffix: aa, billing: {payment: postpaid, charge: tokens}}
          b:
            <<: *deploy
            description: same service, other name
        """
    )
    assert issues_of(text) == []


def big_pipeline(stages: int) -> str:
    lines = [HEAD.rstrip("\n"), "datasets:", "  qa: {path: qa.jsonl}", "stages:"]
    for index in range(0, stages, 4):
        lines += [
            f"  m{index}: {{type: model, version_id: v{index}}}",
            f"  c{index}: {{type: compress, model: m{index}, strategy: quantization, weight: W4A16C16}}",
            f"  e{index}:",
            "    type: evaluate",
            f"    models: [c{index}]",
            "    dataset: qa",
            "    evaluators: [{kind: rule, accuracy: true}]",
            f"  d{index}:",
            "    type: deploy",
            f"    model: c{index}",
            f"    if: ${{{{ stages.e{index}.outputs.metrics.accuracy > 0.5 }}}}",
            f"    service: {{name: s{index}, url_suffix: e{index}, replicas: 1, "
            "billing: {payment: prepaid, months: 1}, resource_type: GPU-1-1}",
        ]
    return "\n".join(lines) + "\n"


def test_a_large_valid_pipeline_has_no_issues() -> None:
    # How fast this is, against the YAML parse, is measured by bench/runner_bench.py, not asserted here.
    assert schema_issues(load_document("big.yaml", text=big_pipeline(1000))) == []


def test_error_deep_in_a_large_pipeline_is_located() -> None:
    text = big_pipeline(1000).replace("months: 1}", "months: 0}", 1)
    line = text.splitlines()[16]
    column = line.index("0}") + 1
    assert issues_of(text) == [
        f"p.yaml:17:{column}: stages.d0.service.billing.months: 0 is less than the minimum of 1."
    ]


@pytest.mark.slow
def test_validating_a_valid_file_does_not_import_jsonschema(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(EVERY_STAGE, encoding="utf-8")
    code = (
        "import sys, runner.pipeline.schema, runner.pipeline.yamlio\n"
        "assert 'jsonschema' not in sys.modules\n"
        "from runner.pipeline.schema import schema_issues\n"
        "from runner.pipeline.yamlio import load_document\n"
        f"assert schema_issues(load_document({str(path)!r})) == []\n"
        "print('jsonschema' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert result.stdout.strip() == "False"


ODD_VALUES: list[Any] = [None, True, 0, -1, 1.5, 5000, "x", "${{ vars.x }}", "W4A16", [], ["a", "a"], {}]
_DELETE = object()


def mutations(data: Any, path: tuple[Any, ...] = ()) -> Any:
    """Every document that differs from ``data`` by one value replaced, one key removed or one key added."""
    node = data
    for key in path:
        node = node[key]
    children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
    for key, child in children:
        for odd in ODD_VALUES:
            yield replaced(data, (*path, key), odd)
        if isinstance(node, dict):
            yield replaced(data, (*path, key), _DELETE)
        if isinstance(child, dict | list):
            yield from mutations(data, (*path, key))
    if isinstance(node, dict):
        yield replaced(data, (*path, "weight"), "W4A16C16")
        yield replaced(data, (*path, "zz_unknown"), 1)


def replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    copy = json.loads(json.dumps(data))
    node = copy
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return copy


def test_fast_check_agrees_with_jsonschema_on_every_single_mutation() -> None:
    from runner.pipeline.schema import _is_valid, _validator

    checked, disagreements = 0, []
    for document in (yaml.safe_load(EVERY_STAGE), yaml.safe_load(SERVE)):
        for mutated in mutations(document):
            expected = not any(True for _ in _validator(()).iter_errors(mutated))
            checked += 1
            if _is_valid(())(mutated) != expected:
                disagreements.append((json.dumps(mutated)[:300], expected))
    assert checked > 1000
    assert disagreements == []


def test_schema_file_is_plain_json_with_no_trailing_data() -> None:
    assert json.loads(schema_text()) == pipeline_schema()
