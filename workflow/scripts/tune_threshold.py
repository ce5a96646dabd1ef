"""Snakemake adapter: rule tune_threshold -> cec.evaluation.run.tune_thresholds."""

import logging

from snakemake.iocontainers import Snakemake

from cec.evaluation.run import tune_thresholds
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    seeds = [int(s) for s in snakemake.params.seeds]
    result = tune_thresholds(
        dict(zip(seeds, snakemake.input.dev, strict=True)),
        snakemake.input.dev_gold,
        snakemake.input.codes,
        snakemake.output[0],
        unlisted=snakemake.params.unlisted,
    )
    logging.info("%s: thresholds %s", snakemake.wildcards.method, result["per_seed"])
