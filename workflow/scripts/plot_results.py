"""Snakemake adapter: rule plot_results -> cec.evaluation.run figures."""

import json
from pathlib import Path

from snakemake.iocontainers import Snakemake

from cec.evaluation.run import plot_loss_curves, plot_per_code_f1, plot_pr_curves
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    w, p = snakemake.wildcards, snakemake.params
    where = f"{w.dataset}, {w.backbone}"
    preds = dict(zip(p.methods, snakemake.input.test, strict=True))
    plot_pr_curves(
        preds,
        snakemake.input.gold,
        snakemake.input.codes,
        snakemake.output.pr,
        f"test, {where}",
        p.unlisted,
    )
    cec = json.loads(Path(snakemake.input.cec_metrics).read_text())
    threshold = cec["per_seed"][str(cec["seeds"][0])]["threshold"]
    plot_per_code_f1(
        preds[p.cec_method],
        snakemake.input.gold,
        snakemake.input.train,
        snakemake.input.codes,
        threshold,
        snakemake.output.per_code,
        f"{p.cec_method}, test, {where}",
        p.unlisted,
    )
    plot_loss_curves(snakemake.input.adapters, snakemake.output.loss, f"training, {where}")
