"""``qfrun validate`` and ``qfrun plan`` stay light: what a pre-commit hook or an editor on save runs loads
no model runtime, no template engine, no HTTP stack and no platform server (issue 17, P1).

Each command runs in a fresh interpreter, as a user runs it, and the test reads what it imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runner.testing.pipelines import write

ROOT = Path(__file__).resolve().parents[2]
# Never on either path: the model runtime, the template engine (expr_quick reads and evaluates the common
# expressions), the HTTP stack, the local platform's server, the platform client and the executor.
NEITHER = (
    "torch",
    "transformers",
    "jinja2",
    "httpx",
    "rich",
    "fastapi",
    "uvicorn",
    "jsonschema",
    "runner.local",
    "runner.platform.client",
    "runner.platform.bos",
    "runner.run.executor",
    "runner.pipeline.schema_errors",
)
# Not on validate's path either: logging (it logs nothing), the graph library, the platform layer, what a
# stage's run writes; click (a plain command line is read without it: runner.commands.validating), the
# matrix expander (the file has no matrix stage) and hashing (a plan's and a run's).
NOT_VALIDATE = (
    "click",
    "runner.commands.group",
    "runner.pipeline.matrix",
    "runner.content_hash",
    "logging",
    "networkx",
    "runner.platform",
    "runner.stages.scoresheet",
    "runner.stages.scoresheet_html",
    "runner.stages.eval_samples",
    "runner.atomic",
    "runner.run",
    "runner.state",
)


def imported(tmp_path: Path, *args: str) -> list[str]:
    """The modules a fresh ``qfrun ARGS`` loaded (it must succeed)."""
    code = (
        "import json, sys\nfrom runner.cli import main\n"
        f"try:\n    main({list(args)!r})\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return modules


def loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted({name for name in names for m in modules if m == name or m.startswith(name + ".")})


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_validate_and_plan_load_no_runtime_template_engine_http_stack_or_server(
    tmp_path: Path, command: str
) -> None:
    modules = imported(tmp_path, command, str(write(tmp_path)))
    assert "runner.pipeline.spec" in modules  # the command did its work
    assert loaded(modules, NEITHER) == []


def test_validate_loads_neither_the_graph_library_nor_the_platform_nor_a_run_s_modules(
    tmp_path: Path,
) -> None:
    modules = imported(tmp_path, "validate", str(write(tmp_path)))
    assert loaded(modules, NOT_VALIDATE) == []
