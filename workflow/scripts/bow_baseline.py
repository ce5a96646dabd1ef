"""Snakemake adapter: rule bow_baseline -> cec.baseline.bow.run_bow_baseline."""

import logging
from pathlib import Path

from snakemake.iocontainers import Snakemake

from cec.baseline.bow import run_bow_baseline
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    summary = run_bow_baseline(
        Path(snakemake.input.train).parent,
        snakemake.input.codes,
        Path(snakemake.output[0]).parent,
        **snakemake.params.settings,
        seed=int(snakemake.wildcards.seed),
        predict=(snakemake.wildcards.split,),
    )
    logging.info("bag-of-words baseline: %s", summary)
