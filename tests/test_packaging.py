"""The package as users get it: a wheel with the schemas inside, a ``qfrun`` script, a light import path."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
HEAVY = ("torch", "transformers", "llmcompressor", "safetensors", "sentencepiece")


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_virtualenv_and_ships_the_schemas_and_the_starter(
    tmp_path: Path,
) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("qfrun-*.whl"))
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    # as a user's fresh virtualenv: a checkout on PYTHONPATH (with the qfrun.egg-info that building the wheel
    # leaves there) would make pip find qfrun installed already and skip the wheel, script and all
    clean = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True, env=clean
    )
    schema = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "qfrun"), "schema"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean,
    )
    assert json.loads(schema.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validate = subprocess.run(
        [
            str(tmp_path / "venv" / "bin" / "qfrun"),
            "validate",
            str(ROOT / "pipelines" / "qianfan-release.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env=clean,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    # the built-in benchmarks are package data (a link to data/benchmarks): their names validate from it
    benchmarks = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "qfrun"), "validate", str(ROOT / "pipelines" / "benchmarks.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env=clean,
    )
    assert benchmarks.returncode == 0, benchmarks.stdout + benchmarks.stderr
    # the HTML report's templates are package data: a report written from outside the checkout finds them
    report = subprocess.run(
        [
            str(tmp_path / "venv" / "bin" / "qfrun"),
            "report",
            str(ROOT / "pipelines" / "qianfan-release.yaml"),
            "--state",
            str(tmp_path / "none.state.json"),
            "--out",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env=clean,
    )
    assert report.returncode == 0, report.stdout + report.stderr
    assert "<h2>Stages</h2>" in (tmp_path / "report" / "report.html").read_text()

    # the starter ships too: its links to the demo model and data became files in the wheel
    for args in (["init", "project"], ["validate", "project/pipeline.yaml"]):
        done = subprocess.run(
            [str(tmp_path / "venv" / "bin" / "qfrun"), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=False,
            env=clean,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "project" / "models" / "tiny-adder" / "model.safetensors").stat().st_size > 4_000_000


def test_every_file_of_the_report_templates_is_package_data() -> None:
    """A template or style sheet the package_data patterns miss would be absent from the wheel."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    folder = ROOT / "runner" / "render"
    patterns = config["options.package_data"]["runner.render"].split()
    shipped = {path for pattern in patterns for path in folder.glob(pattern)}
    assert set((folder / "templates").iterdir()) <= shipped
    assert (folder / "templates" / "report.html.j2") in shipped


def test_validate_and_plan_never_import_the_model_runtime(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from runner.cli import main\n"
        "for argv in (['validate', sys.argv[1]], ['plan', sys.argv[1]]):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exit:\n"
        "        assert not exit.code, exit.code\n"
        f"print(sorted(set(sys.modules) & set({HEAVY!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "pipelines" / "qianfan-release.yaml")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_every_package_of_the_runner_is_listed_for_the_wheel() -> None:
    """setup.cfg names packages one by one, so a new package left out would be missing from the wheel."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    packages = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "runner").rglob("__init__.py")
    }

    assert packages - listed == set()
