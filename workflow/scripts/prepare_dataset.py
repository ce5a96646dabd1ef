"""Snakemake adapter: rule prepare_dataset -> cec.prepare.prepare_dataset."""

import logging
from pathlib import Path

from cec.logs import job_log
from cec.prepare import DEFAULT_FRACTIONS, PrepareOptions, prepare_dataset

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    settings = snakemake.params.settings
    split_files = None
    if "split_train" in snakemake.input.keys():  # noqa: SIM118 - Namedlist `in` checks values
        split_files = {s: snakemake.input[f"split_{s}"] for s in ("train", "dev", "test")}
    opts = PrepareOptions(
        seed=int(settings.get("split_seed", 13)),
        fractions=settings.get("split_fractions", DEFAULT_FRACTIONS),
        exclude_error_notes=bool(settings.get("exclude_error_notes", True)),
        progress=True,
        code_format=settings.get("code_format", "exact"),
        literature_sizes=settings.get("literature_split_sizes"),
    )
    report = prepare_dataset(
        snakemake.params.mimic_dir,
        snakemake.input.codes,
        Path(snakemake.output.report).parent,
        split_files,
        opts,
        write_codes=False,  # rule code_table writes codes.tsv from the dictionaries alone
    )
    logging.info("split sizes: %s", report["split"]["sizes"])
