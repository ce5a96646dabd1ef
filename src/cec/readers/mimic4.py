"""Reading MIMIC-IV v2.2 (`hosp/`) and MIMIC-IV-Note v2.2 (`note/`), streamed.

MIMIC-IV keeps ICD-9 and ICD-10 codes side by side (the switch came in October 2015): each
row of `diagnoses_icd` / `procedures_icd` carries `icd_code` without a dot and
`icd_version` (9 or 10). Label strings are written as the literature writes them
(`cec.icd.codes.format_icd`):

- ICD-9 (both kinds): as for MIMIC-III (`cec.icd.codes.format_code`): 584.9, 96.71;
- ICD-10-CM (diagnoses): a dot after the 3-character category when more follow: I50.9,
  S72.001A; a bare category stays as it is (A00 is not a billable code but a valid string);
- ICD-10-PCS (procedures): the 7 characters without a dot: 0DTJ4ZZ.

A diagnosis and a procedure never share a string within a version: ICD-10-PCS codes are 7
characters without a dot, an ICD-10-CM code longer than 3 characters always has one, and
ICD-9 procedures put their dot after 2 digits, diagnoses after 3 (or 4 for E codes).

Every reader streams in bounded memory (`cec.readers.tables.TableReader`), validates the columns it
uses, and raises `InputError` with the file, row and field of anything malformed.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cec.icd.codes import CodeFormatError, Kind, format_icd
from cec.plumbing.errors import InputError
from cec.readers import tables
from cec.readers.tables import Row, TableReader

SOURCE = "MIMIC-IV v2.2"
# table -> (folder under the MIMIC-IV root, the columns the readers use)
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "diagnoses_icd": ("hosp", ("subject_id", "hadm_id", "seq_num", "icd_code", "icd_version")),
    "procedures_icd": ("hosp", ("subject_id", "hadm_id", "seq_num", "icd_code", "icd_version")),
    "d_icd_diagnoses": ("hosp", ("icd_code", "icd_version", "long_title")),
    "d_icd_procedures": ("hosp", ("icd_code", "icd_version", "long_title")),
    "discharge": (
        "note",
        ("note_id", "subject_id", "hadm_id", "note_type", "note_seq", "charttime", "text"),
    ),
}
# folder/table -> all its columns, in MIMIC-IV v2.2's order (the synthetic MIMIC-IV writes
# them; TABLES names those the readers use)
COLUMNS: dict[str, tuple[str, ...]] = {
    "hosp/diagnoses_icd": ("subject_id", "hadm_id", "seq_num", "icd_code", "icd_version"),
    "hosp/procedures_icd": (
        "subject_id",
        "hadm_id",
        "seq_num",
        "chartdate",
        "icd_code",
        "icd_version",
    ),
    "hosp/d_icd_diagnoses": ("icd_code", "icd_version", "long_title"),
    "hosp/d_icd_procedures": ("icd_code", "icd_version", "long_title"),
    "note/discharge": (
        "note_id",
        "subject_id",
        "hadm_id",
        "note_type",
        "note_seq",
        "charttime",
        "storetime",
        "text",
    ),
    "note/discharge_detail": (
        "note_id",
        "subject_id",
        "field_name",
        "field_value",
        "field_ordinal",
    ),
}
CODE_TABLES: dict[Kind, str] = {"diagnosis": "diagnoses_icd", "procedure": "procedures_icd"}


def table_path(root: str | Path, name: str) -> Path:
    """`{root}/{hosp|note}/{name}.csv.gz` or `.csv`: MIMIC-IV's own layout (both there:
    refused, see `cec.readers.tables.table_path`)."""
    folder, _ = TABLES[name]
    return tables.table_path(Path(root) / folder, name, source=SOURCE, shown=f"{folder}/{name}")


def open_table(root: str | Path, name: str, *, progress: bool = False) -> TableReader:
    """A reader of one MIMIC-IV table that knows all its columns (a message shows a
    header cell only where it is one of them) and whether it holds notes."""
    folder, required = TABLES[name]
    return TableReader(
        table_path(root, name),
        required,
        table=name,
        progress=progress,
        source=SOURCE,
        columns=COLUMNS[f"{folder}/{name}"],
    )


def _label(reader: TableReader, row: Row, version: int, kind: Kind) -> str:
    """The row's `icd_code` as a label string; a malformed one is named by row and field."""
    try:
        return format_icd(reader.field(row, "icd_code"), version, kind)
    except CodeFormatError as exc:
        raise InputError(str(exc), file=reader.path, row=row.number, field="icd_code") from None


def _version(reader: TableReader, row: Row) -> int:
    value = reader.field(row, "icd_version").strip()
    if value not in ("9", "10"):
        raise InputError(
            f"icd_version {value!r} is neither 9 nor 10",
            file=reader.path,
            row=row.number,
            field="icd_version",
        )
    return int(value)


@dataclass(frozen=True)
class AdmissionCodes:
    """The codes of one ICD version per admission, as label strings, in `seq_num` order,
    diagnoses first; and each admission's patient."""

    codes: dict[int, list[str]]
    subjects: dict[int, int]
    rows_read: int
    rows_of_other_version: int
    rows_with_unlisted_code: int = 0


def read_admission_codes(
    root: str | Path, version: int, *, keep: set[str] | None = None, progress: bool = False
) -> AdmissionCodes:
    """Every admission's codes of `version` (9 or 10), diagnoses then procedures; with
    `keep`, only those codes (every admission of the version still gets its subject)."""
    if version not in (9, 10):
        raise ValueError(f"version must be 9 or 10, got {version!r}")
    ordered: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    subjects: dict[int, int] = {}
    rows = other = unlisted = 0
    for order, (kind, name) in enumerate(CODE_TABLES.items()):
        reader = open_table(root, name, progress=progress)
        for row in reader:
            rows += 1
            if _version(reader, row) != version:
                other += 1
                continue
            hadm = reader.integer(row, "hadm_id")
            subject = reader.integer(row, "subject_id")
            seq = reader.integer(row, "seq_num")
            assert hadm is not None and subject is not None and seq is not None
            reader.check_subject(subjects, hadm, subject, row, "subject_id")
            code = _label(reader, row, version, kind)
            if keep is not None and code not in keep:
                unlisted += 1
                continue
            ordered[hadm].append((order, seq, code))
    codes = {
        hadm: list(dict.fromkeys(code for _, _, code in sorted(entries)))
        for hadm, entries in ordered.items()
    }
    return AdmissionCodes(codes, subjects, rows, other, unlisted)


def read_titles(root: str | Path, version: int) -> dict[tuple[Kind, str], str]:
    """(kind, label string) -> long title, from `d_icd_diagnoses` / `d_icd_procedures`."""
    titles: dict[tuple[Kind, str], str] = {}
    dictionaries: tuple[tuple[Kind, str], ...] = (
        ("diagnosis", "d_icd_diagnoses"),
        ("procedure", "d_icd_procedures"),
    )
    for kind, name in dictionaries:
        reader = open_table(root, name)
        for row in reader:
            if _version(reader, row) != version:
                continue
            titles[(kind, _label(reader, row, version, kind))] = reader.field(
                row, "long_title"
            ).strip()
    return titles


# MIMIC-IV-Note's discharge table: `DS` rows are discharge summaries; `AD` rows, where a
# release has them, are addenda to one. An admission's document is its summaries in
# note_seq order, then its addenda, as the MIMIC-III reader joins reports and addenda.
NOTE_TYPES = {"DS": 0, "AD": 1}


@dataclass
class DischargeNotes:
    """One document per wanted admission, the admissions that have any discharge note,
    and counts of what was read and skipped."""

    documents: dict[int, tuple[int, str, int]]  # hadm -> (subject, text, rows joined)
    hadms: set[int]
    stats: dict[str, int]


def collect_discharge_notes(
    root: str | Path,
    wanted: Iterable[int] | None = None,
    *,
    progress: bool = False,
    subjects: Mapping[int, int] | None = None,
) -> DischargeNotes:
    """Stream `note/discharge`, joining the rows of each admission (or only of those in
    `wanted`): summaries in note_seq order, then addenda. Rows of other note types and
    rows without a hadm_id are skipped and counted (MIMIC-IV-Note ties every discharge
    note to one admission).

    Inconsistencies, decided as for MIMIC-III's NOTEEVENTS: a kept row whose note_id
    repeats an earlier one is removed and counted (`duplicate_rows_removed`) when all
    its fields are the same, refused (naming both rows) when they differ; a row whose
    subject_id is not the admission's patient (in `subjects`, the code tables' patients,
    or in an earlier discharge row) is refused."""
    keep = set(wanted) if wanted is not None else None
    reader = open_table(root, "discharge", progress=progress)
    path = reader.path
    parts: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    subject_of: dict[int, int] = dict(subjects or {})
    kept_rows: dict[str, tuple[bytes, int]] = {}  # note_id -> (digest, row) of kept rows
    hadms: set[int] = set()
    stats: dict[str, int] = defaultdict(int)
    for row in reader:
        stats["rows_read"] += 1
        kind = reader.field(row, "note_type").strip()
        if kind not in NOTE_TYPES:
            stats["rows_of_other_note_types"] += 1
            continue
        hadm = reader.integer(row, "hadm_id", allow_empty=True)
        if hadm is None:
            stats["rows_without_hadm_id"] += 1
            continue
        hadms.add(hadm)
        subject = reader.integer(row, "subject_id")
        assert subject is not None
        reader.check_subject(subject_of, hadm, subject, row, "subject_id")
        if keep is not None and hadm not in keep:
            stats["rows_of_other_admissions"] += 1
            continue
        if reader.is_duplicate(row, reader.field(row, "note_id").strip(), kept_rows, "note_id"):
            stats["duplicate_rows_removed"] += 1
            continue
        seq = reader.integer(row, "note_seq")
        assert seq is not None
        parts[hadm].append((NOTE_TYPES[kind], seq, reader.field(row, "text")))
        stats["addendum_rows_kept" if kind == "AD" else "summary_rows_kept"] += 1
    if not stats["rows_read"]:
        raise InputError("a header and no rows: no notes to build a dataset from", file=path)
    stats["admissions_with_several_rows_joined"] = sum(len(p) > 1 for p in parts.values())
    documents = {
        hadm: (
            subject_of[hadm],
            "\n\n".join(t.strip() for _, _, t in sorted(parts[hadm])),
            len(parts[hadm]),
        )
        for hadm in sorted(parts)
    }
    return DischargeNotes(documents, hadms, dict(stats))


def read_discharge_notes(
    root: str | Path, wanted: Iterable[int] | None = None, *, progress: bool = False
) -> Iterator[tuple[int, int, str]]:
    """(hadm_id, subject_id, text) per admission that has a discharge note (or only those
    in `wanted`), in hadm_id order; see `collect_discharge_notes`."""
    notes = collect_discharge_notes(root, wanted, progress=progress)
    for hadm, (subject, text, _) in notes.documents.items():
        yield hadm, subject, text


def discharge_rows(root: str | Path, *, progress: bool = False) -> dict[int, int]:
    """How many rows each admission has in Edin et al.'s MIMIC-IV dataset, which pairs
    every row of `note/discharge` with its admission's codes: the rows with a hadm_id and
    a text, of any note type, those of one admission with the same text counted once
    (their `drop_duplicates` on hadm_id and text; pandas reads an empty text as missing
    and drops it). Only the admission ids and a digest of each text are kept."""
    reader = open_table(root, "discharge", progress=progress)
    seen: dict[int, set[bytes]] = defaultdict(set)
    for row in reader:
        hadm = reader.integer(row, "hadm_id", allow_empty=True)
        text = reader.field(row, "text")
        if hadm is None or not text:
            continue
        seen[hadm].add(hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest())
    return {hadm: len(texts) for hadm, texts in seen.items()}
