"""Which MIMIC a dataset reads, decided once.

A dataset's config block says `source: mimic3` (the default) or `source: mimic4` with an
`icd_version`; `cec prepare` says `--mimic-dir` or `--mimic4-dir`. Both become a `Source`,
and everything that differs between the two releases hangs off it: the config block
that locates the tables (`mimic` or `mimic4`), the tables and the folders they sit in, the
options a dataset may set, and the functions that read the release into a dataset or a
code table. The rules (`rules/common.smk`), the Snakemake adapters and the CLI ask the
`Source`; none of them tests the release's name itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cec.datasets.mimic3 import PrepareOptions, prepare_dataset, write_code_list, write_code_table
from cec.datasets.mimic4 import Mimic4Options, prepare_mimic4_dataset
from cec.datasets.mimic4 import write_code_list as write_mimic4_code_list
from cec.datasets.mimic4 import write_code_table as write_mimic4_code_table
from cec.datasets.splits import SPLITS
from cec.readers import mimic3 as mimic3_reader
from cec.readers import mimic4 as mimic4_reader

SourceName = Literal["mimic3", "mimic4"]


@dataclass(frozen=True)
class Source:
    """One MIMIC release as a dataset's source: its name and the ICD version it reads."""

    name: SourceName = "mimic3"
    icd_version: int = 9

    def __post_init__(self) -> None:
        if self.name not in ("mimic3", "mimic4"):
            raise ValueError(f"source must be mimic3 or mimic4, got {self.name!r}")
        if self.icd_version not in ((9,) if self.name == "mimic3" else (9, 10)):
            raise ValueError(f"{self.name} has no ICD-{self.icd_version} codes")

    @classmethod
    def of(cls, dataset: Mapping[str, Any]) -> Source:
        """The source of a dataset's config block (`source`, `icd_version`)."""
        name = dataset.get("source", "mimic3")
        return cls(name, int(dataset.get("icd_version", 9)) if name == "mimic4" else 9)

    @property
    def config_block(self) -> str:
        """The config block that says where this release's tables are (`dir`) or how the
        synthetic one is made."""
        return "mimic" if self.name == "mimic3" else "mimic4"

    @property
    def tables(self) -> dict[str, str]:
        """Every table a dataset reads, with the folder it sits in under the release's
        root ('' for MIMIC-III's flat layout)."""
        if self.name == "mimic3":
            return dict.fromkeys(mimic3_reader.TABLES, "")
        return {name: folder for name, (folder, _) in mimic4_reader.TABLES.items()}

    @property
    def counting_tables(self) -> tuple[str, ...]:
        """The tables a counted code list reads (rule count_codes): the admissions' codes,
        and the discharge notes' admission ids (both count over the admissions that have
        one: caml-mimic's full label set, `cec.datasets.mimic3.write_code_list`; Edin et
        al., `cec.datasets.mimic4.write_code_list`)."""
        if self.name == "mimic3":
            return ("DIAGNOSES_ICD", "PROCEDURES_ICD", "NOTEEVENTS")
        return ("diagnoses_icd", "procedures_icd", "discharge")

    @property
    def dictionaries(self) -> tuple[str, str]:
        """The d_icd tables that title the codes (rule code_table)."""
        if self.name == "mimic3":
            return ("D_ICD_DIAGNOSES", "D_ICD_PROCEDURES")
        return ("d_icd_diagnoses", "d_icd_procedures")

    def options(self, **values: Any) -> PrepareOptions | Mimic4Options:
        """This release's dataset options from keyword values (None leaves a default; an
        option the release does not have is refused by its options class)."""
        given = {key: value for key, value in values.items() if value is not None}
        if self.name == "mimic3":
            return PrepareOptions(**given)
        return Mimic4Options(version=self.icd_version, **given)

    def option_values(self, dataset: Mapping[str, Any]) -> dict[str, Any]:
        """The options a dataset's config block sets, as `options`' keywords (see the
        config schema): the MIMIC-III-only ones only for a MIMIC-III dataset."""
        sizes = dataset.get("literature_split_sizes")
        values: dict[str, Any] = {
            "seed": int(dataset["split_seed"]),
            # in split order, whatever the config's: the report shows them
            "fractions": {s: dataset["split_fractions"][s] for s in SPLITS},
            "literature_sizes": None if sizes is None else {s: int(sizes[s]) for s in SPLITS},
        }
        if self.name == "mimic3":
            values["exclude_error_notes"] = bool(dataset["exclude_error_notes"])
            values["code_format"] = dataset["code_format"]
        return values

    def prepare(
        self,
        mimic_dir: str | Path,
        codes: str | Path,
        out_dir: str | Path,
        options: PrepareOptions | Mimic4Options,
        *,
        split_files: Mapping[str, str | Path] | None = None,
        edin_split: str | Path | None = None,
        write_codes: bool = True,
    ) -> dict[str, Any]:
        """Build one dataset folder from this release; the data report. Without
        `write_codes`, codes.tsv is left to `write_code_table` (rule code_table)."""
        if self.name == "mimic4":
            assert isinstance(options, Mimic4Options)
            return prepare_mimic4_dataset(
                mimic_dir,
                codes,
                out_dir,
                options,
                split_file=edin_split,
                split_files=split_files,
                write_codes=write_codes,
            )
        if edin_split is not None:
            raise ValueError("an Edin et al. split file is for a MIMIC-IV dataset")
        assert isinstance(options, PrepareOptions)
        return prepare_dataset(
            mimic_dir, codes, out_dir, split_files, options, write_codes=write_codes
        )

    def write_code_list(
        self, mimic_dir: str | Path, out_path: str | Path, **settings: Any
    ) -> list[tuple[str, int]]:
        """Count this release's code list (rule count_codes) with the settings
        `cec.job_params.count_codes` gives; the (code, count) pairs written. Reads no note
        text into the list, only which admissions have a discharge note."""
        if self.name == "mimic4":
            return write_mimic4_code_list(mimic_dir, self.icd_version, out_path, **settings)
        return write_code_list(mimic_dir, out_path, **settings)

    def write_code_table(
        self,
        mimic_dir: str | Path,
        codes: str | Path,
        out_path: str | Path,
        code_format: str = "exact",
    ) -> dict[str, Any]:
        """codes.tsv of one dataset from its code list and this release's dictionaries;
        reads no note."""
        if self.name == "mimic4":
            return write_mimic4_code_table(mimic_dir, codes, out_path, self.icd_version)
        return write_code_table(mimic_dir, codes, out_path, code_format)


def in_table_order(datasets: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Dataset names in the order the tables and the summary show them: MIMIC-III before
    MIMIC-IV, ICD-9 before ICD-10, then by name (mimic3_50 before rare50, as in the
    paper). Fixed by the datasets themselves, not by the order of the config's keys, so
    that a rewritten config file changes no table."""

    def key(name: str) -> tuple[str, int, str]:
        source = Source.of(datasets[name])
        return (source.name, source.icd_version, name)

    return sorted(datasets, key=key)
