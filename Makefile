# Every target builds its own virtual environment, so a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test lint proto proto-check demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

lint: $(STAMP)
	$(PY) -m ruff check controller agent opensweep tests bench
	$(PY) -m mypy controller agent opensweep

proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. protos/opensweep/v1/*.proto

demo: $(STAMP)
	$(PY) examples/demo.py

# The benchmarks' anchors (W&B sweeps, Optuna, torch) live in their own venv so the test venv
# stays clean. `make bench BENCH_ARGS=--quick` for a fast check; results in bench/results/.
BENCH_VENV ?= .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_ARGS ?=

# Optuna's GPSampler needs torch; 2.13.0 is the CPU build on the machine's disk, asked for on its
# own first so that nothing later pulls a multi-GB CUDA build from PyPI.
$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install -q --upgrade pip
	$(BENCH_PY) -m pip install -q torch==2.13.0
	$(BENCH_PY) -m pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) build *.egg-info
