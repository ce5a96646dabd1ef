"""cec.icd.icd10 over the whole shipped ICD-10-CM / ICD-10-PCS lists, plus hand-known spot
checks."""

from __future__ import annotations

import gzip
import re
import time
from pathlib import Path

import pytest

from cec.icd import icd10
from cec.icd.codes import CodeFormatError, format_icd10
from cec.icd.icd9 import CodeInfo
from cec.icd.icd10 import Icd10Hierarchy

BLOCK = re.compile(r"[A-Z][0-9][0-9A-Z]-[A-Z][0-9][0-9A-Z]")
# The 17 ICD-10-PCS sections (first character), as CMS names them.
PCS_SECTIONS = {
    "0": "Medical and Surgical",
    "1": "Obstetrics",
    "2": "Placement",
    "3": "Administration",
    "4": "Measurement and Monitoring",
    "5": "Extracorporeal or Systemic Assistance and Performance",
    "6": "Extracorporeal or Systemic Therapies",
    "7": "Osteopathic",
    "8": "Other Procedures",
    "9": "Chiropractic",
    "B": "Imaging",
    "C": "Nuclear Medicine",
    "D": "Radiation Therapy",
    "F": "Physical Rehabilitation and Diagnostic Audiology",
    "G": "Mental Health",
    "H": "Substance Abuse Treatment",
    "X": "New Technology",
}


@pytest.fixture(scope="module")
def hierarchy() -> Icd10Hierarchy:
    return Icd10Hierarchy.load()


def test_load_is_cached_and_quick() -> None:
    start = time.perf_counter()
    fresh = icd10._load_shipped.__wrapped__()  # a real read, whatever ran before
    seconds = time.perf_counter() - start
    print(f"ICD-10 hierarchy loaded in {seconds:.2f} s")
    assert seconds < 5  # about 0.3 s here; jobs load it, so a 10x slowdown is a bug
    assert Icd10Hierarchy.load() is Icd10Hierarchy.load()
    assert fresh.leaves("diagnosis") == Icd10Hierarchy.load().leaves("diagnosis")


# FY2019-FY2025 ICD-10-CM (headers included) and FY2024 + FY2025 ICD-10-PCS; see PROVENANCE.md
@pytest.mark.parametrize(("kind", "count"), [("diagnosis", 97_896), ("procedure", 78_928)])
def test_code_counts(hierarchy: Icd10Hierarchy, kind, count) -> None:
    leaves = hierarchy.leaves(kind)
    assert len(leaves) == count
    assert len(set(leaves)) == count
    assert leaves == sorted(leaves)
    assert len(hierarchy.d_icd_rows(kind)) == count


@pytest.mark.parametrize("kind", ["diagnosis", "procedure"])
def test_every_code_has_a_title_and_a_titled_parent(hierarchy: Icd10Hierarchy, kind) -> None:
    for code in hierarchy.leaves(kind):
        info = hierarchy.info(code, kind)
        assert info is not None, code
        assert (info.code, info.kind, info.short_title) == (code, kind, "")
        assert info.title and info.title == info.title.strip(), code
        assert info.title.isascii(), code  # the CMS code files' spelling
        assert info.parent and info.parent != code, code
        assert info.parent_title and info.parent_title == info.parent_title.strip(), code
        assert hierarchy.title(code, kind) == info.title


@pytest.mark.parametrize("kind", ["diagnosis", "procedure"])
def test_labels_round_trip_and_d_icd_rows_are_undotted(hierarchy: Icd10Hierarchy, kind) -> None:
    leaves = hierarchy.leaves(kind)
    assert all(format_icd10(code, kind) == code for code in leaves)
    rows = hierarchy.d_icd_rows(kind)
    assert all("." not in code and title for code, title in rows)
    assert [code for code, _ in rows] == sorted(code for code, _ in rows)
    assert sorted(format_icd10(code, kind) for code, _ in rows) == leaves
    # the undotted MIMIC string finds the same record as the label
    for code, title in rows[::997]:
        info = hierarchy.info(code, kind)
        assert info is not None and info.title == title
        assert info == hierarchy.info(format_icd10(code, kind), kind)


def test_cm_categories_and_blocks(hierarchy: Icd10Hierarchy) -> None:
    leaves = hierarchy.leaves("diagnosis")
    category_blocks = hierarchy.category_blocks()
    blocks = hierarchy.blocks()
    # every category of the codes is in the category table, and nothing else is
    assert {code[:3] for code in leaves} == set(category_blocks)
    assert len(category_blocks) == 1_917
    # every category is a code of its own (MIMIC lists the headers) in exactly one block
    raw = icd10.read_table("icd10cm_categories.tsv", icd10.CATEGORY_HEADER)
    assert len({row[0] for row in raw}) == len(raw)
    leaf_set = set(leaves)
    for category, block in category_blocks.items():
        assert category in leaf_set, category
        assert block in blocks, category
        assert hierarchy.parent(category, "diagnosis") == block
        assert hierarchy.parent_title(category, "diagnosis") == blocks[block]
    assert set(category_blocks.values()) == set(blocks)  # no block without a category
    for block, title in blocks.items():
        assert BLOCK.fullmatch(block) and block not in leaf_set, block
        assert hierarchy.title(block, "diagnosis") == title
    # a subdivided code's parent is its category, never the block
    for code in leaves:
        if len(code) > 3:
            assert hierarchy.parent(code, "diagnosis") == code[:3], code


def test_pcs_tables(hierarchy: Icd10Hierarchy) -> None:
    tables = hierarchy.pcs_tables()
    leaves = hierarchy.leaves("procedure")
    assert {code[:3] for code in leaves} == set(tables)
    assert len(tables) == 907
    for code in leaves:
        assert hierarchy.parent(code, "procedure") == code[:3], code
    for table, title in tables.items():
        # the title starts with the name of the table's section (the first character)
        assert title.startswith(PCS_SECTIONS[table[0]] + ", "), (table, title)
        assert hierarchy.title(table, "procedure") == title
    assert {table[0] for table in tables} == set(PCS_SECTIONS)


def test_pcs_table_titles_name_body_system_and_operation(hierarchy: Icd10Hierarchy) -> None:
    """Tables that share a character share its name: a shifted axis would break this."""
    tables = hierarchy.pcs_tables()
    assert tables["0DT"] == "Medical and Surgical, Gastrointestinal System, Resection"
    assert tables["0DB"] == "Medical and Surgical, Gastrointestinal System, Excision"
    assert tables["0FT"] == "Medical and Surgical, Hepatobiliary System and Pancreas, Resection"
    assert tables["02H"] == "Medical and Surgical, Heart and Great Vessels, Insertion"
    assert tables["10D"] == "Obstetrics, Pregnancy, Extraction"
    assert tables["3E0"] == (
        "Administration, Physiological Systems and Anatomical Regions, Introduction"
    )
    assert tables["302"] == "Administration, Circulatory, Transfusion"
    assert tables["BW2"] == "Imaging, Anatomical Regions, Computerized Tomography (CT Scan)"
    assert tables["GZ3"] == "Mental Health, Medication Management"  # body system "None"


def test_spot_checks(hierarchy: Icd10Hierarchy) -> None:
    assert hierarchy.info("I50.9", "diagnosis") == CodeInfo(
        code="I50.9",
        kind="diagnosis",
        title="Heart failure, unspecified",
        short_title="",
        parent="I50",
        parent_title="Heart failure",
    )
    assert hierarchy.info("I509", "diagnosis") == hierarchy.info("I50.9", "diagnosis")
    info = hierarchy.info("I10", "diagnosis")
    assert info is not None
    assert info.title == "Essential (primary) hypertension"
    assert (info.parent, info.parent_title) == ("I10-I16", "Hypertensive diseases")
    assert hierarchy.parent("Z66", "diagnosis") == "Z66-Z66"
    assert hierarchy.parent("D62", "diagnosis") == "D60-D64"
    # a header code: MIMIC-IV's d_icd_diagnoses lists it, its parent is its block
    assert hierarchy.parent("I50", "diagnosis") == "I30-I52"
    # deleted in FY2023 (split into E87.20-E87.29), still shipped
    info = hierarchy.info("E872", "diagnosis")
    assert info is not None
    assert (info.code, info.title, info.parent) == ("E87.2", "Acidosis", "E87")
    assert hierarchy.info("E87.20", "diagnosis") is not None
    info = hierarchy.info("S72.001A", "diagnosis")
    assert info is not None
    assert info.title == (
        "Fracture of unspecified part of neck of right femur, initial encounter for closed fracture"
    )
    info = hierarchy.info("0DTJ4ZZ", "procedure")
    assert info is not None
    assert info.title == "Resection of Appendix, Percutaneous Endoscopic Approach"
    assert info.parent == "0DT"
    assert "Gastrointestinal System" in info.parent_title
    assert "Resection" in info.parent_title
    for code in ("02HV33Z", "5A1955Z"):
        info = hierarchy.info(code, "procedure")
        assert info is not None and info.parent == code[:3]
    assert hierarchy.title("5A1955Z", "procedure") == (
        "Respiratory Ventilation, Greater than 96 Consecutive Hours"
    )


def test_titles_of_codes_no_cms_file_still_lists(hierarchy: Icd10Hierarchy) -> None:
    """Deleted before FY2025 and not billable in FY2024: titled from the tabular list,
    in the CMS form (comma before the 7th-character text, ASCII)."""
    info = hierarchy.info("T40.4X1A", "diagnosis")
    assert info is not None
    assert info.title == (
        "Poisoning by other synthetic narcotics, accidental (unintentional), initial encounter"
    )
    rows = icd10.read_table("icd10cm_codes.tsv.gz", icd10.CM_HEADER)
    sources = {row[0]: row[4] for row in rows}
    assert sources["T404X1A"] == "tabular"
    assert sources["E872"] == "cms2025"  # a header since FY2023
    assert sources["I509"] == "cms2024"
    assert sum(source == "tabular" for source in sources.values()) == 309


def test_kinds_never_share_a_code_string(hierarchy: Icd10Hierarchy) -> None:
    diagnoses = set(hierarchy.leaves("diagnosis"))
    procedures = set(hierarchy.leaves("procedure"))
    assert not diagnoses & procedures
    # parents are unique only with their kind: B02 is a PCS table and a CM category
    assert hierarchy.title("B02", "procedure") == (
        "Imaging, Central Nervous System, Computerized Tomography (CT Scan)"
    )
    assert hierarchy.title("B02", "diagnosis") == "Zoster [herpes zoster]"
    # a string of one kind is malformed in the other, never silently another code
    for code, other in (("0DTJ4ZZ", "diagnosis"), ("I50.9", "procedure"), ("I509", "procedure")):
        with pytest.raises(CodeFormatError):
            hierarchy.info(code, other)


def test_unknown_codes(hierarchy: Icd10Hierarchy) -> None:
    assert hierarchy.info("I50.99", "diagnosis") is None  # well formed, never a code
    assert hierarchy.title("I50.99", "diagnosis") is None
    # parents still resolve where the category / table is known (an older release's code)
    assert hierarchy.parent("I50.99", "diagnosis") == "I50"
    assert hierarchy.parent_title("0DTJ4ZX", "procedure").endswith("Resection")
    with pytest.raises(KeyError):
        hierarchy.parent("U99.1", "diagnosis")  # no category U99
    with pytest.raises(KeyError):
        hierarchy.parent_title("0Z00000", "procedure")  # no body system Z in section 0
    with pytest.raises(CodeFormatError):
        hierarchy.parent("I5", "diagnosis")


def _write_gz(path: Path, text: str) -> None:
    path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))


def test_table_checks_raise_on_a_bad_file(tmp_path: Path) -> None:
    header = icd10.PCS_HEADER
    good = "code\tlong_title\treleases\n0DTJ4ZZ\tResection of Appendix\t2024\n"
    _write_gz(tmp_path / "good.tsv.gz", good)
    assert icd10.read_table("good.tsv.gz", header, tmp_path) == [
        ["0DTJ4ZZ", "Resection of Appendix", "2024"]
    ]
    _write_gz(tmp_path / "header.tsv.gz", good.replace("releases", "release"))
    with pytest.raises(RuntimeError, match="header"):
        icd10.read_table("header.tsv.gz", header, tmp_path)
    _write_gz(tmp_path / "fields.tsv.gz", good + "0DTJ0ZZ\tResection\n")
    with pytest.raises(RuntimeError, match="line 3: 2 fields"):
        icd10.read_table("fields.tsv.gz", header, tmp_path)
    (tmp_path / "tab.tsv").write_text(good + "0DTJ0ZZ\tResection\tof\t2024\n")
    with pytest.raises(RuntimeError, match="line 3: 4 fields"):
        icd10.read_table("tab.tsv", header, tmp_path)
    with pytest.raises(RuntimeError, match="header"):
        icd10.parse_table("", "empty.tsv", header)


def test_shipped_tables_are_small_and_gzipped_deterministically() -> None:
    folder = Path(str(icd10._resource_dir()))
    sizes = {path.name: path.stat().st_size for path in folder.iterdir()}
    assert sum(sizes.values()) < 3_000_000, sizes
    for name in sizes:
        if name.endswith(".gz"):
            data = (folder / name).read_bytes()
            # mtime 0 and no FNAME flag: the export rewrites identical bytes
            assert data[4:8] == b"\0\0\0\0" and not data[3] & 0x08, name
        else:
            assert sizes[name] < 1_000_000, name
