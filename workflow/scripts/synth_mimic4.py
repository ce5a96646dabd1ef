"""Snakemake adapter: rule synth_mimic4 -> cec.synth.mimic4_writer.write_synthetic_mimic4."""

import logging

from snakemake.iocontainers import Snakemake

from cec.plumbing.logs import job_log
from cec.synth.mimic4_writer import write_synthetic_mimic4

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    manifest = write_synthetic_mimic4(
        snakemake.params.out_dir, **snakemake.params.settings, progress=True
    )
    logging.info(
        "synthetic MIMIC-IV written: %d admissions, by ICD version %s",
        manifest["admissions"],
        manifest["admissions_by_version"],
    )
