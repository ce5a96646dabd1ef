"""Snakemake adapter: rule code_table -> cec.prepare.write_code_table (no note is read)."""

from pathlib import Path

from cec.logs import job_log
from cec.prepare import write_code_table

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    write_code_table(
        Path(snakemake.input.d_icd_diagnoses).parent,
        snakemake.input.codes,
        snakemake.output[0],
        snakemake.params.code_format,
    )
