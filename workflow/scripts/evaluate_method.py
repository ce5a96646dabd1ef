"""Snakemake adapter: rule evaluate_method -> cec.evaluation.run.evaluate_method."""

import logging

from snakemake.iocontainers import Snakemake

from cec.evaluation.run import evaluate_method
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    seeds = [int(s) for s in snakemake.params.seeds]
    result = evaluate_method(
        snakemake.input.thresholds,
        dict(zip(seeds, snakemake.input.test, strict=True)),
        snakemake.input.test_gold,
        snakemake.input.codes,
        snakemake.output[0],
        **snakemake.params.settings,
        unlisted=snakemake.params.unlisted,
    )
    logging.info(
        "%s: micro F1 %.4f at threshold %s (at 0.5: %.4f), macro AUC %s, %d seeds",
        snakemake.wildcards.method,
        result["f1_micro"],
        result["threshold"],
        result["at_0_5"]["f1_micro"],
        result["auc_macro"],
        result["n_seeds"],
    )
