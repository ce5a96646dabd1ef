"""Edin et al.'s split files, the stratified patient split, and ICD-10 code lists."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cec.datasets.splits import SPLITS, patient_split, read_edin_split, stratified_patient_split
from cec.icd.code_lists import read_code_list
from cec.plumbing.errors import InputError


def _edin_csv(path: Path, rows: list[tuple[object, str]], header: str = "_id,split") -> Path:
    path.write_text(header + "\n" + "".join(f"{i},{s}\n" for i, s in rows), encoding="utf-8")
    return path


def test_edin_csv_maps_val_to_dev(tmp_path: Path) -> None:
    path = _edin_csv(tmp_path / "s.csv", [(21, "train"), (22, "val"), (23, "test"), (24, "train")])
    assert read_edin_split(path) == {"train": [21, 24], "dev": [22], "test": [23]}


def test_edin_feather_is_read_like_the_csv(tmp_path: Path) -> None:
    feather = pytest.importorskip("pyarrow.feather")
    import pyarrow as pa

    # Edin et al.'s files hold more columns than these two; the reader takes only these
    table = pa.table({"split": ["val", "train", "test"], "_id": [5, 6, 7], "x": [0, 0, 0]})
    path = tmp_path / "mimiciv_icd10_split.feather"
    feather.write_feather(table, path)
    assert read_edin_split(path) == {"train": [6], "dev": [5], "test": [7]}
    broken = tmp_path / "broken.feather"
    broken.write_bytes(b"not arrow")
    with pytest.raises(InputError, match="broken.feather: not an Edin et al. split file"):
        read_edin_split(broken)


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([(1, "train")], "hadm_id,split", r"row 1: the header has hadm_id, split"),
        ([(1, "train"), (2, "dev")], "_id,split", r"row 3, field split: split 'dev' is none"),
        ([(1, "train"), ("x9", "test")], "_id,split", r"row 3, field _id: not a hadm_id: 'x9'"),
        ([(1, "train"), (1, "test")], "_id,split", r"row 3, field _id: hadm_id 1 listed twice"),
        ([], "_id,split", r"lists no admission"),
    ],
)
def test_bad_edin_files_name_row_and_field(
    tmp_path: Path, rows: list[tuple[object, str]], header: str, message: str
) -> None:
    path = _edin_csv(tmp_path / "s.csv", rows, header)
    with pytest.raises(InputError, match=message):
        read_edin_split(path)


def _long_tail(seed: int = 3) -> tuple[dict[int, int], dict[int, set[str]]]:
    """2,000 admissions of 1,400 patients with 60 codes of Zipf-like frequency."""
    rng = random.Random(seed)
    codes = [f"C{i:02d}" for i in range(60)]
    weights = [1 / (i + 1) ** 1.2 for i in range(60)]
    admissions = {hadm: rng.randrange(1400) for hadm in range(2000)}
    labels = {h: set(rng.choices(codes, weights=weights, k=rng.randint(1, 5))) for h in admissions}
    return admissions, labels


FRACTIONS = {"train": 0.65, "dev": 0.10, "test": 0.25}


def _missing_pairs(split: dict[str, list[int]], labels: dict[int, set[str]]) -> int:
    """(code, split) pairs with no admission, over codes held by 4 or more patients'
    admissions (fewer cannot fill three splits in these proportions)."""
    codes = {c for ls in labels.values() for c in ls}
    holders = {c: sum(c in ls for ls in labels.values()) for c in codes}
    return sum(
        1
        for c in codes
        if holders[c] >= 4
        for s in SPLITS
        if not any(c in labels[h] for h in split[s])
    )


def test_stratified_split_is_patient_level_sized_and_order_free() -> None:
    admissions, labels = _long_tail()
    split = stratified_patient_split(admissions, labels, FRACTIONS, seed=7)
    assert sorted(h for s in SPLITS for h in split[s]) == sorted(admissions)
    owner = {admissions[h]: s for s in SPLITS for h in split[s]}
    assert all(owner[admissions[h]] == s for s in SPLITS for h in split[s]), "patient in 2"
    for s in SPLITS:  # sizes on the fractions within a few admissions
        assert abs(len(split[s]) - FRACTIONS[s] * 2000) <= 6, (s, len(split[s]))
    reversed_input = dict(reversed(list(admissions.items())))
    assert stratified_patient_split(reversed_input, labels, FRACTIONS, seed=7) == split
    assert stratified_patient_split(admissions, labels, FRACTIONS, seed=8) != split


def test_stratification_reaches_rare_codes_that_a_plain_split_misses() -> None:
    admissions, labels = _long_tail()
    plain_missing = [
        _missing_pairs(patient_split(admissions, FRACTIONS, seed), labels) for seed in range(5)
    ]
    strat_missing = [
        _missing_pairs(stratified_patient_split(admissions, labels, FRACTIONS, seed), labels)
        for seed in range(5)
    ]
    print("missing (code, split) pairs: plain", plain_missing, "stratified", strat_missing)
    assert sum(strat_missing) == 0
    assert sum(plain_missing) >= 5  # the plain split leaves rare codes out of dev/test


def test_icd10_code_lists_and_their_errors(tmp_path: Path) -> None:
    shipped = read_code_list("config/codes/mimic4_icd10_top50.txt", version=10)
    assert len(shipped) == 50
    kinds = {c.code: c.kind for c in shipped}
    assert kinds["02HV33Z"] == "procedure" and kinds["I50.9"] == "diagnosis"
    assert kinds["I10"] == "diagnosis" and kinds["F17.200"] == "diagnosis"
    assert sum(k == "procedure" for k in kinds.values()) == 13
    # an ICD-9 string is refused as ICD-10 and the other way round
    for text, version in (("401.9", 10), ("I50.9", 9), ("I509", 10), ("0DTJ4Z", 10)):
        path = tmp_path / "codes.txt"
        path.write_text(f"# a list\n{text}\n", encoding="utf-8")
        with pytest.raises(InputError, match=rf"codes.txt, row 2, field code: '{text}' is not"):
            read_code_list(path, version=version)
