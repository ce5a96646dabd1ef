"""Benchmark: prompt tokens per note of a full code set (retrieve, then re-rank) against
the 50-code setting, from a finished run of both.

Every LLM job logs one `compute:` line (`cec.llm.token_meter`) whose `minimum_tokens` is
the least its prompts need (each note once plus every question or prompt segment once)
and whose `positions_computed` is what the decoder actually ran (padding included). This
script reads those lines for stage-1 scoring and CEC prediction of one split of each
dataset, divides by the split's notes and prints the two settings side by side; the goal
of issue 25 is at most 2x. Token counts do not depend on the CPU; no timing is printed.

    .venv/bin/snakemake --cores 2 all --configfile config/demo_mimic4.yaml
    .venv/bin/python benchmarks/bench_full_codes.py --full mimic4_icd10_full \
        --fifty mimic4_icd10_50 --backbone smollm2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cec.llm.token_meter import parse_compute


def compute_line(log: Path) -> dict:
    """The job's compute figures (the last such line: a retried job logs again)."""
    found = [
        f for line in log.read_text(encoding="utf-8").splitlines() if (f := parse_compute(line))
    ]
    if not found:
        raise SystemExit(f"{log}: no compute line (did the job finish?)")
    return found[-1]


def per_note(results: Path, dataset: str, backbone: str, split: str, seed: int) -> dict:
    notes = sum(1 for line in (results / f"data/{dataset}/{split}.jsonl").open() if line.strip())
    logs = {
        "stage 1 (concept questions)": results
        / f"logs/score_concepts/{dataset}/{backbone}/{split}.log",
        "stage 2 (CEC, k = 3..6)": results
        / f"logs/predict_labels/{dataset}/{backbone}/cec/seed{seed}/{split}.log",
    }
    out = {"notes": notes}
    for stage, log in logs.items():
        figures = compute_line(log)
        out[stage] = {
            "minimum": figures["minimum_tokens"] / notes,
            "computed": figures["positions_computed"] / notes,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--full", default="mimic4_icd10_full")
    parser.add_argument("--fifty", default="mimic4_icd10_50")
    parser.add_argument("--backbone", default="smollm2")
    parser.add_argument("--split", default="test")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    full = per_note(args.results, args.full, args.backbone, args.split, args.seed)
    fifty = per_note(args.results, args.fifty, args.backbone, args.split, args.seed)
    rerank = json.loads((args.results / f"metrics/{args.full}/retrieval_recall.json").read_text())
    print(f"prompt tokens per note, {args.split} split, {args.backbone}")
    print(f"  {args.fifty}: {fifty['notes']} notes, every code of the set")
    print(f"  {args.full}: {full['notes']} notes, {rerank['codes']} codes, re-ranking candidates")
    print(f"{'stage':32} {'50-code':>10} {'full':>10} {'ratio':>7}   (computed, padding incl.)")
    totals = {"50": 0.0, "full": 0.0}
    for stage in ("stage 1 (concept questions)", "stage 2 (CEC, k = 3..6)"):
        a, b = fifty[stage], full[stage]
        totals["50"] += a["minimum"]
        totals["full"] += b["minimum"]
        ratio = b["minimum"] / a["minimum"]
        print(
            f"{stage:32} {a['minimum']:10.0f} {b['minimum']:10.0f} {ratio:7.2f}"
            f"   ({a['computed']:.0f} vs {b['computed']:.0f})"
        )
    ratio = totals["full"] / totals["50"]
    print(f"{'both stages':32} {totals['50']:10.0f} {totals['full']:10.0f} {ratio:7.2f}")
    print(f"goal: at most 2x -> {'met' if ratio <= 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
