"""Snakemake adapter: rule synth_mimic -> cec.synth.writer.write_synthetic_mimic."""

import logging

from cec.plumbing.logs import job_log
from cec.synth.writer import write_synthetic_mimic

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    settings = snakemake.params.settings
    top50 = settings.get("top50_split")
    rare = settings.get("rare50_split")
    manifest = write_synthetic_mimic(
        snakemake.params.out_dir,
        int(settings["admissions"]),
        int(settings["seed"]),
        top50_sizes=tuple(top50) if top50 else None,
        rare_sizes=tuple(rare) if rare else None,
        other_notes_per_admission=float(settings.get("other_notes_per_admission", 30)),
        progress=True,
    )
    logging.info("synthetic MIMIC-III written: %s", manifest)
