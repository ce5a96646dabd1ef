"""Snakemake adapter: rule code_table -> cec.datasets.sources.write_configured_code_table
(no note is read)."""

from cec.datasets.sources import write_configured_code_table
from cec.plumbing.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    write_configured_code_table(
        snakemake.params.settings,
        snakemake.params.mimic_dir,
        snakemake.input.codes,
        snakemake.output[0],
    )
