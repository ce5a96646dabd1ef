"""Snakemake adapter: rule prepare_dataset -> cec.datasets.sources.Source.prepare."""

import logging
from pathlib import Path

from snakemake.iocontainers import Snakemake

from cec.datasets.sources import Source
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    source = Source(**snakemake.params.source)
    inputs = snakemake.input.keys()
    split_files = None
    if "split_train" in inputs:  # noqa: SIM118 - Namedlist `in` checks values
        split_files = {s: snakemake.input[f"split_{s}"] for s in ("train", "dev", "test")}
    report = source.prepare(
        snakemake.params.mimic_dir,
        snakemake.input.codes,
        Path(snakemake.output.report).parent,
        source.options(**snakemake.params.settings),
        split_files=split_files,
        edin_split=snakemake.input.split_edin if "split_edin" in inputs else None,
        write_codes=False,  # codes.tsv is rule code_table's
    )
    logging.info("split sizes: %s", report["split"]["sizes"])
