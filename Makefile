# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format bench-data clean

# One install step. torch is pinned (pyproject.toml) to 2.13.0 so that a CPU machine
# takes the local CPU wheel and never pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0" -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores 2 all

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow benchmarks tools
	$(BIN)/ruff format --check src tests workflow benchmarks tools
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff format src tests workflow benchmarks tools
	$(BIN)/snakefmt Snakefile rules

bench-data: $(STAMP)
	$(BIN)/python benchmarks/bench_data.py --admissions 2000

clean:
	rm -rf results .snakemake
