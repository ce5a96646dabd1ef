"""Snakemake adapter: rule count_codes -> cec.datasets.mimic4.write_code_list (codes, and
which admissions have discharge rows: no note text is kept)."""

import logging

from snakemake.iocontainers import Snakemake

from cec.datasets.mimic4 import write_code_list
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    chosen = write_code_list(
        snakemake.params.mimic_dir,
        out_path=snakemake.output[0],
        **snakemake.params.settings,
        progress=True,
    )
    logging.info("%d codes listed; the last carried by %d admissions", len(chosen), chosen[-1][1])
