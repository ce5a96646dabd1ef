"""Snakemake adapter: rule make_table -> cec.evaluation.tables (Tables 1-4)."""

from pathlib import Path

import yaml
from snakemake.iocontainers import Snakemake

from cec.evaluation import tables
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    text = tables.build_table(
        snakemake.wildcards.table,
        snakemake.params.table,  # only what this table reads
        tables.metrics_by_cell(snakemake.input.metrics),
        yaml.safe_load(Path(snakemake.input.published).read_text()),
    )
    tables.write(snakemake.output[0], text)
