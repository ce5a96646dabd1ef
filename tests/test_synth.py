"""The synthetic MIMIC-III: exact v1.4 shape, real-data quirks, determinism, coupling."""

from __future__ import annotations

import csv
import gzip
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from cec.datasets.mimic3 import PrepareOptions, prepare_dataset
from cec.datasets.splits import find_split_files
from cec.icd.code_lists import read_code_list
from cec.plumbing.io import read_jsonl
from cec.readers.tables import TABLE_COLUMNS
from cec.synth.mimic3_writer import write_synthetic_mimic
from cec.synth.plan import SPLITS, Plan
from tests.conftest import REPO, assert_same_output_but_wall_time

N = 400
TOP50_SIZES = (120, 10, 20)
RARE_SIZES = (100, 5, 12)
SECTIONS = [
    "Admission Date:",
    "Discharge Date:",
    "Date of Birth:",
    "Sex:",
    "Service:",
    "Allergies:",
    "Attending:",
    "Chief Complaint:",
    "Major Surgical or Invasive Procedure:",
    "History of Present Illness:",
    "Past Medical History:",
    "Social History:",
    "Family History:",
    "Physical Exam:",
    "Pertinent Results:",
    "Brief Hospital Course:",
    "Medications on Admission:",
    "Discharge Medications:",
    "Discharge Disposition:",
    "Discharge Diagnosis:",
    "Discharge Condition:",
    "Discharge Instructions:",
    "Followup Instructions:",
]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "mimic"
    write_synthetic_mimic(
        out,
        N,
        11,
        top50_sizes=TOP50_SIZES,
        rare_sizes=RARE_SIZES,
        other_notes_per_admission=3,
        progress=False,
    )
    return out


def _read(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _first_lines(path: Path, n: int = 2) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return [fh.readline() for _ in range(n)]


def test_exact_columns_and_quoting(synth: Path) -> None:
    for table, columns in TABLE_COLUMNS.items():
        header, first = _first_lines(synth / f"{table}.csv.gz")
        assert header == ",".join(f'"{c}"' for c in columns) + "\n"
    _, row = _first_lines(synth / "DIAGNOSES_ICD.csv.gz")
    assert re.fullmatch(r'1,\d+,1\d{5},1,"[0-9EV]{3,5}"\n', row)
    _, row = _first_lines(synth / "D_ICD_PROCEDURES.csv.gz")
    assert row.startswith('1,"0001","')


def test_dictionaries_carry_the_full_lists(synth: Path) -> None:
    assert len(_read(synth / "D_ICD_DIAGNOSES.csv.gz")) == 14567
    assert len(_read(synth / "D_ICD_PROCEDURES.csv.gz")) == 3882


def test_real_data_quirks_are_present(synth: Path) -> None:
    notes = _read(synth / "NOTEEVENTS.csv.gz")
    categories = Counter(n["CATEGORY"] for n in notes)
    assert categories["Discharge summary"] > 0.8 * N
    assert len(categories) >= 4  # Nursing, Radiology, ...
    assert any(n["HADM_ID"] == "" for n in notes)
    assert any(n["HADM_ID"] == "" and n["CATEGORY"] == "Discharge summary" for n in notes)
    assert any(n["DESCRIPTION"] == "Addendum" for n in notes)
    reports = [
        n["TEXT"]
        for n in notes
        if n["CATEGORY"] == "Discharge summary" and n["DESCRIPTION"] == "Report"
    ]
    for text in reports:
        positions = [text.find(s) for s in SECTIONS]
        assert -1 not in positions, [s for s in SECTIONS if s not in text]
        assert positions == sorted(positions)
    joined = "\n".join(reports)
    assert re.search(r"\[\*\*\d{4}-\d{1,2}-\d{1,2}\*\*\]", joined)
    assert re.search(r"\[\*\*(Known lastname|First Name|Doctor|Last Name)[^\]]*\*\*\]", joined)
    assert "{" not in joined  # every template slot was filled

    dx = [r["ICD9_CODE"] for r in _read(synth / "DIAGNOSES_ICD.csv.gz")]
    px = [r["ICD9_CODE"] for r in _read(synth / "PROCEDURES_ICD.csv.gz")]
    assert any(c.startswith("E") for c in dx) and any(c.startswith("V") for c in dx)
    assert all("." not in c for c in dx + px)
    assert any(c.startswith("0") for c in px)  # leading zeros kept as text
    with gzip.open(synth / "PROCEDURES_ICD.csv.gz", "rt") as fh:
        assert re.search(r',"0\d{2,3}"\n', fh.read())


def test_admissions_without_codes_of_interest(synth: Path) -> None:
    top50 = {
        c.code.replace(".", "")
        for c in read_code_list(REPO / "config" / "codes" / "top50_codes.txt")
    }
    codes: dict[str, set[str]] = {}
    for table in ("DIAGNOSES_ICD", "PROCEDURES_ICD"):
        for r in _read(synth / f"{table}.csv.gz"):
            codes.setdefault(r["HADM_ID"], set()).add(r["ICD9_CODE"])
    assert sum(1 for c in codes.values() if not c & top50) >= 5


def test_same_seed_same_bytes(synth: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_synthetic_mimic(
        again,
        N,
        11,
        top50_sizes=TOP50_SIZES,
        rare_sizes=RARE_SIZES,
        other_notes_per_admission=3,
        progress=False,
    )
    assert_same_output_but_wall_time(synth, again, 12)  # 5 tables, 2 x 3 split files, manifest
    other = tmp_path / "other"
    write_synthetic_mimic(
        other,
        N,
        12,
        top50_sizes=TOP50_SIZES,
        rare_sizes=RARE_SIZES,
        other_notes_per_admission=3,
        progress=False,
    )
    assert (other / "NOTEEVENTS.csv.gz").read_bytes() != (synth / "NOTEEVENTS.csv.gz").read_bytes()


def test_rare50_dataset_mirrors_kept(synth: Path, tmp_path: Path) -> None:
    codes = REPO / "config" / "codes" / "rare50_codes.txt"
    report = prepare_dataset(
        synth,
        codes,
        tmp_path / "rare50",
        find_split_files(synth / "splits" / "rare50"),
        PrepareOptions(progress=False, code_format="caml"),
    )
    assert report["split"]["sizes"] == dict(zip(("train", "dev", "test"), RARE_SIZES, strict=False))
    freq = report["label_frequency"]["train"]
    assert set(freq) == {c.code for c in read_code_list(codes)}
    assert all(2 <= n <= 8 for n in freq.values()), freq
    listed = set(freq)
    for split in ("train", "dev", "test"):
        for rec in read_jsonl(tmp_path / "rare50" / f"{split}.jsonl"):
            assert rec["labels"] and set(rec["labels"]) <= listed


def test_synthetic_procedures_are_stored_as_mimic_does(synth: Path, tmp_path: Path) -> None:
    """Zero-padded strings ("0407"), so the demo takes the path real MIMIC does: read as
    exact ICD-9-CM strings, KEPT's "40.7" never matches and its admissions lose it."""
    import gzip

    with gzip.open(synth / "PROCEDURES_ICD.csv.gz", "rt") as fh:
        raw = {line.rsplit(",", 1)[1].strip().strip('"') for line in fh.readlines()[1:]}
    assert "0407" in raw and "407" not in raw
    assert all(len(code) in (3, 4) for code in raw)
    codes = REPO / "config" / "codes" / "rare50_codes.txt"
    report = prepare_dataset(
        synth, codes, tmp_path / "exact", find_split_files(synth / "splits" / "rare50"),
        PrepareOptions(progress=False, code_format="exact"),
    )  # fmt: skip
    assert report["label_frequency"]["train"]["40.7"] == 0


def test_top50_split_files_are_patient_level(synth: Path, tmp_path: Path) -> None:
    codes = REPO / "config" / "codes" / "top50_codes.txt"
    report = prepare_dataset(
        synth,
        codes,
        tmp_path / "top50",
        find_split_files(synth / "splits" / "mimic3_50"),
        PrepareOptions(progress=False),
    )
    assert report["split"]["sizes"] == dict(
        zip(("train", "dev", "test"), TOP50_SIZES, strict=False)
    )
    subjects = {}
    for split in ("train", "dev", "test"):
        for rec in read_jsonl(tmp_path / "top50" / f"{split}.jsonl"):
            subjects.setdefault(rec["subject_id"], set()).add(split)
    assert all(len(s) == 1 for s in subjects.values())
    assert not report["admissions"]["dropped"].get("in a split file but has no listed code")


def test_bag_of_words_is_informative_but_not_near_perfect(tmp_path: Path) -> None:
    """Labels must be coupled to the text (BoW beats chance) but not trivially so."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    mimic = tmp_path / "mimic"
    write_synthetic_mimic(
        mimic,
        2000,
        5,
        top50_sizes=(1000, 100, 300),
        rare_sizes=(100, 5, 12),
        other_notes_per_admission=0,
        progress=False,
    )
    codes = REPO / "config" / "codes" / "top50_codes.txt"
    prepare_dataset(
        mimic,
        codes,
        tmp_path / "d",
        find_split_files(mimic / "splits" / "mimic3_50"),
        PrepareOptions(progress=False),
    )
    train = list(read_jsonl(tmp_path / "d" / "train.jsonl"))
    test = list(read_jsonl(tmp_path / "d" / "test.jsonl"))
    mlb = MultiLabelBinarizer(classes=[c.code for c in read_code_list(codes)])
    y_train = mlb.fit_transform([r["labels"] for r in train])
    y_test = mlb.transform([r["labels"] for r in test])
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vec.fit_transform([r["text"] for r in train])
    x_test = vec.transform([r["text"] for r in test])
    keep = y_train.sum(axis=0) > 0
    clf = OneVsRestClassifier(LogisticRegression(C=10.0, max_iter=2000))
    clf.fit(x_train, y_train[:, keep])
    pred = clf.predict(x_test)
    micro = f1_score(y_test[:, keep], pred, average="micro", zero_division=0)
    print(f"BoW TF-IDF + logistic regression micro-F1 on synthetic MIMIC-III-50: {micro:.3f}")
    assert micro > 0.4, "labels look decoupled from the text"
    assert micro < 0.9, "labels are trivially readable from the text"


def test_small_sets_plan_or_say_why(tmp_path: Path) -> None:
    """30 admissions leave the rare-50 train split 5 admissions: fewer than a code's top
    count (8). Planning used to fail there with "min() arg is an empty sequence"."""
    from cec.synth.plan import _assign_rare_train

    manifest = write_synthetic_mimic(tmp_path / "small", 30, 13, progress=False)
    assert manifest["admissions"] == 30
    codes = [f"C{i}" for i in range(50)]
    slots = _assign_rare_train(codes, 5, 13)
    assert len(slots) == 5 and all(len(set(s)) == len(s) for s in slots)
    per_code = Counter(c for s in slots for c in s)
    assert set(per_code) == set(codes)
    assert 2 <= min(per_code.values()) <= max(per_code.values()) <= 5
    with pytest.raises(ValueError, match="at least 2 admissions"):
        _assign_rare_train(codes, 1, 13)


def test_hpi_order_varies_and_keeps_its_opener() -> None:
    """The HPI's sentences after the opener come in a seeded random order (a shuffle of a
    slice copy used to leave them as drawn, fillers always before findings)."""
    from cec.synth.notes import shuffled_tail

    items = ["opener", "a", "b", "c", "d"]
    orders = {tuple(shuffled_tail(random.Random(seed), items)) for seed in range(30)}
    assert all(order[0] == "opener" and sorted(order) == sorted(items) for order in orders)
    assert len(orders) > 5  # the tail really moves
    assert shuffled_tail(random.Random(4), items) == shuffled_tail(random.Random(4), items)


def test_default_top50_sizes_fit_every_eligible_count() -> None:
    """caml-mimic's shares rounded one by one overshoot some counts (11 eligible gave
    8 + 2 + 2 = 12, and `--admissions 20` failed); the defaults now never exceed the
    eligible admissions, and keep the rounded sizes wherever those fit (same bytes)."""
    from cec.synth.plan import CAML_50_SHARES, default_top50_sizes

    for n in range(0, 5001):
        sizes = default_top50_sizes(n)
        assert len(sizes) == 3 and min(sizes) >= 0 and sum(sizes) <= n, (n, sizes)
        rounded = tuple(round(n * s / sum(CAML_50_SHARES)) for s in CAML_50_SHARES)
        if sum(rounded) <= n:
            assert sizes == rounded, n
        else:
            assert sum(sizes) == n, n


def _split_sizes(plan: Plan) -> tuple[tuple[int, ...], tuple[int, ...]]:
    top = tuple(len(plan.top50_split[s]) for s in SPLITS)
    rare = tuple(len(plan.rare50_split[s]) for s in SPLITS)
    return top, rare


@pytest.mark.parametrize("seed", [13, 14])
def test_every_admission_count_plans_with_default_sizes(seed: int) -> None:
    """From the documented minimum (20) up, and for a few large N: no default split size
    asks for more admissions than the plan has. Seed 14 draws so many multi-stay patients
    at 20 admissions that KEPT's scaled rare-50 sizes did not fit either."""
    from cec.synth.knowledge import load_knowledge
    from cec.synth.plan import make_plan

    knowledge = load_knowledge()
    for n in [*range(20, 121), 500, 2000, 10000]:
        top, rare = _split_sizes(make_plan(n, seed, knowledge))
        assert min(top) >= 1 and min(rare) >= 1 and rare[0] >= 2, (n, top, rare)
        assert sum(top) + sum(rare) <= n


def test_default_sizes_of_the_configs_are_unchanged() -> None:
    """The configs' synthetic sets (config.yaml: 1200 admissions, seed 13; tiny.yaml: 300,
    seed 7) keep the split sizes, hence the bytes, they had before the defaults changed."""
    from cec.synth.knowledge import load_knowledge
    from cec.synth.plan import make_plan

    knowledge = load_knowledge()
    assert _split_sizes(make_plan(1200, 13, knowledge)) == ((528, 103, 113), (182, 15, 104))
    assert _split_sizes(make_plan(300, 7, knowledge)) == ((134, 26, 29), (45, 4, 26))
    assert _split_sizes(make_plan(22, 13, knowledge)) == ((9, 2, 2), (3, 1, 2))


def test_cli_minimum_admissions_with_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cec synth-mimic --admissions 20`, the documented minimum, with every default."""
    from cec.cli import main

    out = tmp_path / "mimic"
    assert main(["synth-mimic", "--out", str(out), "--admissions", "20", "--quiet"]) == 0
    assert "20 admissions" in capsys.readouterr().out
    for name in ("train", "dev", "test"):
        assert (out / "splits" / "mimic3_50" / f"{name}_50_hadm_ids.csv").read_text().strip()
