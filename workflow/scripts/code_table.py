"""Snakemake adapter: rule code_table -> cec.datasets.sources.Source.write_code_table
(no note is read)."""

from snakemake.iocontainers import Snakemake

from cec.datasets.sources import Source
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    Source(**snakemake.params.source).write_code_table(
        snakemake.params.mimic_dir,
        snakemake.input.codes,
        snakemake.output[0],
        **snakemake.params.settings,
    )
