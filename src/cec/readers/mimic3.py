"""Reading MIMIC-III v1.4's tables (CSV or gzipped CSV), streamed.

The code tables are reduced to the listed codes while they stream, and NOTEEVENTS to
the discharge summaries of candidate admissions, so memory stays bounded on the full
release; to count a code list, every code is kept, and of NOTEEVENTS only which
admissions have a discharge summary (`discharge_admissions`). Codes are read as strings
and dotted by their source table (`cec.icd.codes.format_code`). Every error names the
file, row and field, never a note's text (`cec.readers.tables.TableReader`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cec.icd.codes import CodeFormatError, Kind, format_code, label_code
from cec.plumbing.errors import InputError
from cec.readers.tables import EXAMPLES, Row, TableReader, table_path

log = logging.getLogger(__name__)

DISCHARGE = "Discharge summary"
# the tables a MIMIC-III dataset reads
TABLES = ("NOTEEVENTS", "DIAGNOSES_ICD", "PROCEDURES_ICD", "D_ICD_DIAGNOSES", "D_ICD_PROCEDURES")


@dataclass
class Note:
    addendum: bool
    chartdate: str
    row_id: int
    text: str


def read_dictionary(
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


def read_codes(
    mimic_dir: Path,
    table: str,
    kind: Kind,
    listed: set[str] | None,
    labels: dict[int, set[str]],
    subjects: dict[int, int],
    progress: bool,
    code_format: str = "exact",
) -> dict[str, Any]:
    """Stream a *_ICD table, keeping only listed codes per admission (every well-formed
    code where `listed` is None: a code list being counted). Codes are written as
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
        if listed is not None and code not in listed:
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


def read_discharge_notes(
    mimic_dir: Path,
    candidates: set[int],
    subjects: dict[int, int],
    *,
    exclude_error_notes: bool = True,
    progress: bool = True,
) -> tuple[dict[int, tuple[str, int]], set[int], dict[str, Any]]:
    """Stream NOTEEVENTS keeping discharge summaries of candidate admissions, joined into
    one document per admission (`join_notes`); also the discharge counts of the report,
    and every admission that has a discharge summary.

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
        progress=progress,
    )
    stats: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    notes: dict[int, list[Note]] = defaultdict(list)
    discharge_hadms: set[int] = set()
    kept_rows: dict[int, tuple[bytes, int]] = {}  # ROW_ID -> (digest, row) of kept rows
    for row in reader:
        stats["rows_read"] += 1
        hadm = _discharge_admission(reader, row, subjects, stats, categories, exclude_error_notes)
        if hadm is None:
            continue
        discharge_hadms.add(hadm)
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
            Note(description.lower() == "addendum", reader.field(row, "CHARTDATE"), row_id, text)
        )
        stats[
            "addendum_rows_kept" if description.lower() == "addendum" else "report_rows_kept"
        ] += 1
    out = _note_counts(path, stats, categories)
    documents: dict[int, tuple[str, int]] = {}
    while notes:  # join each admission's notes, freeing its parts as it goes (peak memory)
        hadm, parts = notes.popitem()
        documents[hadm] = (join_notes(parts), len(parts))
    return documents, discharge_hadms, out


def discharge_admissions(
    mimic_dir: Path,
    subjects: dict[int, int],
    *,
    exclude_error_notes: bool = True,
    progress: bool = False,
) -> tuple[set[int], dict[str, Any]]:
    """Every admission that has a discharge summary, found by `read_discharge_notes`'
    rule, and the counts of the pass. Only admission ids are kept: a code list counted
    over these admissions has no note text upstream of it (concept generation, which
    sends code titles to an API, reads that list)."""
    path = table_path(mimic_dir, "NOTEEVENTS")
    reader = TableReader(
        path,
        ("SUBJECT_ID", "HADM_ID", "CATEGORY", "ISERROR"),
        table="NOTEEVENTS",
        progress=progress,
    )
    stats: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    found: set[int] = set()
    for row in reader:
        stats["rows_read"] += 1
        hadm = _discharge_admission(reader, row, subjects, stats, categories, exclude_error_notes)
        if hadm is not None:
            found.add(hadm)
    out = _note_counts(path, stats, categories)
    out["admissions_with_discharge_summary"] = len(found)
    return found, out


def _discharge_admission(
    reader: TableReader,
    row: Row,
    subjects: dict[int, int],
    stats: Counter[str],
    categories: Counter[str],
    exclude_error_notes: bool,
) -> int | None:
    """The admission a NOTEEVENTS row is a discharge summary of, or None (counted in
    `stats` or `categories`). One rule for preparing a dataset and for counting its code
    list, so that both see the same admissions. A row whose SUBJECT_ID is not the
    admission's patient is refused (`TableReader.check_subject`)."""
    category = reader.field(row, "CATEGORY").strip()
    if category != DISCHARGE:
        categories[category if category in CATEGORIES else OTHER_CATEGORY] += 1
        return None
    stats["discharge_summary_rows"] += 1
    hadm = reader.integer(row, "HADM_ID", allow_empty=True)
    if hadm is None:
        stats["discharge_rows_without_hadm_id"] += 1
        return None
    if exclude_error_notes and reader.field(row, "ISERROR").strip() == "1":
        stats["discharge_rows_flagged_iserror"] += 1
        return None
    subject = reader.integer(row, "SUBJECT_ID")
    assert subject is not None
    reader.check_subject(subjects, hadm, subject, row, "SUBJECT_ID")
    return hadm


def _note_counts(path: Path, stats: Counter[str], categories: Counter[str]) -> dict[str, Any]:
    """The report of a NOTEEVENTS pass; a table with no rows is refused."""
    if not stats["rows_read"]:
        raise InputError(
            "a header and no rows: there are no notes to build a dataset from", file=path
        )
    out: dict[str, Any] = dict(stats)
    out["other_categories_ignored"] = dict(sorted(categories.items()))
    return out


def join_notes(notes: list[Note]) -> str:
    """One document per admission: the report(s) first, then addenda, by date and row.

    caml-mimic concatenates all discharge-summary rows of an admission; we fix the order
    (reports before addenda, then CHARTDATE, then ROW_ID) so the text does not depend on
    the order of rows in the file.
    """
    ordered = sorted(notes, key=lambda n: (n.addendum, n.chartdate, n.row_id))
    return "\n\n".join(n.text.strip() for n in ordered)
