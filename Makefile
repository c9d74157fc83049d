# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
# Both create the virtual environment first when it is missing or out of date.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.bootstrapped
DEMO_OUT ?= demo_output

# Tests and tools never talk to other machines; each ROS test picks its own domain id.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

.PHONY: all venv demo test lint bench clean render-env

all: test

$(STAMP): requirements.txt setup.py scripts/bootstrap.sh
	PYTHON=$(PYTHON) scripts/bootstrap.sh $(VENV)
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/vision-banana demo --out $(DEMO_OUT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python scripts/check_structure.py

test: lint
	$(BIN)/python -m pytest

# The photoreal renderer's own environment (Blender as a Python module, about 1 GB).
render-env: .venv-render/.bootstrapped

.venv-render/.bootstrapped: requirements-render.txt scripts/bootstrap_render.sh
	PYTHON=$(PYTHON) scripts/bootstrap_render.sh .venv-render
	touch $@

bench: $(STAMP)
	$(BIN)/vision-banana bench --out bench_results.json

clean:
	rm -rf $(VENV) .venv-render $(DEMO_OUT) bench_results.json .pytest_cache .ruff_cache build *.egg-info
