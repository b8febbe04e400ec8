# One command for everything a change must pass: `make check` (lint, types, tests).
PYTHON ?= .venv/bin/python
VENV ?= .venv

.PHONY: install fmt lint typecheck test test-fast check bench models serve clean

install:  ## a development environment in .venv (torch first: the CPU build, or pip pulls CUDA wheels)
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet torch==2.13.0
	echo "torch==2.13.0" > $(VENV)/constraints.txt
	$(PYTHON) -m pip install --quiet -c $(VENV)/constraints.txt -e ".[local,dev]"

fmt:
	$(PYTHON) -m ruff format runner tests bench scripts
	$(PYTHON) -m ruff check --fix runner tests bench scripts

lint:
	$(PYTHON) -m ruff format --check runner tests bench scripts
	$(PYTHON) -m ruff check runner tests bench scripts

typecheck:
	$(PYTHON) -m mypy

test:  ## the README's test command
	$(PYTHON) -m pytest -q

test-fast:  ## without the tests that load the model runtime or start processes
	$(PYTHON) -m pytest -q -m "not slow"

check: lint typecheck test

bench:
	$(PYTHON) bench/runner_bench.py

models:  ## retrain the committed demo models and data (deterministic; about 3 minutes on 2 cores)
	$(PYTHON) scripts/make_demo_models.py

serve:
	$(PYTHON) -m runner platform serve

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache bench/out pipelines/.qfrun
