"""Snakemake adapter: rule count_codes -> cec.datasets.sources.Source.write_code_list (codes,
and which admissions have a discharge note: no note text is kept)."""

import logging

from snakemake.iocontainers import Snakemake

from cec.datasets.sources import Source
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    chosen = Source(**snakemake.params.source).write_code_list(
        snakemake.params.mimic_dir,
        snakemake.output[0],
        **snakemake.params.settings,
        progress=True,
    )
    logging.info("%d codes listed; the last carried by %d admissions", len(chosen), chosen[-1][1])
