"""The CI examples (docs/examples): valid for their CI (SchemaStore's schemas, which check-jsonschema ships;
actionlint where it is installed), their shell scripts pass shellcheck, and they keep the loop's promises:
pinned install, least privilege, the saved plan applied under a concurrency group, a comment that fits.

``act`` would run the GitHub workflow in Docker; this machine has neither Docker nor the network it needs,
so the workflows are checked statically here and their qfrun commands are tested directly
(tests/run/test_saved_plan.py, tests/state/test_state_bos.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
GITHUB = EXAMPLES / "github-qfrun.yml"
GITLAB = EXAMPLES / "gitlab-qfrun.yml"
GITHUB_COMMENT_LIMIT = 65_536


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _github_scripts() -> Iterator[tuple[str, str]]:
    for job_id, job in _load(GITHUB)["jobs"].items():
        for step in job["steps"]:
            if "run" in step:
                yield f"{job_id}: {step.get('name', step['run'].splitlines()[0])}", step["run"]


def _flat(items: list[Any]) -> Iterator[str]:
    """A GitLab script, its nested lists (YAML anchors) flattened as GitLab does."""
    for item in items:
        if isinstance(item, list):
            yield from _flat(item)
        else:
            yield str(item)


def _gitlab_scripts() -> Iterator[tuple[str, str]]:
    for job_id, job in _load(GITLAB).items():
        if isinstance(job, dict) and "script" in job:
            yield job_id, "\n".join(_flat(job["script"]))


@pytest.mark.parametrize(
    ("path", "schema"), [(GITHUB, "vendor.github-workflows"), (GITLAB, "vendor.gitlab-ci")]
)
def test_each_example_is_valid_by_its_ci_schema(path: Path, schema: str) -> None:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema is in the dev extra")
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("actionlint") is None, reason="actionlint is not installed here")
def test_actionlint_finds_nothing_in_the_github_workflow() -> None:
    done = subprocess.run(
        ["actionlint", str(GITHUB)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


# GitHub's expressions are filled in before the shell sees the script; a word stands in for each.
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


@pytest.mark.parametrize(
    ("where", "script"), [*_github_scripts(), *_gitlab_scripts()], ids=lambda value: str(value)[:40]
)
def test_every_script_is_sound_shell(where: str, script: str, tmp_path: Path) -> None:
    """shellcheck (in the dev extra, as actionlint runs it) where present, else ``bash -n``."""
    path = tmp_path / "script.sh"
    path.write_text("#!/bin/bash\nset -e\n" + _EXPRESSION.sub("x", script), encoding="utf-8")
    checker = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    command = [checker, "--shell=bash", str(path)] if checker else ["bash", "-n", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{where}:\n{done.stdout}{done.stderr}"


def test_no_script_interpolates_an_expression_a_pull_request_controls() -> None:
    """A file name or branch in ``${{ }}`` inside ``run:`` would be pasted into the shell; they go through
    ``env:`` instead."""
    for where, script in _github_scripts():
        assert "${{" not in script, where


def test_qfrun_is_installed_pinned_and_never_from_the_package_index() -> None:
    for path in (GITHUB, GITLAB):
        text = path.read_text(encoding="utf-8")
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        assert not re.search(r"pip install\s+(--\S+\s+)*qfrun\b", code), path.name
        assert re.search(r"QFRUN_REF: [0-9a-f]{40}\b", text), path.name  # a commit, not a branch
    workflow = _load(GITHUB)
    checkout = workflow["jobs"]["install"]["steps"][0]
    assert checkout["with"]["ref"] == "${{ env.QFRUN_REF }}"
    installs = [script for _, script in _github_scripts() if "pip install" in script]
    assert installs
    assert all("pip install wheel/*.whl" in script for script in installs)


def test_the_github_workflow_asks_for_least_privilege_and_gives_the_write_key_to_apply_only() -> None:
    workflow = _load(GITHUB)
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    assert {job_id: job["permissions"] for job_id, job in jobs.items()} == {
        "install": {"contents": "read"},
        "validate": {"contents": "read"},
        "plan": {"contents": "read", "pull-requests": "write"},
        "apply": {"contents": "read", "actions": "read", "pull-requests": "read"},
    }
    secrets = {
        job_id: set(re.findall(r"secrets\.(\w+)", yaml.safe_dump(job))) for job_id, job in jobs.items()
    }
    assert secrets == {
        "install": set(),
        "validate": set(),
        "plan": {"QFRUN_PLAN_ACCESS_KEY", "QFRUN_PLAN_SECRET_KEY"},
        "apply": {"QIANFAN_ACCESS_KEY", "QIANFAN_SECRET_KEY"},
    }
    assert jobs["apply"]["environment"] == "production"


def test_the_github_loop_plans_on_pull_requests_and_applies_the_saved_plan_on_main_one_at_a_time() -> None:
    workflow = _load(GITHUB)
    assert set(workflow[True]) == {"push", "pull_request", "workflow_dispatch"}  # YAML 1.1 reads on: as True
    jobs = workflow["jobs"]
    assert jobs["plan"]["if"] == "github.event_name == 'pull_request'"
    assert "refs/heads/main" in jobs["apply"]["if"]
    for job in ("plan", "apply"):  # a matrix over pipelines and targets
        assert set(jobs[job]["strategy"]["matrix"]) == {"pipeline", "target"}
        assert "vars.QFRUN_TARGETS" in jobs[job]["strategy"]["matrix"]["target"]
    assert jobs["apply"]["concurrency"]["cancel-in-progress"] is False
    assert "matrix.pipeline.key" in jobs["apply"]["concurrency"]["group"]
    plan = "\n".join(script for where, script in _github_scripts() if where.startswith("plan"))
    apply = "\n".join(script for where, script in _github_scripts() if where.startswith("apply"))
    assert "--out plan/plan.json" in plan
    assert "qfrun diff" in plan
    assert "<!-- qfrun-plan: $PIPELINE" in plan  # the sticky comment's hidden marker
    assert "--method PATCH" in plan
    assert "--plan plan/plan.json" in apply
    assert 'export QFRUN_STATE="bos:/' in plan
    assert 'export QFRUN_STATE="bos:/' in apply
    uploads = [
        step["with"]["name"] for step in jobs["apply"]["steps"] if "upload-artifact" in step.get("uses", "")
    ]
    assert uploads == ["report-${{ env.KEY }}"]


@pytest.mark.parametrize("path", [GITHUB, GITLAB])
def test_the_comment_fits_githubs_limit_with_the_plan_and_the_diff_side_by_side(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    plan_limit = int(re.search(r"PLAN_LIMIT: \"(\d+)\"", text).group(1)) if path == GITLAB else 50_000
    assert f"--markdown-limit {plan_limit}" in text or '--markdown-limit "$PLAN_LIMIT"' in text
    diff_limit = int(re.search(r"qfrun diff .*--markdown-limit (\d+)", text).group(1))
    marker_and_glue = 1_000  # "<!-- qfrun-plan: FILE TARGET -->" and a blank line
    assert plan_limit + diff_limit + marker_and_glue <= GITHUB_COMMENT_LIMIT


def test_the_gitlab_example_is_yaml_with_the_loops_jobs() -> None:
    pipeline = _load(GITLAB)
    assert pipeline["stages"] == ["build", "validate", "plan", "apply"]
    jobs = {name: job for name, job in pipeline.items() if isinstance(job, dict) and "script" in job}
    assert set(jobs) == {"qfrun-wheel", "validate", "plan", "apply"}
    assert "rules" not in jobs["validate"]  # every push
    assert len(pipeline["workflow"]["rules"]) == 3  # one pipeline per push, never a duplicate
    assert jobs["plan"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert "$CI_DEFAULT_BRANCH" in jobs["apply"]["rules"][0]["if"]
    assert jobs["apply"]["resource_group"] == "qfrun-apply"
    assert jobs["apply"]["artifacts"]["when"] == "always"
    scripts = dict(_gitlab_scripts())
    assert '--out "plan/$key.json"' in scripts["plan"]
    assert "qfrun diff" in scripts["plan"]
    assert '--plan "plan/$key.json"' in scripts["apply"]
    # The plan job reads the state with the read-only key; the write key never reaches it.
    assert jobs["plan"]["variables"]["QIANFAN_ACCESS_KEY"] == "$QFRUN_PLAN_ACCESS_KEY"


PIPELINES = sorted((EXAMPLES.parents[1] / "pipelines").glob("*.yaml"))


def test_every_example_pipelines_first_plan_comment_is_whole_and_within_the_plans_share(
    tmp_path: Path,
) -> None:
    """The largest comment CI posts for pipelines/*.yaml (a first plan: every stage with its parameters)
    keeps every detail, far within the 50,000 characters the workflows give the plan."""
    from runner.pipeline.spec import load_pipeline
    from runner.render.plan import as_markdown
    from runner.run.plan import make_plan
    from runner.state.file import StateFile

    sizes = {}
    for path in PIPELINES:
        pipeline = load_pipeline(path)
        state = StateFile.load(tmp_path / f"{pipeline.name}.state.json", pipeline.name)
        comment = as_markdown(make_plan(pipeline, state), limit=50_000)
        assert "<details><summary>Resolved parameters</summary>" in comment, path.name
        assert "cost-bearing" not in comment.lower() or not pipeline.platform_spec.local, path.name
        sizes[path.name] = len(comment)
    assert max(sizes.values()) < 10_000, sizes  # measured: 3,030 (quickstart.yaml)
