"""Snakemake adapter: rule synth_mimic4 -> cec.synth.mimic4_writer.write_synthetic_mimic4."""

import logging

from cec.plumbing.logs import job_log
from cec.synth.mimic4_writer import write_synthetic_mimic4

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    settings = snakemake.params.settings
    manifest = write_synthetic_mimic4(
        snakemake.params.out_dir,
        int(settings["admissions"]),
        int(settings["seed"]),
        icd9_fraction=float(settings["icd9_fraction"]),
        progress=True,
    )
    logging.info(
        "synthetic MIMIC-IV written: %d admissions, by ICD version %s",
        manifest["admissions"],
        manifest["admissions_by_version"],
    )
