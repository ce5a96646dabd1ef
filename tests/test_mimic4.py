"""MIMIC-IV and MIMIC-IV-Note reading, on a miniature copy whose every row is known."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pytest

from cec.icd.code_lists import code_counts
from cec.icd.codes import CodeFormatError, format_icd, format_icd10
from cec.plumbing.errors import InputError
from cec.readers.mimic4 import (
    COLUMNS,
    read_admission_codes,
    read_discharge_notes,
    read_titles,
    table_path,
)

HEADERS = {name.split("/")[1]: list(columns) for name, columns in COLUMNS.items()}


def _write(root: Path, name: str, rows: list[list[object]], *, gz: bool = True) -> Path:
    folder = root / ("note" if name == "discharge" else "hosp")
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADERS[name])
    writer.writerows(rows)
    path = folder / (f"{name}.csv.gz" if gz else f"{name}.csv")
    data = buffer.getvalue().encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def mimic4(tmp_path: Path) -> Path:
    root = tmp_path / "mimic-iv"
    _write(root, "diagnoses_icd", [
        [1, 201, 2, "4280", 9], [1, 201, 1, "5849", 9], [1, 201, 3, "5849", 9],  # a repeat
        [2, 202, 1, "I509", 10], [2, 202, 2, "N179", 10], [2, 202, 3, "E119", 10],
        [3, 203, 1, "I509", 10], [3, 203, 2, "A00", 10],
    ])  # fmt: skip
    _write(root, "procedures_icd", [
        [1, 201, 1, "2151-07-16", "9671", 9],
        [2, 202, 1, "2160-01-02", "0DTJ4ZZ", 10],
    ], gz=False)  # fmt: skip
    _write(root, "d_icd_diagnoses", [
        ["5849", 9, "Acute kidney failure, unspecified"],
        ["I509", 10, "Heart failure, unspecified"],
        ["0066", 9, "A diagnosis stored as 0066"],
    ])  # fmt: skip
    _write(root, "d_icd_procedures", [
        ["0066", 9, "Percutaneous transluminal coronary angioplasty [PTCA]"],
        ["0DTJ4ZZ", 10, "Resection of Appendix, Percutaneous Endoscopic Approach"],
    ])  # fmt: skip
    _write(root, "discharge", [
        ["202-DS-2", 2, 202, "DS", 2, "2160-01-05", "", "second part"],
        ["202-DS-1", 2, 202, "DS", 1, "2160-01-04", "", "first part"],
        ["202-AD-3", 2, 202, "AD", 3, "2160-01-06", "", "an addendum"],
        ["203-RR-1", 3, 203, "RR", 1, "2160-02-01", "", "a radiology report"],
        ["201-DS-1", 1, 201, "DS", 1, "2151-07-20", "", 'text with "quotes", commas\nlines'],
    ])  # fmt: skip
    return root


@pytest.mark.parametrize(
    ("raw", "kind", "want"),
    [
        ("I509", "diagnosis", "I50.9"),
        ("I50.9", "diagnosis", "I50.9"),  # idempotent
        ("S72001A", "diagnosis", "S72.001A"),
        ("A00", "diagnosis", "A00"),  # a category keeps no dot
        ("e119", "diagnosis", "E11.9"),
        ("0DTJ4ZZ", "procedure", "0DTJ4ZZ"),
    ],
)
def test_icd10_strings(raw: str, kind: str, want: str) -> None:
    assert format_icd10(raw, kind) == want  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("I5", "diagnosis"),  # too short
        ("150.9", "diagnosis"),  # an ICD-9 code given as ICD-10
        ("I5.09", "diagnosis"),  # the dot in the wrong place
        ("S72001AB", "diagnosis"),  # too long
        ("0DTJ4Z", "procedure"),  # 6 characters
        ("0DTJ4ZI", "procedure"),  # PCS never uses I or O
        ("0DT.J4ZZ", "procedure"),
    ],
)
def test_malformed_icd10_strings_are_refused(raw: str, kind: str) -> None:
    with pytest.raises(CodeFormatError, match=repr(raw).strip("'")):
        format_icd10(raw, kind)  # type: ignore[arg-type]


def test_versions_and_kinds_never_share_a_string() -> None:
    """The same stored digits mean different codes by kind (ICD-9) and by version."""
    assert format_icd("0066", 9, "diagnosis") == "006.6"
    assert format_icd("0066", 9, "procedure") == "00.66"
    assert format_icd("5849", 9, "diagnosis") == "584.9"
    cm, pcs = format_icd("A0000AA", 10, "diagnosis"), format_icd("0000000", 10, "procedure")
    assert "." in cm and "." not in pcs  # a CM code over 3 characters always has its dot
    with pytest.raises(CodeFormatError, match="neither 9 nor 10"):
        format_icd("I509", 11, "diagnosis")


def test_codes_per_admission_by_version(mimic4: Path) -> None:
    icd9 = read_admission_codes(mimic4, 9)
    assert icd9.codes == {201: ["584.9", "428.0", "96.71"]}  # seq order, diagnoses first
    assert icd9.subjects == {201: 1} and icd9.rows_read == 10 and icd9.rows_of_other_version == 6
    icd10 = read_admission_codes(mimic4, 10)
    assert icd10.codes == {202: ["I50.9", "N17.9", "E11.9", "0DTJ4ZZ"], 203: ["I50.9", "A00"]}
    assert icd10.rows_of_other_version == 4


def test_titles_by_version_and_kind(mimic4: Path) -> None:
    titles9 = read_titles(mimic4, 9)
    assert titles9[("diagnosis", "006.6")] == "A diagnosis stored as 0066"
    assert titles9[("procedure", "00.66")].startswith("Percutaneous transluminal")
    titles10 = read_titles(mimic4, 10)
    assert titles10 == {
        ("diagnosis", "I50.9"): "Heart failure, unspecified",
        ("procedure", "0DTJ4ZZ"): "Resection of Appendix, Percutaneous Endoscopic Approach",
    }


def test_one_discharge_document_per_admission(mimic4: Path) -> None:
    notes = list(read_discharge_notes(mimic4))
    assert [(h, s) for h, s, _ in notes] == [(201, 1), (202, 2)]  # 203 has a radiology report
    assert notes[0][2] == 'text with "quotes", commas\nlines'
    # summaries in note_seq order, then the addendum
    assert notes[1][2] == "first part\n\nsecond part\n\nan addendum"
    assert [h for h, _, _ in read_discharge_notes(mimic4, wanted={202})] == [202]


def test_bad_rows_are_named(mimic4: Path) -> None:
    _write(mimic4, "diagnoses_icd", [[1, 201, 1, "5849", 9], [2, 202, 1, "I509", 11]])
    with pytest.raises(InputError) as err:
        read_admission_codes(mimic4, 10)
    assert (err.value.row, err.value.field) == (3, "icd_version")
    assert "diagnoses_icd.csv.gz" in str(err.value)
    _write(mimic4, "diagnoses_icd", [[2, 202, 1, "I5.09", 10]])
    with pytest.raises(InputError) as err:
        read_admission_codes(mimic4, 10)
    assert (err.value.row, err.value.field) == (2, "icd_code")


def test_missing_tables_columns_and_notes_are_named(mimic4: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="MIMIC-IV v2.2 table hosp/diagnoses_icd not found"):
        table_path(tmp_path / "elsewhere", "diagnoses_icd")
    path = mimic4 / "note" / "discharge.csv.gz"
    path.write_bytes(gzip.compress(b"note_id,hadm_id,text\n"))
    with pytest.raises(InputError, match="expected MIMIC-IV v2.2 discharge columns"):
        list(read_discharge_notes(mimic4))
    _write(mimic4, "discharge", [])
    with pytest.raises(InputError, match="a header and no rows"):
        list(read_discharge_notes(mimic4))


def test_code_counts_count_admissions_and_break_ties_by_string(mimic4: Path) -> None:
    codes = read_admission_codes(mimic4, 10).codes
    top = [code for code, _ in code_counts(codes)[:2]]
    assert top == ["I50.9", "0DTJ4ZZ"]  # I50.9 in 2; then 1 each, by string
    assert [code for code, _ in code_counts({1: ["B", "A", "A"], 2: ["B"]})] == ["B", "A"]


def test_lower_case_icd9_v_and_e_codes_are_upper_cased_as_on_mimic3(mimic4: Path) -> None:
    """One rule for both readers (cec.icd.codes.code_text): MIMIC-IV's ICD-9 rows go through
    cec.icd.codes.format_code, as MIMIC-III's do."""
    _write(mimic4, "diagnoses_icd", [[1, 201, 1, "v4581", 9], [1, 201, 2, "e8497", 9]])
    assert read_admission_codes(mimic4, 9).codes == {201: ["V45.81", "E849.7", "96.71"]}
