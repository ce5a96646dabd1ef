"""cec.icd.icd9 over the whole shipped v32 lists, plus spot checks against the official titles."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from cec.icd.codes import CodeFormatError, category, format_code
from cec.icd.icd9 import CodeInfo, Icd9Hierarchy

REFERENCE = Path(__file__).resolve().parents[1] / "config" / "codes"
_PROCEDURE_SHAPE = re.compile(r"^\d{2}\.\d{1,2}$")


@pytest.fixture(scope="module")
def hierarchy() -> Icd9Hierarchy:
    return Icd9Hierarchy.load()


def _reference_codes(name: str) -> list[str]:
    path = REFERENCE / name
    assert path.is_file(), f"the shipped code list {path} is missing"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [s for line in lines if (s := line.split("#", 1)[0].strip())]


def test_load_is_cached() -> None:
    start = time.perf_counter()
    first = Icd9Hierarchy.load()
    print(f"ICD-9 hierarchy loaded in {time.perf_counter() - start:.2f} s")  # no speed test
    assert Icd9Hierarchy.load() is first


@pytest.mark.parametrize(("kind", "count"), [("diagnosis", 14_567), ("procedure", 3_882)])
def test_leaf_counts_match_cms_v32_and_mimic(hierarchy: Icd9Hierarchy, kind, count) -> None:
    leaves = hierarchy.leaves(kind)
    assert len(leaves) == count
    assert len(set(leaves)) == count
    assert leaves == sorted(leaves)
    assert len(hierarchy.d_icd_rows(kind)) == count


@pytest.mark.parametrize("kind", ["diagnosis", "procedure"])
def test_every_leaf_has_titles_and_a_titled_parent(hierarchy: Icd9Hierarchy, kind) -> None:
    for code in hierarchy.leaves(kind):
        info = hierarchy.info(code, kind)
        assert info is not None, code
        assert info.code == code
        assert info.kind == kind
        assert info.title.strip() and info.short_title.strip(), code
        assert info.parent.strip() and info.parent_title.strip(), code
        assert info.parent != code, code


@pytest.mark.parametrize("kind", ["diagnosis", "procedure"])
def test_d_icd_rows_are_undotted_and_round_trip(hierarchy: Icd9Hierarchy, kind) -> None:
    rows = hierarchy.d_icd_rows(kind)
    assert all("." not in code for code, _, _ in rows)
    assert sorted(format_code(code, kind) for code, _, _ in rows) == hierarchy.leaves(kind)
    # CMS order is the order of the undotted strings.
    assert [code for code, _, _ in rows] == sorted(code for code, _, _ in rows)


def test_d_icd_rows_keep_non_ascii_titles(hierarchy: Icd9Hierarchy) -> None:
    long_titles = {code: long for code, _, long in hierarchy.d_icd_rows("diagnosis")}
    assert long_titles["38600"] == "Ménière's disease, unspecified"


def test_procedure_leaves_cover_all_100_categories(hierarchy: Icd9Hierarchy) -> None:
    cats = {category(code, "procedure") for code in hierarchy.leaves("procedure")}
    assert cats == {f"{n:02d}" for n in range(100)}


def test_diagnosis_leaves_span_1234_categories(hierarchy: Icd9Hierarchy) -> None:
    cats = {category(code, "diagnosis") for code in hierarchy.leaves("diagnosis")}
    assert len(cats) == 1234
    for cat in cats:
        assert hierarchy.parent_title(cat, "diagnosis").strip(), cat


# Three KEPT rare-50 procedure labels are not CMS v32 leaves, so they have no title in
# D_ICD_PROCEDURES either: 52.0 (Pancreatotomy) and 77.7 (Excision of bone for graft) are
# subdivided subcategories, and 40.7 is no ICD-9-CM code at all (most likely 04.07 after
# caml-mimic's integer read of ICD9_CODE dropped the leading zero). Their categories exist,
# so their parents resolve.
NOT_V32_LEAVES = {
    "top50_codes.txt": set(),
    "rare50_codes.txt": {"40.7", "52.0", "77.7"},
}


@pytest.mark.parametrize("name", ["top50_codes.txt", "rare50_codes.txt"])
def test_reference_codes_resolve(hierarchy: Icd9Hierarchy, name: str) -> None:
    codes = _reference_codes(name)
    assert len(codes) == 50
    not_leaves = set()
    for code in codes:
        kind = "procedure" if _PROCEDURE_SHAPE.match(code) else "diagnosis"
        assert format_code(code, kind) == code
        assert hierarchy.parent(code, kind).strip(), code
        assert hierarchy.parent_title(code, kind).strip(), code
        info = hierarchy.info(code, kind)
        if info is None:
            not_leaves.add(code)
            continue
        assert info.code == code
        assert info.title and info.parent and info.parent_title
    assert not_leaves == NOT_V32_LEAVES[name]


@pytest.mark.parametrize(
    ("code", "kind", "parent", "parent_title"),
    [
        ("584.9", "diagnosis", "584", "Acute kidney failure"),
        ("96.71", "procedure", "96", "Nonoperative intubation and irrigation"),
        ("486", "diagnosis", "480-488", "Pneumonia and influenza"),
        ("E849.7", "diagnosis", "E849", "Place of occurrence"),
        ("V45.81", "diagnosis", "V45", "Other postprocedural states"),
        ("96.6", "procedure", "96", "Nonoperative intubation and irrigation"),
        ("38.93", "procedure", "38", "Incision, excision, and occlusion of vessels"),
        ("99.04", "procedure", "99", "Other nonoperative procedures"),
        ("00.66", "procedure", "00", "Procedures and interventions, not elsewhere classified"),
        ("17.36", "procedure", "17", "Other miscellaneous procedures"),
        ("038.9", "diagnosis", "038", "Septicemia"),
        (
            "311",
            "diagnosis",
            "300-316",
            "Neurotic disorders, personality disorders, and other nonpsychotic mental disorders",
        ),
        ("412", "diagnosis", "410-414", "Ischemic heart disease"),
        (
            "496",
            "diagnosis",
            "490-496",
            "Chronic obstructive pulmonary disease and allied conditions",
        ),
        ("990", "diagnosis", "990-995", "Other and unspecified effects of external causes"),
    ],
)
def test_spot_checks(hierarchy: Icd9Hierarchy, code, kind, parent, parent_title) -> None:
    assert hierarchy.parent(code, kind) == parent
    assert hierarchy.parent_title(code, kind) == parent_title
    info = hierarchy.info(code, kind)
    assert info is not None
    assert (info.parent, info.parent_title) == (parent, parent_title)


def test_spot_check_leaf_titles(hierarchy: Icd9Hierarchy) -> None:
    assert hierarchy.info("584.9", "diagnosis") == CodeInfo(
        code="584.9",
        kind="diagnosis",
        title="Acute kidney failure, unspecified",
        short_title="Acute kidney failure NOS",
        parent="584",
        parent_title="Acute kidney failure",
    )
    info = hierarchy.info("96.71", "procedure")
    assert info is not None
    assert (
        info.title
        == "Continuous invasive mechanical ventilation for less than 96 consecutive hours"
    )
    info = hierarchy.info("486", "diagnosis")
    assert info is not None
    assert info.title == "Pneumonia, organism unspecified"


def test_info_accepts_mimic_dotless_codes(hierarchy: Icd9Hierarchy) -> None:
    assert hierarchy.info("5849", "diagnosis") == hierarchy.info("584.9", "diagnosis")
    assert hierarchy.info("0066", "procedure") == hierarchy.info("00.66", "procedure")
    # Same digits, other table: 967.1 is a diagnosis leaf in its own right.
    info = hierarchy.info("9671", "diagnosis")
    assert info is not None
    assert (info.code, info.parent) == ("967.1", "967")


def test_info_is_none_for_codes_not_in_v32(hierarchy: Icd9Hierarchy) -> None:
    assert hierarchy.info("584", "diagnosis") is None  # subdivided category, not a leaf
    assert hierarchy.info("250.0", "diagnosis") is None  # needs a 5th digit
    assert hierarchy.info("96.7", "procedure") is None  # subdivided
    assert hierarchy.info("999.99", "diagnosis") is None


def test_parent_of_codes_that_are_not_leaves(hierarchy: Icd9Hierarchy) -> None:
    assert hierarchy.parent("250.0", "diagnosis") == "250"
    assert hierarchy.parent_title("250.0", "diagnosis") == "Diabetes mellitus"
    assert hierarchy.parent("584", "diagnosis") == "580-589"
    assert hierarchy.parent("V45", "diagnosis") == "V40-V49"
    assert hierarchy.parent("E849", "diagnosis") == "E846-E849"
    assert hierarchy.parent("96.7", "procedure") == "96"
    # The two chapters without sections act as their own block.
    assert hierarchy.parent("280", "diagnosis") == "280-289"
    assert hierarchy.parent("740", "diagnosis") == "740-759"


def test_parent_of_unknown_category_is_a_key_error(hierarchy: Icd9Hierarchy) -> None:
    with pytest.raises(KeyError):
        hierarchy.parent("247.1", "diagnosis")  # 247 is not an ICD-9-CM category
    with pytest.raises(KeyError):
        hierarchy.parent_title("V99.1", "diagnosis")


def test_malformed_codes_raise_code_format_error(hierarchy: Icd9Hierarchy) -> None:
    with pytest.raises(CodeFormatError):
        hierarchy.info("66", "procedure")
    with pytest.raises(CodeFormatError):
        hierarchy.parent("96.71", "diagnosis")
