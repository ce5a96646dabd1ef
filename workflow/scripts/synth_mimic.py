"""Snakemake adapter: rule synth_mimic -> cec.synth.mimic3_writer.write_synthetic_mimic."""

import logging

from snakemake.iocontainers import Snakemake

from cec.plumbing.logs import job_log
from cec.synth.mimic3_writer import write_synthetic_mimic

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    manifest = write_synthetic_mimic(
        snakemake.params.out_dir, **snakemake.params.settings, progress=True
    )
    logging.info("synthetic MIMIC-III written: %s", manifest)
