"""MIMIC-IV datasets of one ICD version, on a miniature MIMIC-IV whose every row is known."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest

from cec.datasets.mimic4 import Mimic4Options, prepare_mimic4_dataset, write_code_list
from cec.icd.code_lists import read_code_list
from cec.plumbing.artifacts import read_code_table
from cec.plumbing.errors import InputError
from cec.plumbing.io import read_jsonl
from tests.test_mimic4 import _write


@pytest.fixture
def mimic4(tmp_path: Path) -> Path:
    """Patients 1-6: 201 (ICD-9 only), 202-206 ICD-10; 207 ICD-10 without a note;
    208 has a note and only an unlisted ICD-10 code; 209 a note and no code at all."""
    root = tmp_path / "mimic-iv"
    _write(root, "diagnoses_icd", [
        [1, 201, 1, "4280", 9], [1, 201, 2, "5849", 9],
        [2, 202, 1, "I509", 10], [2, 202, 2, "N179", 10], [2, 202, 3, "I509", 10],
        [3, 203, 1, "I509", 10], [3, 203, 2, "E872", 10],
        [4, 204, 1, "N179", 10], [5, 205, 1, "I509", 10], [6, 206, 1, "E872", 10],
        [7, 207, 1, "I509", 10], [8, 208, 1, "A000", 10],
    ])  # fmt: skip
    _write(root, "procedures_icd", [
        [1, 201, 1, "2151-07-16", "9671", 9],
        [2, 202, 1, "2160-01-02", "0DTJ4ZZ", 10],
        [4, 204, 1, "2160-03-02", "02HV33Z", 10],
    ])  # fmt: skip
    _write(root, "d_icd_diagnoses", [
        ["4280", 9, "Congestive heart failure, unspecified"],
        ["I509", 10, "Heart failure, unspecified (as MIMIC-IV writes it)"],
        ["N179", 10, "Acute kidney failure, unspecified"],
    ])  # fmt: skip
    _write(root, "d_icd_procedures", [
        ["0DTJ4ZZ", 10, "Resection of Appendix, Percutaneous Endoscopic Approach"],
    ])  # fmt: skip
    _write(root, "discharge", [
        ["201-DS-1", 1, 201, "DS", 1, "2151-07-20", "", "icd-9 era stay"],
        ["202-DS-2", 2, 202, "DS", 2, "2160-01-05", "", "second part"],
        ["202-DS-1", 2, 202, "DS", 1, "2160-01-04", "", "first part"],
        ["202-AD-3", 2, 202, "AD", 3, "2160-01-06", "", "an addendum"],
        ["203-DS-1", 3, 203, "DS", 1, "2160-02-01", "", "note three"],
        ["204-DS-1", 4, 204, "DS", 1, "2160-03-05", "", "note four"],
        ["205-DS-1", 5, 205, "DS", 1, "2160-04-05", "", "note five"],
        ["206-DS-1", 6, 206, "DS", 1, "2160-05-05", "", "note six"],
        ["208-DS-1", 8, 208, "DS", 1, "2160-06-05", "", "note eight"],
        ["209-DS-1", 9, 209, "DS", 1, "2160-07-05", "", "note nine"],
        ["205-RR-1", 5, 205, "RR", 1, "2160-04-04", "", "a radiology report"],
    ])  # fmt: skip
    return root


@pytest.fixture
def codes10(tmp_path: Path) -> Path:
    path = tmp_path / "codes10.txt"
    path.write_text("I50.9\nN17.9\nE87.2\n0DTJ4ZZ\n02HV33Z\n", encoding="utf-8")
    return path


def _records(out: Path) -> dict[str, list[dict]]:
    return {s: list(read_jsonl(out / f"{s}.jsonl")) for s in ("train", "dev", "test")}


def test_icd10_dataset_keeps_its_version_the_list_and_one_document(mimic4, codes10, tmp_path):
    out = tmp_path / "ds"
    split = tmp_path / "split.csv"
    split.write_text("_id,split\n202,train\n203,train\n204,val\n205,test\n206,train\n")
    report = prepare_mimic4_dataset(mimic4, codes10, out, split_file=split)
    records = _records(out)
    by_hadm = {r["hadm_id"]: r for recs in records.values() for r in recs}
    assert sorted(by_hadm) == ["202", "203", "204", "205", "206"]  # no ICD-9 admission 201
    assert [r["hadm_id"] for r in records["dev"]] == ["204"]  # Edin's val is our dev
    assert by_hadm["202"]["labels"] == ["0DTJ4ZZ", "I50.9", "N17.9"]  # repeat I509 once
    assert by_hadm["202"]["text"] == "first part\n\nsecond part\n\nan addendum"
    assert by_hadm["205"]["text"] == "note five"  # the radiology report is not joined
    assert by_hadm["204"]["labels"] == ["02HV33Z", "N17.9"]
    assert report["icd_version"] == 10 and report["source"] == "MIMIC-IV v2.2"
    tables = report["code_tables"]
    assert tables["rows_of_the_other_icd_version"] == 3  # 201's three ICD-9 rows
    assert tables["rows_with_unlisted_code"] == 1  # 208's A00.0
    assert tables["admissions_with_an_icd10_code"] == 7
    dropped = report["admissions"]["dropped"]
    assert dropped["has listed code but no discharge summary"]["examples"] == [207]
    assert dropped["has discharge summary but no listed code"]["examples"] == [201, 208, 209]
    assert report["discharge"]["addendum_rows_kept"] == 1
    assert report["discharge"]["rows_of_other_note_types"] == 1
    assert report["discharge"]["admissions_with_several_rows_joined"] == 1
    assert report["split"]["source"] == "split files"
    assert report["label_frequency"]["train"] == {
        "02HV33Z": 0, "0DTJ4ZZ": 1, "E87.2": 2, "I50.9": 2, "N17.9": 1
    }  # fmt: skip
    assert report["codes_without_train_examples"] == ["02HV33Z"]
    rows = {r["code"]: r for r in read_code_table(out / "codes.tsv")}
    # MIMIC-IV's own title where its dictionary has the code, the shipped CMS table's else
    assert rows["I50.9"]["description"] == "Heart failure, unspecified (as MIMIC-IV writes it)"
    assert rows["E87.2"]["description"] == "Acidosis"
    assert (rows["I50.9"]["parent"], rows["I50.9"]["parent_description"]) == (
        "I50",
        "Heart failure",
    )
    assert rows["0DTJ4ZZ"]["parent"] == "0DT"
    assert "Resection" in rows["0DTJ4ZZ"]["parent_description"]
    assert rows["02HV33Z"]["parent"] == "02H"
    assert "Insertion" in rows["02HV33Z"]["parent_description"]
    assert {r["kind"] for c, r in rows.items() if len(c) == 7} == {"procedure"}


def test_icd9_dataset_of_mimic4(mimic4, tmp_path):
    codes = tmp_path / "codes9.txt"
    codes.write_text("428.0\n96.71\n", encoding="utf-8")
    out = tmp_path / "ds9"
    opts = Mimic4Options(version=9, fractions={"train": 1, "dev": 0, "test": 0})
    report = prepare_mimic4_dataset(mimic4, codes, out, opts)
    records = _records(out)
    assert [(r["hadm_id"], r["labels"]) for r in records["train"]] == [("201", ["428.0", "96.71"])]
    assert report["code_tables"]["rows_of_the_other_icd_version"] == 12
    rows = {r["code"]: r for r in read_code_table(out / "codes.tsv")}
    assert rows["428.0"]["parent"] == "428" and rows["96.71"]["parent"] == "96"


def test_seeded_split_is_stratified_and_reported(mimic4, codes10, tmp_path):
    out = tmp_path / "ds"
    opts = Mimic4Options(version=10, seed=3, fractions={"train": 0.6, "dev": 0.2, "test": 0.2})
    report = prepare_mimic4_dataset(mimic4, codes10, out, opts)
    assert report["split"]["source"].startswith("seeded patient-level split stratified")
    assert sum(report["split"]["sizes"].values()) == 5
    assert any("no split files given" in w for w in report["warnings"])
    again = prepare_mimic4_dataset(mimic4, codes10, tmp_path / "again", opts)
    assert again["split"]["sizes"] == report["split"]["sizes"]
    assert _records(out) == _records(tmp_path / "again")


def test_split_file_naming_unknown_admissions_is_refused(mimic4, codes10, tmp_path):
    split = tmp_path / "split.csv"
    split.write_text("_id,split\n202,train\n999,test\n")
    with pytest.raises(InputError, match=r"split.csv, field HADM_ID: 1 HADM_ID\(s\) of the test"):
        prepare_mimic4_dataset(mimic4, codes10, tmp_path / "ds", split_file=split)
    assert not (tmp_path / "ds").exists()


def test_an_icd9_list_for_an_icd10_dataset_is_refused_before_reading(mimic4, tmp_path):
    codes = tmp_path / "codes.txt"
    codes.write_text("428.0\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"codes.txt, row 1, field code: '428.0' is not an ICD-10"):
        prepare_mimic4_dataset(mimic4, codes, tmp_path / "ds")


def test_counted_code_lists(mimic4, tmp_path):
    """Counted as Edin et al. count: once per distinct discharge row of an admission
    (202 has 3, 205 has 2: a DS and an RR row), never for 207, which has no note."""
    out = tmp_path / "list.txt"
    chosen = write_code_list(mimic4, 10, out, top=3)
    # I50.9: 202 (x3), 203, 205 (x2); N17.9: 202 (x3), 204; 0DTJ4ZZ: 202 (x3)
    assert chosen == [("I50.9", 6), ("N17.9", 4), ("0DTJ4ZZ", 3)]
    assert [c.code for c in read_code_list(out, version=10)] == ["0DTJ4ZZ", "I50.9", "N17.9"]
    text = out.read_text()
    assert "the 3 most frequent ICD-10 codes" in text
    assert "of the 6 admissions that have both" in text and "(1 coded admissions" in text
    full = write_code_list(mimic4, 10, tmp_path / "full.txt", min_count=2)
    assert [c for c, _ in full] == ["I50.9", "N17.9", "0DTJ4ZZ", "E87.2"]
    everything = write_code_list(mimic4, 10, tmp_path / "all.txt")
    assert [c for c, _ in everything] == [
        "I50.9", "N17.9", "0DTJ4ZZ", "E87.2", "02HV33Z", "A00.0"
    ]  # fmt: skip
    with pytest.raises(InputError, match="no ICD-10 code is carried by 7 or more"):
        write_code_list(mimic4, 10, tmp_path / "none.txt", min_count=7)
    assert not (tmp_path / "none.txt").exists()


def _threshold_world(root: Path) -> Path:
    """Codes around a min count of 3. K10.0: two admissions with a note and one without
    (3 in hosp/, 2 in Edin et al.'s dataset). K20.0: one admission with three distinct
    discharge rows (3). K30.0: one admission with its one text written twice (1), and one
    with an empty text (not a row: pandas reads it as missing), and one more with a note."""
    _write(root, "diagnoses_icd", [
        [1, 301, 1, "K100", 10], [2, 302, 1, "K100", 10], [3, 303, 1, "K100", 10],
        [4, 304, 1, "K200", 10],
        [5, 305, 1, "K300", 10], [6, 306, 1, "K300", 10], [7, 307, 1, "K300", 10],
    ])  # fmt: skip
    _write(root, "procedures_icd", [])
    _write(root, "discharge", [
        ["301-DS-1", 1, 301, "DS", 1, "2160-01-01", "", "a"],
        ["302-DS-1", 2, 302, "DS", 1, "2160-01-01", "", "b"],
        ["304-DS-1", 4, 304, "DS", 1, "2160-01-01", "", "c1"],
        ["304-DS-2", 4, 304, "DS", 2, "2160-01-02", "", "c2"],
        ["304-AD-3", 4, 304, "AD", 3, "2160-01-03", "", "c3"],
        ["305-DS-1", 5, 305, "DS", 1, "2160-01-01", "", "same"],
        ["305-DS-2", 5, 305, "DS", 2, "2160-01-01", "", "same"],
        ["306-DS-1", 6, 306, "DS", 1, "2160-01-01", "", ""],
        ["307-DS-1", 7, 307, "DS", 1, "2160-01-01", "", "d"],
    ])  # fmt: skip
    return root


def test_a_code_near_the_threshold_counts_only_noted_admissions(tmp_path):
    """Edin et al.'s min-count-10 rule at a threshold of 3: an admission without a
    discharge note does not lift a code over it; the rows of one admission do."""
    root = _threshold_world(tmp_path / "mimic-iv")
    chosen = write_code_list(root, 10, tmp_path / "list.txt", min_count=3)
    assert chosen == [("K20.0", 3)]  # K10.0 (2 noted + 1 without a note) is cut
    everything = dict(write_code_list(root, 10, tmp_path / "all.txt"))
    assert everything == {"K20.0": 3, "K10.0": 2, "K30.0": 2}  # 305 once, 306 not, 307


def test_dataset_folder_is_all_or_nothing_and_foreign_files_are_kept(mimic4, codes10, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "my_notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds files that cec prepare does not write"):
        prepare_mimic4_dataset(mimic4, codes10, out)
    assert (out / "my_notes.txt").read_text() == "mine"
    report_path = tmp_path / "ok" / "data_report.json"
    prepare_mimic4_dataset(mimic4, codes10, report_path.parent)
    assert json.loads(report_path.read_text())["n_codes"] == 5
    assert sorted(p.name for p in report_path.parent.iterdir()) == [
        "codes.tsv", "data_report.json", "dev.jsonl", "test.jsonl", "train.jsonl"
    ]  # fmt: skip


def test_an_edin_split_for_a_mimic3_dataset_is_refused(tmp_path):
    from cec.datasets.sources import Source

    source = Source.of({"source": "mimic3"})
    with pytest.raises(ValueError, match="Edin et al. split file is for a MIMIC-IV dataset"):
        source.prepare(tmp_path, tmp_path / "c", tmp_path / "o", source.options(),
                       edin_split=tmp_path / "s.csv")  # fmt: skip


def _discharge_rows(root: Path) -> list[list[str]]:
    """The discharge table's rows (without its header), as strings."""
    text = gzip.decompress((root / "note" / "discharge.csv.gz").read_bytes()).decode("utf-8")
    return list(csv.reader(io.StringIO(text)))[1:]


def test_an_identical_duplicate_discharge_row_is_removed_and_counted(mimic4, codes10, tmp_path):
    """The MIMIC-III rule (cec.datasets.mimic3._read_notes) for note_id, MIMIC-IV's key."""
    rows = _discharge_rows(mimic4)
    five = next(r for r in rows if r[0] == "205-DS-1")
    _write(mimic4, "discharge", [*rows, five])
    out = tmp_path / "ds"
    report = prepare_mimic4_dataset(mimic4, codes10, out, Mimic4Options(progress=False))
    by_hadm = {r["hadm_id"]: r for recs in _records(out).values() for r in recs}
    assert by_hadm["205"]["text"] == "note five"
    assert report["discharge"]["duplicate_rows_removed"] == 1


def test_a_note_id_with_other_content_is_refused(mimic4, codes10, tmp_path):
    rows = _discharge_rows(mimic4)
    five = next(r for r in rows if r[0] == "205-DS-1")
    _write(mimic4, "discharge", [*rows, [*five[:-1], "other text"]])
    out = tmp_path / "ds"
    with pytest.raises(InputError, match="but other content") as err:
        prepare_mimic4_dataset(mimic4, codes10, out, Mimic4Options(progress=False))
    assert (err.value.row, err.value.field) == (len(rows) + 2, "note_id")
    assert "other text" not in str(err.value) and not out.exists()


def test_a_discharge_note_of_another_patient_is_refused(mimic4, codes10, tmp_path):
    """diagnoses_icd gives admission 205 to patient 5; its note says 9."""
    rows = _discharge_rows(mimic4)
    at = next(i for i, r in enumerate(rows) if r[0] == "205-DS-1")
    rows[at][1] = "9"
    _write(mimic4, "discharge", rows)
    out = tmp_path / "ds"
    with pytest.raises(InputError, match="hadm_id 205 belongs to subject_id 5") as err:
        prepare_mimic4_dataset(mimic4, codes10, out, Mimic4Options(progress=False))
    assert (err.value.row, err.value.field) == (at + 2, "subject_id")
    assert not out.exists()


def test_a_table_as_csv_and_csv_gz_is_refused_naming_both(mimic4, codes10, tmp_path):
    _write(mimic4, "discharge", _discharge_rows(mimic4), gz=False)
    out = tmp_path / "ds"
    with pytest.raises(InputError, match="discharge.csv.gz and discharge.csv"):
        prepare_mimic4_dataset(mimic4, codes10, out, Mimic4Options(progress=False))
    assert not out.exists()


def test_edin_et_al_code_lists_with_a_dot_after_every_category_are_read(tmp_path, caplog):
    """Edin et al. write "I10." for a bare category; it is read as the workflow's "I10",
    and the log says how many were."""
    path = tmp_path / "edin.txt"
    path.write_text("I10.\nE87.2\nZ99.\n0DTJ4ZZ\n", encoding="utf-8")
    with caplog.at_level("INFO", logger="cec.icd.code_lists"):
        codes = read_code_list(path, version=10)
    assert [(c.code, c.kind) for c in codes] == [
        ("0DTJ4ZZ", "procedure"), ("E87.2", "diagnosis"), ("I10", "diagnosis"),
        ("Z99", "diagnosis"),
    ]  # fmt: skip
    assert "2 ICD-10 categories written with a trailing dot" in caplog.text
    twice = tmp_path / "twice.txt"
    twice.write_text("I10\nI10.\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"code I10 is listed twice \(first on line 1\)"):
        read_code_list(twice, version=10)
    for bad in ("I1.", "I10.9.", "0DTJ4ZZ."):  # only a 3-character category takes the dot
        (tmp_path / "bad.txt").write_text(f"{bad}\n", encoding="utf-8")
        with pytest.raises(InputError, match="is not an ICD-10 label code"):
            read_code_list(tmp_path / "bad.txt", version=10)
    (tmp_path / "nine.txt").write_text("428.\n", encoding="utf-8")
    with pytest.raises(InputError, match="is not a dotted ICD-9 code"):
        read_code_list(tmp_path / "nine.txt", version=9)
