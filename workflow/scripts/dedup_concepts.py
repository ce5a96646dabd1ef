"""Snakemake adapter: rule dedup_concepts -> cec.concepts.dedup (prints the paper's counts)."""

import logging
from pathlib import Path

from snakemake.iocontainers import Snakemake

from cec.concepts.dedup import counts_line, write_concept_set
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0], threads=snakemake.threads):
    summary = write_concept_set(
        snakemake.input[0],
        Path(snakemake.output.concepts).parent,
        snakemake.wildcards.dataset,
        **snakemake.params.settings,
    )
    line = counts_line(summary)
    logging.info(line)
print(line, flush=True)
