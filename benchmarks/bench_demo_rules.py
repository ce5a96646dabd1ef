"""Benchmark: every LLM job of a finished run against the compute it needed.

Each LLM job logs one `compute:` line (`cec.llm.token_meter`): token positions its
decoder computed (padding included), the minimum (each note once plus each question or
prompt segment once; per step for training), its time in the model loop, dtype and
threads. This script reads those lines from `results/logs/`, the job's wall time from
`results/benchmarks/`, and measures here a plain causal forward of 512-token chunks at the
same dtype and thread count; it prints per job and per rule:

  positions / minimum   tokens computed over the minimum
  loop / plain          the job's model loop over a plain forward of the minimum
  wall / plain          the whole job (start-up, model load, reading, writing) likewise

and where the rest of the time goes. For training, the plain forward is the floor of the
forward half only: a LoRA step also runs the backward pass and the optimizer (about 2-3x a
forward), so its ratios are reported, not held to the scoring goal of 1.5.

Run it on the machine, and under the environment, the run used (e.g. the same
ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA), after `make demo`; `make bench-demo` does both.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_label_scoring import cpu_description, plain_forward_seconds  # noqa: E402

from cec.llm.backbones import load_model, torch_dtype  # noqa: E402
from cec.llm.token_meter import parse_compute  # noqa: E402

# rule folder under results/logs -> index of the backbone in the log's relative path
# (dataset first); train_concept_model names its log after the backbone
LLM_RULES = {
    "train_concept_model": None,
    "score_concepts": 1,
    "train_label_model": 1,
    "predict_labels": 1,
}


@dataclass
class Job:
    rule: str
    name: str
    backbone: str
    figures: dict[str, Any]
    wall: float | None


def find_jobs(results: Path) -> list[Job]:
    jobs = []
    for rule, at in LLM_RULES.items():
        for log in sorted((results / "logs" / rule).rglob("*.log")):
            rel = log.relative_to(results / "logs" / rule)
            figures = None
            for line in log.read_text(errors="replace").splitlines():
                figures = parse_compute(line) or figures
            if figures is None:
                print(f"warning: no compute line in {log}", file=sys.stderr)
                continue
            backbone = rel.stem if at is None else rel.parts[at]
            bench = (results / "benchmarks" / rule / rel).with_suffix(".tsv")
            wall = None
            if bench.exists():
                rows = list(csv.DictReader(bench.open(), delimiter="\t"))
                wall = float(rows[-1]["s"]) if rows else None
            jobs.append(Job(rule, str(rel.with_suffix("")), backbone, figures, wall))
    return jobs


def plain_rate(model_dir: Path, dtype: str, threads: int, chunks: int) -> float:
    """Tokens per second of plain causal forwards over 512-token chunks (after a warm-up)."""
    torch.set_num_threads(threads)
    model, _ = load_model(model_dir)
    model = model.to(torch_dtype(dtype)).eval()
    plain_forward_seconds(model, 512)  # warm-up: first-call allocations, kernel choice
    return chunks * 512 / plain_forward_seconds(model, chunks * 512)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--chunks", type=int, default=8, help="512-token forwards timed")
    args = parser.parse_args()
    jobs = find_jobs(args.results)
    if not jobs:
        sys.exit(f"no LLM job logs with compute lines under {args.results / 'logs'}")
    rates: dict[tuple[str, str, int], float] = {}
    for job in jobs:
        key = (job.backbone, job.figures["dtype"], int(job.figures["threads"]))
        if key not in rates:
            rates[key] = plain_rate(args.results / "models" / key[0], key[1], key[2], args.chunks)
    print(f"CPU: {cpu_description()}")
    for (backbone, dtype, threads), rate in sorted(rates.items()):
        print(f"plain forward, {backbone} {dtype}, {threads} thread(s): {rate:.0f} tokens/s")
    header = (
        f"{'rule':<20}{'job':<46}{'dtype':>9}{'minimum':>9}{'pos/min':>8}"
        f"{'loop s':>8}{'wall s':>8}{'plain s':>8}{'loop/pl':>8}{'wall/pl':>8}"
    )
    print(header)
    per_rule: dict[str, list[float]] = defaultdict(lambda: [0.0] * 6)
    for job in jobs:
        f = job.figures
        rate = rates[(job.backbone, f["dtype"], int(f["threads"]))]
        plain = f["minimum_tokens"] / rate
        wall = job.wall if job.wall is not None else float("nan")
        print(
            f"{job.rule:<20}{job.name:<46}{f['dtype']:>9}{f['minimum_tokens']:>9}"
            f"{f['positions_computed'] / max(1, f['minimum_tokens']):>8.2f}"
            f"{f['loop_seconds']:>8.1f}{wall:>8.1f}{plain:>8.1f}"
            f"{f['loop_seconds'] / plain:>8.2f}{wall / plain:>8.2f}"
        )
        total = per_rule[job.rule]
        for i, value in enumerate(
            (f["positions_computed"], f["minimum_tokens"], f["loop_seconds"], wall, plain, 1)
        ):
            total[i] += value
    print("\nper rule (sums over its jobs)")
    print(
        f"{'rule':<20}{'jobs':>5}{'pos/min':>8}{'loop/pl':>8}{'wall/pl':>8}{'outside loop s':>15}"
    )
    for rule, (pos, minimum, loop, wall, plain, n) in per_rule.items():
        print(
            f"{rule:<20}{int(n):>5}{pos / minimum:>8.2f}{loop / plain:>8.2f}"
            f"{wall / plain:>8.2f}{wall - loop:>15.1f}"
        )
    walls = [j.wall for j in jobs if j.wall is not None]
    loops = sum(j.figures["loop_seconds"] for j in jobs if j.wall is not None)
    print(
        f"\nall LLM jobs: {sum(walls):.0f} s of job time, {loops:.0f} s in model loops, "
        f"{sum(walls) - loops:.0f} s outside them (interpreter start-up, imports, model "
        f"load, reading inputs, writing outputs: {(sum(walls) - loops) / len(walls):.1f} s "
        "per job)"
    )


if __name__ == "__main__":
    main()
