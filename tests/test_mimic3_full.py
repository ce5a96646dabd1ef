"""MIMIC-III "full" (caml-mimic's MIMIC-III-full): a code list counted from the tables, on
the miniature MIMIC-III whose every row is known (tests/conftest.py).

The literature's figures, not checked here: caml-mimic's full splits hold 47,723 / 1,631
/ 3,372 admissions (train_full_hadm_ids.csv, dev_ and test_), and the caml-mimic paper
counts 8,922 codes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cec import job_params
from cec.datasets.mimic3 import (
    PrepareOptions,
    check_label_kinds,
    code_table_rows,
    prepare_dataset,
    write_code_list,
)
from cec.datasets.sources import Source
from cec.icd.code_lists import read_code_list
from cec.plumbing.errors import InputError
from cec.plumbing.io import read_jsonl
from tests.conftest import mini_tables
from tests.tiny_workflow import copy_workflow, snakemake

Tables = dict[str, list[tuple[Any, ...]]]


def _more_codes(tables: Tables) -> None:
    """Counts above one, and codes that admissions without a discharge summary carry.

    Discharge summaries: 101, 102, 103; 104's only one is flagged ISERROR, 105 has none.
    """
    tables["DIAGNOSES_ICD"] += [
        (2, 102, 4, "5849"),
        (3, 103, 2, "5849"),  # 584.9: 101, 102, 103 (and 104, flagged)
        (2, 102, 5, "4019"),  # 401.9: 102, 103
        (1, 101, 5, "486"),  # 486: 101 (and 105, without a discharge summary)
    ]
    tables["PROCEDURES_ICD"] += [
        (1, 101, 2, "0407"),  # ICD-9-CM 04.07, caml-mimic's "40.7": 101, 103 (and 105)
        (3, 103, 1, "0407"),
        (5, 105, 2, "0407"),
    ]


# by count, ties by the code string ("40.7" < "401.9": "." sorts before the digits)
CAML = [
    ("584.9", 3), ("40.7", 2), ("401.9", 2), ("486", 1), ("585.9", 1), ("66.", 1),
    ("96.71", 1), ("967.1", 1), ("E849.7", 1), ("V45.81", 1),
]  # fmt: skip
EXACT = [
    ("584.9", 3), ("04.07", 2), ("401.9", 2), ("00.66", 1), ("486", 1), ("585.9", 1),
    ("96.71", 1), ("967.1", 1), ("E849.7", 1), ("V45.81", 1),
]  # fmt: skip


@pytest.fixture
def mimic(mini_mimic: Callable[..., Path]) -> Path:
    return mini_mimic(_more_codes)


def test_counts_and_order_by_hand(mimic: Path, tmp_path: Path) -> None:
    """Once per admission with a discharge summary: the duplicate 5849 row of 101 counts
    once, the diagnosis 967.1 and the procedure 96.71 of 101 are two codes."""
    assert write_code_list(mimic, tmp_path / "caml.txt") == CAML
    assert write_code_list(mimic, tmp_path / "exact.txt", code_format="exact") == EXACT
    text = (tmp_path / "caml.txt").read_text(encoding="utf-8")
    assert "over the 3 coded admissions that have a discharge summary" in text
    assert "(2 coded admissions without one do not count)" in text
    assert "40.7" in text.splitlines()[2] and "are caml-mimic's" in text  # the caml line
    assert [line.split("#")[0].strip() for line in text.splitlines()[4:]] == [c for c, _ in CAML]


def test_a_leading_zero_procedure_is_written_as_the_dataset_writes_it(
    mimic: Path, tmp_path: Path
) -> None:
    caml = dict(write_code_list(mimic, tmp_path / "caml.txt", code_format="caml"))
    exact = dict(write_code_list(mimic, tmp_path / "exact.txt", code_format="exact"))
    assert caml["40.7"] == exact["04.07"] == 2
    assert "04.07" not in caml and "40.7" not in exact
    assert caml["66."] == exact["00.66"] == 1  # 0066: int 66 in caml-mimic, then the dot


def test_admissions_without_a_discharge_summary_do_not_count(mimic: Path, tmp_path: Path) -> None:
    """486 and 40.7 would have 2 and 3 admissions with 105 (a radiology note only), and
    584.9 4 with 104 (its one discharge summary flagged ISERROR=1): neither counts."""
    kept = write_code_list(mimic, tmp_path / "two.txt", min_count=2)
    assert kept == [("584.9", 3), ("40.7", 2), ("401.9", 2)]
    assert "486" not in dict(kept)
    assert write_code_list(mimic, tmp_path / "top.txt", top=2) == [("584.9", 3), ("40.7", 2)]
    # the dataset's own rule: with flagged summaries kept, 104 is an admission of the set
    flagged = dict(write_code_list(mimic, tmp_path / "all.txt", exclude_error_notes=False))
    assert flagged["584.9"] == 4 and flagged["486"] == 1
    with pytest.raises(InputError, match="no ICD-9 code is carried by 4 or more"):
        write_code_list(mimic, tmp_path / "none.txt", min_count=4)


def test_the_list_reads_back_with_its_kinds_and_prepare_takes_it(
    mimic: Path, tmp_path: Path
) -> None:
    listed = tmp_path / "code_list.txt"
    write_code_list(mimic, listed)
    kinds = {c.code: c.kind for c in read_code_list(listed)}
    assert {c for c, k in kinds.items() if k == "procedure"} == {"40.7", "66.", "96.71"}
    assert kinds["967.1"] == "diagnosis" and len(kinds) == len(CAML)
    splits = tmp_path / "splits"
    splits.mkdir()
    files = {}
    for split, hadm in (("train", 101), ("dev", 102), ("test", 103)):
        files[split] = splits / f"{split}_full_hadm_ids.csv"
        files[split].write_text(f"{hadm}\n", encoding="utf-8")
    out = tmp_path / "out"
    options = PrepareOptions(code_format="caml", progress=False)
    prepare_dataset(mimic, listed, out, files, options)
    labels = {s: {r["hadm_id"]: r["labels"] for r in read_jsonl(out / f"{s}.jsonl")} for s in files}
    assert labels["train"]["101"] == ["40.7", "486", "584.9", "585.9", "96.71", "967.1"]
    assert labels["dev"]["102"] == ["401.9", "584.9", "66.", "E849.7", "V45.81"]
    assert labels["test"]["103"] == ["40.7", "401.9", "584.9"]
    rows = {r.split("\t")[0]: r.split("\t") for r in (out / "codes.tsv").read_text().splitlines()}
    assert rows["66."][1:2] == ["procedure"] and "angioplasty" in rows["66."][2]


def test_a_string_two_kinds_write_is_refused(tmp_path: Path) -> None:
    """No format writes one today; a future one must not merge a diagnosis and a
    procedure into one label unseen, nor write a string that reads back as the other kind."""
    with pytest.raises(InputError, match=r"1 label string\(s\) stand for a diagnosis and a proc"):
        check_label_kinds({"diagnosis": {1: {"40.7"}}, "procedure": {2: {"40.7"}}}, tmp_path)
    with pytest.raises(InputError, match="would read back from a code list as another kind"):
        check_label_kinds({"diagnosis": {1: {"40.7"}}, "procedure": {}}, tmp_path)
    check_label_kinds({"diagnosis": {1: {"584.9"}}, "procedure": {1: {"66.", "96.71"}}}, tmp_path)


def test_a_caml_string_without_a_known_code_is_kept_untitled(tmp_path: Path) -> None:
    """caml's "5." stands for no v32 code: codes.tsv keeps it untitled (warned about, as
    any code missing from the dictionaries) instead of failing on its shape."""
    listed = tmp_path / "codes.txt"
    listed.write_text("5.\n66.\n", encoding="utf-8")
    rows = code_table_rows(listed, "caml")
    assert [(r["code"], r["kind"], r["description"]) for r in rows][0] == ("5.", "procedure", "")


def test_the_source_and_the_job_params_count_mimic3() -> None:
    assert Source("mimic3").counting_tables == ("DIAGNOSES_ICD", "PROCEDURES_ICD", "NOTEEVENTS")
    config = {
        "datasets": {
            "full": {"codes": {"min_count": 1}, "code_format": "caml"},
            "plain": {"codes": {"top": 5}, "exclude_error_notes": False},
            "iv": {"source": "mimic4", "icd_version": 10, "codes": {"min_count": 10}},
        }
    }
    assert job_params.count_codes(config, "full") == {
        "code_format": "caml", "exclude_error_notes": True, "min_count": 1, "top": None,
    }  # fmt: skip
    assert job_params.count_codes(config, "plain") == {
        "code_format": "exact", "exclude_error_notes": False, "min_count": 1, "top": 5,
    }  # fmt: skip
    # a MIMIC-IV list takes its ICD version from the source
    assert job_params.count_codes(config, "iv") == {"min_count": 10, "top": None}


def test_a_mimic3_dataset_with_a_counted_list_plans_count_codes(tmp_path: Path) -> None:
    """A dry run of the demo (the synthetic MIMIC-III) with a counted MIMIC-III dataset:
    count_codes writes its list, and prepare reads it."""
    work = copy_workflow(tmp_path)
    config = yaml.safe_load((work / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["datasets"]["mimic3_full"] = {
        "codes": {"min_count": 1},
        "code_format": "caml",
        "prepare_only": True,
    }
    (work / "config" / "full.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    target = "results/data/mimic3_full/data_report.json"
    dry = snakemake([target, "-n", "--configfile", "config/full.yaml"], work)
    text = dry.stdout + dry.stderr
    assert dry.returncode == 0, text[-3000:]
    assert "rule count_codes" in text and "results/data/mimic3_full/code_list.txt" in text
    assert "rule prepare_dataset" in text


MARKER = "QZX-PRIVATE-NOTE-QZX"


def test_counting_keeps_no_note_text(mini_mimic: Callable[..., Path], tmp_path: Path) -> None:
    """The list holds codes and counts only, and an error about a note row names its row
    and field, never the field's content."""
    mimic = mini_mimic(_more_codes)
    listed = tmp_path / "list.txt"
    write_code_list(mimic, listed)
    text = listed.read_text(encoding="utf-8")
    for note in mini_tables()["NOTEEVENTS"]:
        assert str(note[-1]) not in text

    def bad_admission(tables: Tables) -> None:
        row = tables["NOTEEVENTS"][3]  # 102's discharge summary
        tables["NOTEEVENTS"][3] = (row[0], f"102 {MARKER}", *row[2:-1], MARKER)

    broken = mini_mimic(bad_admission)
    with pytest.raises(InputError, match="field HADM_ID: not an integer") as info:
        write_code_list(broken, tmp_path / "broken.txt")
    assert MARKER not in str(info.value)
