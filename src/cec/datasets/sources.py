"""A dataset's config block -> the preparation of its MIMIC source.

The rules `prepare_dataset` and `code_table` serve MIMIC-III and MIMIC-IV datasets alike;
which reader a dataset needs, and which of its settings that reader takes, is decided
here once, so that the Snakemake adapters stay one call each.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def is_mimic4(settings: Mapping[str, Any]) -> bool:
    return settings.get("source", "mimic3") == "mimic4"


def prepare_configured(
    settings: Mapping[str, Any],
    mimic_dir: str | Path,
    codes: str | Path,
    out_dir: str | Path,
    *,
    split_files: Mapping[str, str | Path] | None = None,
    edin_split: str | Path | None = None,
) -> dict[str, Any]:
    """Prepare one dataset in place (codes.tsv is rule code_table's); the data report."""
    if is_mimic4(settings):
        from cec.datasets.mimic4 import Mimic4Options, prepare_mimic4_dataset

        opts = Mimic4Options(
            version=int(settings.get("icd_version", 9)),
            seed=int(settings["split_seed"]),
            fractions=settings["split_fractions"],
            literature_sizes=settings.get("literature_split_sizes"),
        )
        return prepare_mimic4_dataset(
            mimic_dir,
            codes,
            out_dir,
            opts,
            split_file=edin_split,
            split_files=split_files,
            write_codes=False,
        )
    from cec.datasets.mimic3 import PrepareOptions, prepare_dataset

    if edin_split is not None:
        raise ValueError("an Edin et al. split file is for a MIMIC-IV dataset")
    opts3 = PrepareOptions(
        seed=int(settings["split_seed"]),
        fractions=settings["split_fractions"],
        exclude_error_notes=bool(settings["exclude_error_notes"]),
        progress=True,
        code_format=settings["code_format"],
        literature_sizes=settings.get("literature_split_sizes"),
    )
    return prepare_dataset(mimic_dir, codes, out_dir, split_files, opts3, write_codes=False)


def write_configured_code_table(
    settings: Mapping[str, Any], mimic_dir: str | Path, codes: str | Path, out_path: str | Path
) -> dict[str, Any]:
    """codes.tsv of one dataset from its code list and its source's dictionaries."""
    if is_mimic4(settings):
        from cec.datasets.mimic4 import write_code_table as write_mimic4_code_table

        return write_mimic4_code_table(
            mimic_dir, codes, out_path, int(settings.get("icd_version", 9))
        )
    from cec.datasets.mimic3 import write_code_table

    return write_code_table(mimic_dir, codes, out_path, settings.get("code_format", "exact"))
