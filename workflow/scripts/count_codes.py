"""Snakemake adapter: rule count_codes -> cec.datasets.mimic4.write_code_list (hosp/ only)."""

import logging

from cec.datasets.mimic4 import write_code_list
from cec.plumbing.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    settings = snakemake.params.settings
    spec = settings["codes"]
    chosen = write_code_list(
        snakemake.params.mimic_dir,
        int(settings.get("icd_version", 9)),
        snakemake.output[0],
        top=spec.get("top"),
        min_count=int(spec.get("min_count", 1)),
        progress=True,
    )
    logging.info("%d codes listed; the last carried by %d admissions", len(chosen), chosen[-1][1])
