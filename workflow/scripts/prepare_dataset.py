"""Snakemake adapter: rule prepare_dataset -> the preparation of the dataset's source."""

import logging
from pathlib import Path

from cec.logs import job_log

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with job_log(snakemake.log[0]):
    settings = snakemake.params.settings
    inputs = snakemake.input.keys()
    split_files = None
    if "split_train" in inputs:  # noqa: SIM118 - Namedlist `in` checks values
        split_files = {s: snakemake.input[f"split_{s}"] for s in ("train", "dev", "test")}
    out_dir = Path(snakemake.output.report).parent
    if settings.get("source", "mimic3") == "mimic4":
        from cec.prepare_mimic4 import Mimic4Options, prepare_mimic4_dataset

        opts = Mimic4Options(
            version=int(settings.get("icd_version", 9)),
            seed=int(settings["split_seed"]),
            fractions=settings["split_fractions"],
            literature_sizes=settings.get("literature_split_sizes"),
        )
        report = prepare_mimic4_dataset(
            snakemake.params.mimic_dir,
            snakemake.input.codes,
            out_dir,
            opts,
            split_file=snakemake.input.split_edin if "split_edin" in inputs else None,
            split_files=split_files,
            write_codes=False,  # rule code_table writes codes.tsv from the dictionaries alone
        )
    else:
        from cec.prepare import PrepareOptions, prepare_dataset

        opts = PrepareOptions(
            seed=int(settings["split_seed"]),
            fractions=settings["split_fractions"],
            exclude_error_notes=bool(settings["exclude_error_notes"]),
            progress=True,
            code_format=settings["code_format"],
            literature_sizes=settings.get("literature_split_sizes"),
        )
        report = prepare_dataset(
            snakemake.params.mimic_dir,
            snakemake.input.codes,
            out_dir,
            split_files,
            opts,
            write_codes=False,  # rule code_table writes codes.tsv from the dictionaries alone
        )
    logging.info("split sizes: %s", report["split"]["sizes"])
