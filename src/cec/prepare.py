"""Raw MIMIC-III tables -> one dataset (train/dev/test JSONL, codes.tsv, data report).

Faithful to caml-mimic / KEPT / Edin et al.: discharge summaries (reports and addenda)
joined per admission; codes read as strings and dotted by their source table; duplicate
codes of an admission removed; labels restricted to the dataset's code list; admissions
without a listed code dropped. Everything dropped is counted with its reason in
`data_report.json`, so a user can reconcile our counts with the papers'.

Memory stays bounded: the code tables are reduced to the listed codes while streaming,
and NOTEEVENTS is streamed keeping only discharge summaries of candidate admissions.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cec.artifacts import write_code_rows
from cec.codelist import LabelCode, read_code_list
from cec.codes import CodeFormatError, Kind, caml_procedure, format_code, label_code, undot
from cec.dataset_assembly import (
    EXAMPLES,
    Admissions,
    build_records,
    check_dataset_folder,
    choose_split,
    compare_sizes,
    write_dataset,
)
from cec.errors import InputError
from cec.icd9 import Icd9Hierarchy
from cec.io import atomic_dir, check_output_folder
from cec.mimic import TableReader, table_path
from cec.splits import load_split_files, patient_split

log = logging.getLogger(__name__)

DISCHARGE = "Discharge summary"
DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.7, "dev": 0.1, "test": 0.2}


@dataclass
class PrepareOptions:
    """Choices the papers leave open; defaults are documented in config/schema.yaml."""

    seed: int = 13
    fractions: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FRACTIONS))
    exclude_error_notes: bool = True
    progress: bool = True
    code_format: str = "exact"  # exact | caml: how label strings are written (cec.codes)
    literature_sizes: Mapping[str, int] | None = None  # split sizes a paper reports


@dataclass
class _Note:
    addendum: bool
    chartdate: str
    row_id: int
    text: str


def _read_dictionary(
    mimic_dir: Path, table: str, kind: Kind, report: dict[str, Any]
) -> dict[str, str]:
    """Long titles of MIMIC's D_ICD_* table, keyed by dotted code."""
    path = table_path(mimic_dir, table)
    reader = TableReader(path, ("ICD9_CODE", "LONG_TITLE"), table=table)
    titles: dict[str, str] = {}
    bad = 0
    for row in reader:
        raw = reader.field(row, "ICD9_CODE")
        try:
            code = format_code(raw, kind)
        except CodeFormatError:
            bad += 1
            continue
        titles[code] = reader.field(row, "LONG_TITLE").strip()
    report[table] = {"rows": len(titles) + bad, "malformed_codes": bad}
    return titles


def _read_codes(
    mimic_dir: Path,
    table: str,
    kind: Kind,
    listed: set[str],
    labels: dict[int, set[str]],
    subjects: dict[int, int],
    progress: bool,
    code_format: str = "exact",
) -> dict[str, Any]:
    """Stream a *_ICD table, keeping only listed codes per admission. Codes are written as
    `code_format` says before they are matched against the list."""
    path = table_path(mimic_dir, table)
    reader = TableReader(
        path, ("SUBJECT_ID", "HADM_ID", "ICD9_CODE"), table=table, progress=progress
    )
    stats: Counter[str] = Counter()
    malformed: list[str] = []
    seen_pairs: set[tuple[int, str]] = set()
    renamed: dict[str, set[str]] = defaultdict(set)  # listed label -> exact codes behind it
    for row in reader:
        stats["rows_read"] += 1
        hadm = reader.integer(row, "HADM_ID")
        subject = reader.integer(row, "SUBJECT_ID")
        assert hadm is not None and subject is not None
        reader.check_subject(subjects, hadm, subject, row, "SUBJECT_ID")
        raw = reader.field(row, "ICD9_CODE").strip()
        if not raw:
            stats["rows_without_code"] += 1
            continue
        try:
            code = label_code(raw, kind, code_format)
        except CodeFormatError:
            stats["rows_with_malformed_code"] += 1
            if len(malformed) < EXAMPLES:
                malformed.append(f"row {row.number}: {raw!r}")
            continue
        if code not in listed:
            stats["rows_with_unlisted_code"] += 1
            continue
        exact = format_code(raw, kind)
        if exact != code:
            renamed[code].add(exact)
        if (hadm, code) in seen_pairs:
            stats["duplicate_code_rows_removed"] += 1
            continue
        seen_pairs.add((hadm, code))
        labels[hadm].add(code)
        stats["rows_with_listed_code"] += 1
    out: dict[str, Any] = dict(stats)
    if renamed:  # caml strings that are not the ICD-9-CM code they stand for
        out["listed_codes_read_as_caml"] = {k: sorted(v) for k, v in sorted(renamed.items())}
    if malformed:
        out["malformed_code_examples"] = malformed
        log.warning(
            "%s: %d malformed ICD9_CODE values skipped (e.g. %s)",
            path,
            stats["rows_with_malformed_code"],
            malformed[0],
        )
    return out


# NOTEEVENTS' CATEGORY values in MIMIC-III v1.4 (some with a trailing space there, which
# the reader strips). The report names these; any other value is counted, not named: a
# CATEGORY field of a damaged or foreign file may hold note text.
CATEGORIES = frozenset(
    {
        "Case Management",
        "Consult",
        "Discharge summary",
        "ECG",
        "Echo",
        "General",
        "Nursing",
        "Nursing/other",
        "Nutrition",
        "Pharmacy",
        "Physician",
        "Radiology",
        "Rehab Services",
        "Respiratory",
        "Social Work",
    }
)
OTHER_CATEGORY = "(other values, not MIMIC-III v1.4 categories)"


def _read_notes(
    mimic_dir: Path,
    candidates: set[int],
    subjects: dict[int, int],
    opts: PrepareOptions,
) -> tuple[dict[int, list[_Note]], set[int], dict[str, Any]]:
    """Stream NOTEEVENTS keeping discharge summaries of candidate admissions.

    Inconsistencies, decided here: a kept discharge summary row whose ROW_ID (MIMIC's key)
    repeats an earlier one is a duplicated row: removed and counted
    (`duplicate_rows_removed`) when all its fields are the same, refused (naming both
    rows) when they differ. A row whose SUBJECT_ID is not the admission's patient in the
    code tables or an earlier note is refused (`TableReader.check_subject`). Rows with the same
    content under different ROW_IDs are kept, as in the release and in caml-mimic."""
    path = table_path(mimic_dir, "NOTEEVENTS")
    reader = TableReader(
        path,
        (
            "ROW_ID",
            "SUBJECT_ID",
            "HADM_ID",
            "CHARTDATE",
            "CATEGORY",
            "DESCRIPTION",
            "ISERROR",
            "TEXT",
        ),
        table="NOTEEVENTS",
        progress=opts.progress,
    )
    stats: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    notes: dict[int, list[_Note]] = defaultdict(list)
    discharge_hadms: set[int] = set()
    kept_rows: dict[int, tuple[bytes, int]] = {}  # ROW_ID -> (digest, row) of kept rows
    for row in reader:
        stats["rows_read"] += 1
        category = reader.field(row, "CATEGORY").strip()
        if category != DISCHARGE:
            categories[category if category in CATEGORIES else OTHER_CATEGORY] += 1
            continue
        stats["discharge_summary_rows"] += 1
        hadm = reader.integer(row, "HADM_ID", allow_empty=True)
        if hadm is None:
            stats["discharge_rows_without_hadm_id"] += 1
            continue
        if opts.exclude_error_notes and reader.field(row, "ISERROR").strip() == "1":
            stats["discharge_rows_flagged_iserror"] += 1
            continue
        discharge_hadms.add(hadm)
        subject = reader.integer(row, "SUBJECT_ID")
        assert subject is not None
        reader.check_subject(subjects, hadm, subject, row, "SUBJECT_ID")
        if hadm not in candidates:
            stats["discharge_rows_of_other_admissions"] += 1
            continue
        row_id = reader.integer(row, "ROW_ID")
        assert row_id is not None
        if reader.is_duplicate(row, row_id, kept_rows, "ROW_ID"):
            stats["duplicate_rows_removed"] += 1
            continue
        description = reader.field(row, "DESCRIPTION").strip()
        text = reader.field(row, "TEXT")
        notes[hadm].append(
            _Note(description.lower() == "addendum", reader.field(row, "CHARTDATE"), row_id, text)
        )
        stats[
            "addendum_rows_kept" if description.lower() == "addendum" else "report_rows_kept"
        ] += 1
    if not stats["rows_read"]:
        raise InputError(
            "a header and no rows: there are no notes to build a dataset from", file=path
        )
    out: dict[str, Any] = dict(stats)
    out["other_categories_ignored"] = dict(sorted(categories.items()))
    return notes, discharge_hadms, out


def join_notes(notes: list[_Note]) -> str:
    """One document per admission: the report(s) first, then addenda, by date and row.

    caml-mimic concatenates all discharge-summary rows of an admission; we fix the order
    (reports before addenda, then CHARTDATE, then ROW_ID) so the text does not depend on
    the order of rows in the file.
    """
    ordered = sorted(notes, key=lambda n: (n.addendum, n.chartdate, n.row_id))
    return "\n\n".join(n.text.strip() for n in ordered)


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
    out_dir = Path(out_dir)
    if write_codes:
        check_dataset_folder(out_dir)  # before reading gigabytes of input
    else:
        check_output_folder(out_dir)  # writable? (under Snakemake, which made it)
    codes = read_code_list(codes_file)
    listed = {c.code for c in codes}
    kinds = {c.code: c.kind for c in codes}
    report: dict[str, Any] = {
        "mimic_dir": str(mimic_dir),
        "code_list": str(codes_file),
        "n_codes": len(codes),
        "warnings": [],
    }
    # Fail fast on missing tables before any long streaming pass.
    for table in (
        "NOTEEVENTS",
        "DIAGNOSES_ICD",
        "PROCEDURES_ICD",
        "D_ICD_DIAGNOSES",
        "D_ICD_PROCEDURES",
    ):
        table_path(mimic_dir, table)
    split_lists = load_split_files(split_files) if split_files is not None else None

    dictionaries: dict[str, Any] = {}
    mimic_titles: dict[Kind, dict[str, str]] = {
        "diagnosis": _read_dictionary(mimic_dir, "D_ICD_DIAGNOSES", "diagnosis", dictionaries),
        "procedure": _read_dictionary(mimic_dir, "D_ICD_PROCEDURES", "procedure", dictionaries),
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
    report["DIAGNOSES_ICD"] = _read_codes(
        mimic_dir, "DIAGNOSES_ICD", "diagnosis", listed, labels, subjects, opts.progress,
        opts.code_format,
    )  # fmt: skip
    report["PROCEDURES_ICD"] = _read_codes(
        mimic_dir, "PROCEDURES_ICD", "procedure", listed, labels, subjects, opts.progress,
        opts.code_format,
    )  # fmt: skip
    coded_hadms = set(subjects)
    with_listed = {h for h, s in labels.items() if s}
    candidates = set(with_listed)
    if split_lists is not None:
        candidates &= {h for ids in split_lists.values() for h in ids}

    notes, discharge_hadms, report["NOTEEVENTS"] = _read_notes(
        mimic_dir, candidates, subjects, opts
    )
    documents: dict[int, tuple[str, int]] = {}
    while notes:  # join each admission's notes, freeing its parts as it goes (peak memory)
        hadm, parts = notes.popitem()
        documents[hadm] = (join_notes(parts), len(parts))
    found = Admissions(
        labels=labels,
        subjects=subjects,
        coded_hadms=coded_hadms,
        discharge_hadms=discharge_hadms,
        documents=documents,
    )
    made = {
        "source": "seeded patient-level split (no split files given)",
        "seed": opts.seed,
        "fractions": dict(opts.fractions),
    }
    split_ids = choose_split(
        found,
        split_lists,
        split_files,
        lambda eligible: patient_split(
            {h: subjects[h] for h in eligible}, opts.fractions, opts.seed
        ),
        report,
        made,
    )
    compare_sizes(report, opts.literature_sizes)
    records = build_records(codes, found, split_ids, report)

    code_rows = _code_table(codes, mimic_titles, report, opts.code_format)
    if write_codes:
        # the folder is the dataset's alone: built aside and swapped in whole, so that a
        # killed run leaves the old dataset or the new one, never a mix of the two
        with atomic_dir(out_dir) as tmp:
            write_dataset(tmp, records, report)
            write_code_rows(tmp / "codes.tsv", code_rows)
    else:
        # under Snakemake the folder also holds codes.tsv (rule code_table); each file is
        # renamed into place only when complete, the report last, and Snakemake removes
        # the outputs of a job that did not finish
        write_dataset(out_dir, records, report)
    return report


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
        "diagnosis": _read_dictionary(mimic_dir, "D_ICD_DIAGNOSES", "diagnosis", report),
        "procedure": _read_dictionary(mimic_dir, "D_ICD_PROCEDURES", "procedure", report),
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
