"""Snakemake adapter: rule prepare_dataset -> cec.prepare.prepare_dataset."""

import logging
import sys
from pathlib import Path

from cec.prepare import DEFAULT_FRACTIONS, PrepareOptions, prepare_dataset

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with open(snakemake.log[0], "w") as log_file:
    sys.stderr = log_file
    logging.basicConfig(
        stream=log_file,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = snakemake.params.settings
    split_files = None
    if "split_train" in snakemake.input.keys():  # noqa: SIM118 - Namedlist `in` checks values
        split_files = {s: snakemake.input[f"split_{s}"] for s in ("train", "dev", "test")}
    opts = PrepareOptions(
        seed=int(settings.get("split_seed", 13)),
        fractions=settings.get("split_fractions", DEFAULT_FRACTIONS),
        exclude_error_notes=bool(settings.get("exclude_error_notes", True)),
        progress=True,
    )
    report = prepare_dataset(
        snakemake.params.mimic_dir,
        snakemake.input.codes,
        Path(snakemake.output.report).parent,
        split_files,
        opts,
    )
    logging.info("split sizes: %s", report["split"]["sizes"])
