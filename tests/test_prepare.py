"""Dataset preparation on a miniature MIMIC whose every row is known."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest

from cec.datasets.mimic3 import PrepareOptions, prepare_dataset
from cec.datasets.splits import patient_split
from cec.plumbing.errors import InputError
from cec.plumbing.io import read_jsonl
from tests.conftest import NOTE_A, NOTE_A_ADDENDUM, NOTE_B

CODES = ["584.9", "585.9", "96.71", "V45.81", "E849.7", "00.66", "486"]
QUIET = PrepareOptions(progress=False)


def _split_dir(tmp_path: Path, train: list[int], dev: list[int], test: list[int]) -> dict:
    folder = tmp_path / "splits"
    folder.mkdir(exist_ok=True)
    files = {}
    for name, ids in (("train", train), ("dev", dev), ("test", test)):
        path = folder / f"{name}_50_hadm_ids.csv"
        path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
        files[name] = path
    return files


def _records(out: Path, split: str) -> dict[str, dict]:
    return {r["hadm_id"]: r for r in read_jsonl(out / f"{split}.jsonl")}


def test_labels_formatting_joining_and_report(mini_mimic, code_list, tmp_path):
    mimic = mini_mimic()
    files = _split_dir(tmp_path, [101], [102], [103])
    out = tmp_path / "out"
    report = prepare_dataset(mimic, code_list(CODES), out, files, QUIET)

    train = _records(out, "train")
    dev = _records(out, "dev")
    assert list(train) == ["101"]
    # 9671 is procedure 96.71 from PROCEDURES_ICD; as a diagnosis it is 967.1 (unlisted).
    # the duplicate 5849 row yields one label; labels are sorted dotted strings.
    assert train["101"]["labels"] == ["584.9", "585.9", "96.71"]
    assert train["101"]["subject_id"] == "1"
    # report first, then addendum, whatever their order in the file
    assert train["101"]["text"] == NOTE_A.strip() + "\n\n" + NOTE_A_ADDENDUM.strip()
    assert dev["102"]["labels"] == ["00.66", "E849.7", "V45.81"]
    assert dev["102"]["text"] == NOTE_B
    assert _records(out, "test") == {}

    assert report["DIAGNOSES_ICD"]["duplicate_code_rows_removed"] == 1
    assert report["DIAGNOSES_ICD"]["rows_without_code"] == 1
    assert report["NOTEEVENTS"]["discharge_rows_without_hadm_id"] == 1
    assert report["NOTEEVENTS"]["discharge_rows_flagged_iserror"] == 1
    assert report["NOTEEVENTS"]["other_categories_ignored"] == {"Nursing": 1, "Radiology": 1}
    dropped = report["admissions"]["dropped"]
    assert dropped["in a split file but has no listed code"]["examples"] == [103]
    # 104's only discharge summary is flagged ISERROR; 105 has none
    assert dropped["has listed code but no discharge summary"]["examples"] == [104, 105]
    assert report["label_frequency"]["train"]["584.9"] == 1
    assert report["split"]["source"] == "split files"
    assert any("test split is empty" in w for w in report["warnings"])
    on_disk = json.loads((out / "data_report.json").read_text())
    assert on_disk["split"]["sizes"] == {"train": 1, "dev": 1, "test": 0}

    rows = (out / "codes.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["code", "kind", "description", "parent", "parent_description"]
    table = {r.split("\t")[0]: r.split("\t") for r in rows[1:]}
    assert [r for r in table] == sorted(CODES)
    assert table["96.71"][1:4] == [
        "procedure",
        "Continuous invasive mechanical ventilation for less than 96 consecutive hours",
        "96",
    ]
    assert table["584.9"][3] == "584"
    assert table["E849.7"][3] == "E849"


def test_iserror_notes_can_be_kept(mini_mimic, code_list, tmp_path):
    files = _split_dir(tmp_path, [101], [102], [104])
    opts = PrepareOptions(progress=False, exclude_error_notes=False)
    prepare_dataset(mini_mimic(), code_list(CODES), tmp_path / "out", files, opts)
    assert _records(tmp_path / "out", "test")["104"]["labels"] == ["584.9"]


def test_plain_csv_tables_are_read(mini_mimic, code_list, tmp_path):
    files = _split_dir(tmp_path, [101], [102], [103])
    prepare_dataset(mini_mimic(gz=False), code_list(CODES), tmp_path / "out", files, QUIET)
    assert list(_records(tmp_path / "out", "train")) == ["101"]


def test_labels_are_restricted_to_the_code_list(mini_mimic, code_list, tmp_path):
    files = _split_dir(tmp_path, [101], [102], [103])
    report = prepare_dataset(
        mini_mimic(), code_list(["585.9", "V45.81"]), tmp_path / "o", files, QUIET
    )
    assert _records(tmp_path / "o", "train")["101"]["labels"] == ["585.9"]
    assert _records(tmp_path / "o", "dev")["102"]["labels"] == ["V45.81"]
    assert report["n_codes"] == 2


def test_seeded_patient_split_without_split_files(mini_mimic, code_list, tmp_path):
    def more(tables):
        # ten more patients, subject 50 with two stays
        for i in range(10):
            hadm, subject = 200 + i, 40 + i if i < 9 else 48
            tables["NOTEEVENTS"].append(
                (
                    subject,
                    hadm,
                    "2150-01-01",
                    None,
                    None,
                    "Discharge summary",
                    "Report",
                    None,
                    None,
                    f"n{i}",
                )
            )
            tables["DIAGNOSES_ICD"].append((subject, hadm, 1, "5849"))

    mimic = mini_mimic(more)
    opts = PrepareOptions(
        progress=False, seed=3, fractions={"train": 0.5, "dev": 0.25, "test": 0.25}
    )
    report = prepare_dataset(mimic, code_list(CODES), tmp_path / "a", None, opts)
    assert report["split"]["source"].startswith("seeded patient-level split")
    assert sum(report["split"]["sizes"].values()) == 12  # 101, 102 and the ten
    owner = {}
    for split in ("train", "dev", "test"):
        for rec in read_jsonl(tmp_path / "a" / f"{split}.jsonl"):
            owner.setdefault(rec["subject_id"], set()).add(split)
    assert all(len(s) == 1 for s in owner.values())  # no patient in two splits
    prepare_dataset(mimic, code_list(CODES), tmp_path / "b", None, opts)
    for split in ("train", "dev", "test"):
        assert (tmp_path / "a" / f"{split}.jsonl").read_bytes() == (
            tmp_path / "b" / f"{split}.jsonl"
        ).read_bytes()


def test_patient_split_ignores_input_order_and_tracks_fractions():
    admissions = {1000 + i: i // 2 for i in range(200)}  # 100 patients, 2 stays each
    fractions = {"train": 0.7, "dev": 0.1, "test": 0.2}
    a = patient_split(admissions, fractions, seed=1)
    b = patient_split(dict(reversed(list(admissions.items()))), fractions, seed=1)
    assert a == b
    assert [len(a[s]) for s in ("train", "dev", "test")] == [140, 20, 40]
    c = patient_split(admissions, fractions, seed=2)
    assert a != c


def _gunzip_text(path: Path) -> str:
    with gzip.open(path, "rt") as fh:
        return fh.read()


def _gunzip_bytes(path: Path) -> bytes:
    with gzip.open(path, "rb") as fh:
        return fh.read()


# --- bad input: a clear error naming the file, row and field; nothing written ---


def _assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*"))


def test_missing_table(mini_mimic, code_list, tmp_path):
    mimic = mini_mimic()
    (mimic / "PROCEDURES_ICD.csv.gz").unlink()
    out = tmp_path / "out"
    with pytest.raises(InputError, match="PROCEDURES_ICD not found"):
        prepare_dataset(mimic, code_list(CODES), out, None, QUIET)
    _assert_nothing_written(out)


def test_renamed_column(mini_mimic, code_list, tmp_path):
    mimic = mini_mimic()
    path = mimic / "DIAGNOSES_ICD.csv.gz"
    text = _gunzip_text(path).replace('"ICD9_CODE"', '"ICD9"', 1)
    with gzip.open(path, "wt") as fh:
        fh.write(text)
    out = tmp_path / "out"
    with pytest.raises(InputError) as err:
        prepare_dataset(mimic, code_list(CODES), out, None, QUIET)
    assert err.value.field == "ICD9_CODE" and err.value.row == 1
    assert "DIAGNOSES_ICD.csv.gz" in str(err.value) and "missing column" in str(err.value)
    _assert_nothing_written(out)


def test_non_utf8_bytes_name_row_and_field(mini_mimic, code_list, tmp_path):
    mimic = mini_mimic()
    path = mimic / "NOTEEVENTS.csv.gz"
    raw = _gunzip_bytes(path).replace(b"with a comma", b"with \xff comma")
    with gzip.open(path, "wb") as fh:
        fh.write(raw)
    out = tmp_path / "out"
    with pytest.raises(InputError) as err:
        prepare_dataset(mimic, code_list(CODES), out, None, QUIET)
    assert err.value.field == "TEXT"
    assert err.value.row == 5  # header is row 1; B's report is the 4th record
    assert "not valid UTF-8" in str(err.value)
    _assert_nothing_written(out)


def test_truncated_gzip(mini_mimic, code_list, tmp_path):
    mimic = mini_mimic()
    path = mimic / "NOTEEVENTS.csv.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(InputError, match="truncated"):
        prepare_dataset(mimic, code_list(CODES), tmp_path / "out", None, QUIET)


def test_split_file_with_unknown_hadm_ids(mini_mimic, code_list, tmp_path):
    files = _split_dir(tmp_path, [101, 999991, 999992], [102], [103])
    out = tmp_path / "out"
    with pytest.raises(InputError) as err:
        prepare_dataset(mini_mimic(), code_list(CODES), out, files, QUIET)
    message = str(err.value)
    assert "2 HADM_ID(s) of the train split file" in message
    assert "999991" in message and "train_50_hadm_ids.csv" in message
    _assert_nothing_written(out)


def test_split_file_with_garbage(mini_mimic, code_list, tmp_path):
    files = _split_dir(tmp_path, [101], [102], [103])
    files["dev"].write_text("102\nabc\n")
    with pytest.raises(InputError) as err:
        prepare_dataset(mini_mimic(), code_list(CODES), tmp_path / "o", files, QUIET)
    assert err.value.row == 2 and err.value.field == "HADM_ID"


def test_admission_in_two_splits(mini_mimic, code_list, tmp_path):
    files = _split_dir(tmp_path, [101], [101], [103])
    with pytest.raises(InputError, match="in both the train and dev"):
        prepare_dataset(mini_mimic(), code_list(CODES), tmp_path / "o", files, QUIET)


def test_empty_code_list(mini_mimic, code_list, tmp_path):
    with pytest.raises(InputError, match="code list is empty"):
        prepare_dataset(mini_mimic(), code_list([]), tmp_path / "o", None, QUIET)


def test_malformed_code_in_list(mini_mimic, code_list, tmp_path):
    with pytest.raises(InputError) as err:
        prepare_dataset(mini_mimic(), code_list(["584.9", "58.49.1"]), tmp_path / "o", None, QUIET)
    assert err.value.row == 3 and err.value.field == "code"


def test_code_missing_from_dictionaries_is_kept_and_warned(mini_mimic, code_list, tmp_path):
    def add(tables):
        tables["DIAGNOSES_ICD"].append((2, 102, 5, "V9999"))

    files = _split_dir(tmp_path, [101], [102], [103])
    report = prepare_dataset(
        mini_mimic(add), code_list(CODES + ["V99.99"]), tmp_path / "o", files, QUIET
    )
    assert report["codes_missing_from_dictionaries"] == ["V99.99"]
    assert any("V99.99" in w for w in report["warnings"])
    assert "V99.99" in _records(tmp_path / "o", "dev")["102"]["labels"]


def test_wrong_field_count_names_row(mini_mimic, code_list, tmp_path):
    mimic = mini_mimic()
    path = mimic / "PROCEDURES_ICD.csv.gz"
    text = _gunzip_text(path) + "9,1,101,2\n"
    with gzip.open(path, "wt") as fh:
        fh.write(text)
    with pytest.raises(InputError) as err:
        prepare_dataset(mimic, code_list(CODES), tmp_path / "o", None, QUIET)
    assert err.value.row == 5 and "expected 5 fields, found 4" in str(err.value)


def test_caml_code_strings_match_the_literature(mini_mimic, code_list, tmp_path):
    """KEPT's rare-50 "40.7" is MIMIC's 0407 read as an integer: under `caml` admission
    103 gets that label (titled as 04.07); under `exact` it loses its only label, and the
    report says so, against the split sizes the literature reports."""

    def add_0407(tables):
        tables["PROCEDURES_ICD"].append((3, 103, 1, "0407"))
        tables["D_ICD_PROCEDURES"].append(
            ("0407", "Periph nerv excision NEC",
             "Other excision or avulsion of cranial and peripheral nerves")
        )  # fmt: skip

    mimic = mini_mimic(add_0407)
    codes = code_list(["584.9", "40.7", "V45.81"])
    files = _split_dir(tmp_path, [101], [102], [103])
    sizes = {"train": 1, "dev": 1, "test": 1}
    caml = prepare_dataset(
        mimic, codes, tmp_path / "caml", files,
        PrepareOptions(progress=False, code_format="caml", literature_sizes=sizes),
    )  # fmt: skip
    assert _records(tmp_path / "caml", "test")["103"]["labels"] == ["40.7"]
    assert caml["PROCEDURES_ICD"]["listed_codes_read_as_caml"] == {"40.7": ["04.07"]}
    assert caml["code_strings"]["40.7"].startswith("caml-mimic's string for ICD-9-CM 04.07")
    assert not any("literature" in w for w in caml["warnings"])
    assert "lost_every_label" not in caml["split"] or not caml["split"]["lost_every_label"]
    exact = prepare_dataset(
        mimic, codes, tmp_path / "exact", files,
        PrepareOptions(progress=False, code_format="exact", literature_sizes=sizes),
    )  # fmt: skip
    assert exact["split"]["sizes"]["test"] == 0
    assert exact["split"]["lost_every_label"] == {"test": {"count": 1, "hadm_ids": [103]}}
    assert any(
        "differ from the literature's" in w and "test 0 vs 1 (-1)" in w for w in exact["warnings"]
    )


def test_caml_titles_never_show_a_bare_code(tmp_path):
    """Every code of the shipped lists gets a title and a parent under `caml`; KEPT's
    odd strings get the meaning of the codes they stand for."""
    from cec.datasets.mimic3 import code_table_rows

    repo = Path(__file__).resolve().parents[1]
    for name in ("top50_codes.txt", "rare50_codes.txt"):
        rows = code_table_rows(repo / "config" / "codes" / name, "caml")
        assert all(r["description"] and r["parent"] and r["parent_description"] for r in rows)
    rare = {r["code"]: r for r in code_table_rows(repo / "config/codes/rare50_codes.txt", "caml")}
    assert rare["40.7"]["description"].startswith("Other excision or avulsion of cranial")
    assert (rare["40.7"]["parent"], rare["40.7"]["parent_description"]) == (
        "04", "Operations on cranial and peripheral nerves"
    )  # fmt: skip
    assert rare["52.0"]["description"] == "Pancreatotomy" and rare["52.0"]["parent"] == "52"
    assert rare["77.7"]["description"] == "Excision of bone for graft"
    exact = {r["code"]: r for r in code_table_rows(repo / "config/codes/rare50_codes.txt")}
    assert exact["40.7"]["description"] == ""  # read as ICD-9-CM, "40.7" is no code


def _noteevents_records(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(_gunzip_text(path))))


def _write_noteevents(path: Path, records: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(records)
    path.write_bytes(gzip.compress(buffer.getvalue().encode("utf-8")))


def test_an_identical_duplicate_note_row_is_removed_and_counted(mini_mimic, code_list, tmp_path):
    """A NOTEEVENTS row repeated field for field (same ROW_ID) is one note, not two: the
    document is not doubled, and the report counts what was removed."""
    mimic = mini_mimic()
    path = mimic / "NOTEEVENTS.csv.gz"
    records = _noteevents_records(path)
    b_report = next(r for r in records if r[-1] == NOTE_B)
    _write_noteevents(path, [*records, b_report])
    out = tmp_path / "out"
    files = _split_dir(tmp_path, [101], [102], [103])
    report = prepare_dataset(mimic, code_list(CODES), out, files, QUIET)
    assert _records(out, "dev")["102"]["text"] == NOTE_B
    assert report["NOTEEVENTS"]["duplicate_rows_removed"] == 1


def test_a_note_row_id_with_other_content_is_refused(mini_mimic, code_list, tmp_path):
    mimic = mini_mimic()
    path = mimic / "NOTEEVENTS.csv.gz"
    records = _noteevents_records(path)
    b_report = next(r for r in records if r[-1] == NOTE_B)
    _write_noteevents(path, [*records, [*b_report[:-1], "another text"]])
    out = tmp_path / "out"
    with pytest.raises(InputError, match="but other content") as err:
        prepare_dataset(mimic, code_list(CODES), out, None, QUIET)
    assert (err.value.row, err.value.field) == (len(records) + 1, "ROW_ID")
    assert "another text" not in str(err.value)
    _assert_nothing_written(out)


def test_a_note_of_another_patient_than_its_admission_is_refused(mini_mimic, code_list, tmp_path):
    """DIAGNOSES_ICD gives admission 102 to patient 2; a note giving it to 9 is refused
    (a patient-level split on a wrong patient would leak stays across splits)."""

    def other_patient(tables):
        notes = tables["NOTEEVENTS"]
        notes[3] = (9, *notes[3][1:])  # B's report: (SUBJECT_ID, HADM_ID 102, ...)

    out = tmp_path / "out"
    with pytest.raises(InputError, match="belongs to SUBJECT_ID 2") as err:
        prepare_dataset(mini_mimic(other_patient), code_list(CODES), out, None, QUIET)
    assert (err.value.row, err.value.field) == (5, "SUBJECT_ID")
    assert "NOTEEVENTS" in str(err.value)
    _assert_nothing_written(out)


def test_a_table_as_csv_and_csv_gz_is_refused_naming_both(mini_mimic, code_list, tmp_path):
    mimic = mini_mimic()
    (mimic / "DIAGNOSES_ICD.csv").write_text(_gunzip_text(mimic / "DIAGNOSES_ICD.csv.gz"))
    out = tmp_path / "out"
    with pytest.raises(InputError, match="DIAGNOSES_ICD.csv.gz and DIAGNOSES_ICD.csv"):
        prepare_dataset(mimic, code_list(CODES), out, None, QUIET)
    _assert_nothing_written(out)


def test_lower_case_v_and_e_codes_are_read_as_upper_case(mini_mimic, code_list, tmp_path):
    """One rule with MIMIC-IV (cec.icd.codes.code_text): v4581 is V45.81, not a malformed
    code dropped with a warning."""

    def lower(tables):
        tables["DIAGNOSES_ICD"] = [
            (*row[:3], row[3].lower()) if isinstance(row[3], str) else row
            for row in tables["DIAGNOSES_ICD"]
        ]

    files = _split_dir(tmp_path, [101], [102], [103])
    out = tmp_path / "out"
    report = prepare_dataset(mini_mimic(lower), code_list(CODES), out, files, QUIET)
    assert _records(out, "dev")["102"]["labels"] == ["00.66", "E849.7", "V45.81"]
    assert "rows_with_malformed_code" not in report["DIAGNOSES_ICD"]
