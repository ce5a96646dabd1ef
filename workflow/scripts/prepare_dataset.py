"""Snakemake adapter: rule prepare_dataset -> cec.datasets.sources.prepare_configured."""

import logging
from pathlib import Path

from cec.datasets.sources import prepare_configured
from cec.plumbing.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    inputs = snakemake.input.keys()
    split_files = None
    if "split_train" in inputs:  # noqa: SIM118 - Namedlist `in` checks values
        split_files = {s: snakemake.input[f"split_{s}"] for s in ("train", "dev", "test")}
    report = prepare_configured(
        snakemake.params.settings,
        snakemake.params.mimic_dir,
        snakemake.input.codes,
        Path(snakemake.output.report).parent,  # codes.tsv is rule code_table's
        split_files=split_files,
        edin_split=snakemake.input.split_edin if "split_edin" in inputs else None,
    )
    logging.info("split sizes: %s", report["split"]["sizes"])
