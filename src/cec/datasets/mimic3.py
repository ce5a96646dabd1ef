"""Raw MIMIC-III tables -> one dataset (train/dev/test JSONL, codes.tsv, data report).

Faithful to caml-mimic / KEPT / Edin et al.: discharge summaries (reports and addenda)
joined per admission; codes read as strings and dotted by their source table; duplicate
codes of an admission removed; labels restricted to the dataset's code list; admissions
without a listed code dropped. Everything dropped is counted with its reason in
`data_report.json`, so a user can reconcile our counts with the papers'.

The tables are read by `cec.readers.mimic3` into `Admissions`, the form both sources
share; `cec.datasets.assembly.assemble` splits, counts and writes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cec.datasets.assembly import Admissions, SplitPlan, assemble, check_dataset_output
from cec.datasets.splits import load_split_files, patient_split
from cec.icd.code_lists import LabelCode, read_code_list
from cec.icd.codes import Kind, caml_procedure, undot
from cec.icd.icd9 import Icd9Hierarchy
from cec.plumbing.artifacts import write_code_rows
from cec.readers.mimic3 import TABLES, read_codes, read_dictionary, read_discharge_notes
from cec.readers.tables import table_path

log = logging.getLogger(__name__)

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.7, "dev": 0.1, "test": 0.2}


@dataclass
class PrepareOptions:
    """Choices the papers leave open; defaults are documented in the config schema."""

    seed: int = 13
    fractions: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FRACTIONS))
    exclude_error_notes: bool = True
    progress: bool = True
    code_format: str = "exact"  # exact | caml: how label strings are written (cec.icd.codes)
    literature_sizes: Mapping[str, int] | None = None  # split sizes a paper reports


def _source_codes(
    lc: LabelCode,
    hierarchy: Icd9Hierarchy,
    mimic_titles: Mapping[Kind, Mapping[str, str]],
    code_format: str,
) -> list[str]:
    """The ICD-9-CM codes (dotted) that a label string stands for: itself, or under `caml`
    the procedure codes whose caml-mimic string it is ("40.7" -> 04.07)."""
    if lc.kind != "procedure" or code_format != "caml":
        return [lc.code]
    sources = set(hierarchy.caml_sources(lc.code))
    sources |= {c for c in mimic_titles["procedure"] if caml_procedure(c) == lc.code}
    return sorted(sources) or [lc.code]


def _code_table(
    codes: list[LabelCode],
    mimic_titles: Mapping[Kind, Mapping[str, str]],
    report: dict[str, Any],
    code_format: str = "exact",
) -> list[dict[str, str]]:
    """codes.tsv rows: MIMIC's own titles for leaves, the shipped hierarchy for parents.
    A caml string is titled and parented as the ICD-9-CM code it stands for, so prompts
    and reports never show a bare or misleading code; the data report says which."""
    hierarchy = Icd9Hierarchy.load()
    rows = []
    missing: list[str] = []
    notes: dict[str, str] = {}
    for lc in codes:
        sources = _source_codes(lc, hierarchy, mimic_titles, code_format)
        titles = [
            mimic_titles[lc.kind].get(c) or hierarchy.title(c, lc.kind) or "" for c in sources
        ]
        description = " or ".join(t for t in titles if t)
        if sources != [lc.code]:
            notes[lc.code] = (
                f"caml-mimic's string for ICD-9-CM {' and '.join(sources)} (MIMIC "
                f"{', '.join(undot(c) for c in sources)}): leading zeros lost before the dot"
            )
        elif (
            description
            and hierarchy.info(lc.code, lc.kind) is None
            and (lc.code not in mimic_titles[lc.kind])
        ):
            notes[lc.code] = "an ICD-9-CM category, not a v32 leaf: titled as the category"
        if not description:
            missing.append(lc.code)
        try:
            parent = hierarchy.parent(sources[0], lc.kind)
            parent_title = hierarchy.parent_title(sources[0], lc.kind)
        except KeyError:
            parent, parent_title = "", ""
        rows.append(
            {
                "code": lc.code,
                "kind": lc.kind,
                "description": description,
                "parent": parent,
                "parent_description": parent_title,
            }
        )
    if missing:
        report["warnings"].append(
            f"{len(missing)} listed code(s) missing from the ICD-9 dictionaries (kept, "
            f"no description): {', '.join(missing)}"
        )
        log.warning(report["warnings"][-1])
    report["codes_missing_from_dictionaries"] = missing
    report["code_strings"] = notes
    return rows


def prepare_dataset(
    mimic_dir: str | Path,
    codes_file: str | Path,
    out_dir: str | Path,
    split_files: Mapping[str, str | Path] | None = None,
    opts: PrepareOptions | None = None,
    *,
    write_codes: bool = True,
) -> dict[str, Any]:
    """Build one dataset directory; returns the data report that is also written.

    `split_files` maps train/dev/test to HADM_ID lists; without it the admissions are
    split by patient with `opts.seed` and `opts.fractions`.
    """
    opts = opts or PrepareOptions()
    mimic_dir = Path(mimic_dir)
    check_dataset_output(out_dir, write_codes)  # before reading gigabytes of input
    codes = read_code_list(codes_file)
    listed = {c.code for c in codes}
    kinds = {c.code: c.kind for c in codes}
    report: dict[str, Any] = {
        "mimic_dir": str(mimic_dir),
        "code_list": str(codes_file),
        "n_codes": len(codes),
        "warnings": [],
    }
    for table in TABLES:  # fail fast on a missing table, before any long streaming pass
        table_path(mimic_dir, table)
    split_lists = load_split_files(split_files) if split_files is not None else None

    dictionaries: dict[str, Any] = {}
    mimic_titles: dict[Kind, dict[str, str]] = {
        "diagnosis": read_dictionary(mimic_dir, "D_ICD_DIAGNOSES", "diagnosis", dictionaries),
        "procedure": read_dictionary(mimic_dir, "D_ICD_PROCEDURES", "procedure", dictionaries),
    }
    report["dictionaries"] = dictionaries
    # Listed codes absent from MIMIC's own dictionaries: titled from the shipped hierarchy
    # when possible; codes missing from both are warned about in _code_table.
    report["codes_not_in_mimic_dictionaries"] = [
        c for c in sorted(listed) if c not in mimic_titles[kinds[c]]
    ]

    labels: dict[int, set[str]] = defaultdict(set)
    subjects: dict[int, int] = {}
    report["code_format"] = opts.code_format
    report["DIAGNOSES_ICD"] = read_codes(
        mimic_dir, "DIAGNOSES_ICD", "diagnosis", listed, labels, subjects, opts.progress,
        opts.code_format,
    )  # fmt: skip
    report["PROCEDURES_ICD"] = read_codes(
        mimic_dir, "PROCEDURES_ICD", "procedure", listed, labels, subjects, opts.progress,
        opts.code_format,
    )  # fmt: skip
    coded_hadms = set(subjects)
    candidates = {h for h, s in labels.items() if s}
    if split_lists is not None:
        candidates &= {h for ids in split_lists.values() for h in ids}

    documents, discharge_hadms, report["NOTEEVENTS"] = read_discharge_notes(
        mimic_dir,
        candidates,
        subjects,
        exclude_error_notes=opts.exclude_error_notes,
        progress=opts.progress,
    )
    found = Admissions(
        labels=labels,
        subjects=subjects,
        coded_hadms=coded_hadms,
        discharge_hadms=discharge_hadms,
        documents=documents,
    )
    split = SplitPlan(
        given=split_lists,
        sources=split_files,
        make=lambda eligible: patient_split(
            {h: subjects[h] for h in eligible}, opts.fractions, opts.seed
        ),
        made={
            "source": "seeded patient-level split (no split files given)",
            "seed": opts.seed,
            "fractions": dict(opts.fractions),
        },
        literature_sizes=opts.literature_sizes,
    )
    return assemble(
        found,
        codes,
        split,
        report,
        lambda rep: _code_table(codes, mimic_titles, rep, opts.code_format),
        out_dir,
        write_codes=write_codes,
    )


def write_code_table(
    mimic_dir: str | Path, codes_file: str | Path, out_path: str | Path, code_format: str = "exact"
) -> dict[str, Any]:
    """codes.tsv from the code list and the D_ICD dictionaries alone.

    It reads no note, so the concept-generation rule (which sends ICD text to an API) can
    depend on it without any MIMIC note upstream in the DAG.
    """
    mimic_dir = Path(mimic_dir)
    codes = read_code_list(codes_file)
    report: dict[str, Any] = {"warnings": []}
    titles: dict[Kind, dict[str, str]] = {
        "diagnosis": read_dictionary(mimic_dir, "D_ICD_DIAGNOSES", "diagnosis", report),
        "procedure": read_dictionary(mimic_dir, "D_ICD_PROCEDURES", "procedure", report),
    }
    write_code_rows(Path(out_path), _code_table(codes, titles, report, code_format))
    return report


def code_table_rows(codes_file: str | Path, code_format: str = "exact") -> list[dict[str, str]]:
    """codes.tsv rows titled from the shipped ICD-9-CM v32 tables alone.

    MIMIC-III v1.4's D_ICD tables hold the same v32 titles, so these rows equal what the
    workflow writes from the (synthetic or real) dictionaries; tools and tests use this to
    build prompts without a MIMIC copy.
    """
    report: dict[str, Any] = {"warnings": []}
    return _code_table(
        read_code_list(codes_file), {"diagnosis": {}, "procedure": {}}, report, code_format
    )
