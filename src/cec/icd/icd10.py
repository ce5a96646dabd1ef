"""The ICD-10-CM and ICD-10-PCS code lists and the one-level hierarchy the workflow uses.

MIMIC-IV labels need what MIMIC-III labels get from `cec.icd.icd9`: a title, a parent and the
parent's title for the concept prompts and codes.tsv, and complete code lists for tests and
synthetic d_icd_* tables. MIMIC-IV's d_icd_diagnoses / d_icd_procedures list codes of
several fiscal years, some deleted since (E87.2 "Acidosis" was split in FY2023), so the
shipped lists are the union of the releases the packaged CMS data holds: ICD-10-CM FY2019 to
FY2025, headers included; ICD-10-PCS FY2024 and FY2025. Everything comes from the tables in
`cec/resources/icd10/` (see PROVENANCE.md there, which also says what is not covered), so
nothing at run time depends on the network or on the packages they were exported from.

Codes are MIMIC-IV label strings (`cec.readers.mimic4.format_icd10`): ICD-10-CM dotted after the
3-character category (I50.9, S72.001A; a category stays I50), ICD-10-PCS as its 7
characters (0DTJ4ZZ). Every method also takes MIMIC's undotted form.

Parent rule:

* a diagnosis's parent is its 3-character category: I50.9 -> I50 "Heart failure";
* a diagnosis that *is* a category (I10, D62, Z66, or the header I50) has its block of the
  tabular list as parent, taken from FY2019 (the fixed MIMIC-era release), or for the seven
  categories created later from the release that created them: I10 -> I10-I16
  "Hypertensive diseases". A one-category block is written Z66-Z66, so a block never reads
  like a category;
* a procedure's parent is its ICD-10-PCS table, the first 3 characters (section, body
  system, root operation): 0DTJ4ZZ -> 0DT "Medical and Surgical, Gastrointestinal System,
  Resection". The table is the level at which CMS publishes PCS (each table is one page of
  the PCS Tables with that heading), and its three axes are the only characters whose
  meaning does not depend on the others, so it is the PCS analogue of a category.

Code strings of the two kinds never coincide, but parent strings can: 59 PCS tables read like
ICD-10-CM categories (B02 is the PCS table "Imaging, Central Nervous System, Computerized
Tomography (CT Scan)" and the CM category "Zoster [herpes zoster]"). A parent is only
unique together with its kind, which is why every method takes the kind.
"""

from __future__ import annotations

import functools
import gzip
from collections.abc import Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType

from cec.icd.codes import Kind, format_icd10
from cec.icd.icd9 import CodeInfo

CM_HEADER = ("code", "long_title", "first_release", "last_release", "source")
CATEGORY_HEADER = ("category", "title", "block")
BLOCK_HEADER = ("block", "title", "first", "last", "release")
PCS_HEADER = ("code", "long_title", "releases")
PCS_TABLE_HEADER = ("table", "title", "source")
INCLUSION_HEADER = ("code", "term")

__all__ = ["CodeInfo", "Icd10Hierarchy", "inclusion_terms"]


def _resource_dir() -> Traversable:
    return files("cec") / "resources" / "icd10"


def parse_table(text: str, name: str, header: tuple[str, ...]) -> list[list[str]]:
    """Rows of a shipped TSV's text, after checking its header and every row's field count."""
    lines = text.splitlines()
    if not lines or tuple(lines[0].split("\t")) != header:
        first = lines[0] if lines else ""
        raise RuntimeError(f"cec resource {name}: header {first!r}, expected {header}")
    rows = [line.split("\t") for line in lines[1:]]
    width = len(header)
    for number, row in enumerate(rows, start=2):
        if len(row) != width:
            raise RuntimeError(f"cec resource {name} line {number}: {len(row)} fields, not {width}")
    return rows


def read_table(
    name: str, header: tuple[str, ...], directory: Traversable | Path | None = None
) -> list[list[str]]:
    """A shipped table (gunzipped if its name ends in .gz), checked by `parse_table`."""
    data = ((directory or _resource_dir()) / name).read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    return parse_table(data.decode("utf-8"), name, header)


def _cm_label(undotted: str) -> str:
    """MIMIC's undotted ICD-10-CM string as its label; the shipped codes are well formed
    (the export checks them, and a test compares the whole list with format_icd10)."""
    return undotted if len(undotted) == 3 else f"{undotted[:3]}.{undotted[3:]}"


class Icd10Hierarchy:
    """Lookup of ICD-10-CM / ICD-10-PCS codes, titles and parents. Build with `load()`."""

    def __init__(
        self,
        cm_rows: list[tuple[str, str]],
        pcs_rows: list[tuple[str, str]],
        categories: Mapping[str, tuple[str, str]],
        blocks: Mapping[str, str],
        pcs_tables: Mapping[str, str],
    ) -> None:
        # (undotted code, long title) in table order, as d_icd_* hold them
        self._rows: dict[Kind, list[tuple[str, str]]] = {
            "diagnosis": list(cm_rows),
            "procedure": list(pcs_rows),
        }
        # label -> long title; the label is what callers hold
        self._titles: dict[Kind, dict[str, str]] = {
            "diagnosis": {_cm_label(code): title for code, title in cm_rows},
            "procedure": dict(pcs_rows),
        }
        self._categories = dict(categories)  # category -> (title, block)
        self._blocks = dict(blocks)  # block -> title
        self._tables = dict(pcs_tables)  # 3-character PCS table -> title
        self._sorted: dict[Kind, tuple[str, ...]] = {}  # leaves(), sorted on first use

    @classmethod
    def load(cls) -> Icd10Hierarchy:
        """The hierarchy of the shipped tables, read once per process and shared."""
        return _load_shipped()

    def info(self, code: str, kind: Kind) -> CodeInfo | None:
        """Title and parent of a shipped code (label or undotted); None if it is not one."""
        label = format_icd10(code, kind)
        title = self._titles[kind].get(label)
        if title is None:
            return None
        parent, parent_title = self._parent(label, kind)
        return CodeInfo(
            code=label,
            kind=kind,
            title=title,
            short_title="",  # the packaged CMS data has no short titles for every code
            parent=parent,
            parent_title=parent_title,
        )

    def title(self, code: str, kind: Kind) -> str | None:
        """The long title of a shipped code, or the title of a CM block (I10-I16) or of a PCS
        table (0DT); None for a well-formed string that is none of these."""
        if kind == "diagnosis" and code in self._blocks:
            return self._blocks[code]
        if kind == "procedure" and code in self._tables:
            return self._tables[code]
        return self._titles[kind].get(format_icd10(code, kind))

    def parent(self, code: str, kind: Kind) -> str:
        """The parent of any code whose category (CM) or table (PCS) is known, shipped code
        or not (MIMIC may hold a code of a release not shipped); KeyError otherwise."""
        return self._parent(format_icd10(code, kind), kind)[0]

    def parent_title(self, code: str, kind: Kind) -> str:
        """The title of `parent(code, kind)`; KeyError if the category or table is unknown."""
        return self._parent(format_icd10(code, kind), kind)[1]

    def _parent(self, label: str, kind: Kind) -> tuple[str, str]:
        prefix = label[:3]
        if kind == "procedure":
            if prefix not in self._tables:
                raise KeyError(f"ICD-10-PCS table {prefix} (of {label}) is not shipped")
            return prefix, self._tables[prefix]
        if prefix not in self._categories:
            raise KeyError(f"ICD-10-CM category {prefix} (of {label}) is not shipped")
        title, block = self._categories[prefix]
        if label != prefix:
            return prefix, title
        return block, self._blocks[block]

    def leaves(self, kind: Kind) -> list[str]:
        """Every shipped code of `kind` as its label string, sorted. For ICD-10-CM this
        includes the header codes (I50, I50.2) that MIMIC-IV's d_icd_diagnoses lists too."""
        if kind not in self._sorted:
            self._sorted[kind] = tuple(sorted(self._titles[kind]))
        return list(self._sorted[kind])

    def d_icd_rows(self, kind: Kind) -> list[tuple[str, str]]:
        """(undotted icd_code, long_title), sorted by code, as d_icd_diagnoses /
        d_icd_procedures hold them for icd_version 10.

        Used to write synthetic MIMIC-IV tables that, like the real ones, list every code
        rather than only the ones a test happens to use.
        """
        return list(self._rows[kind])

    def category_blocks(self) -> dict[str, str]:
        """ICD-10-CM category -> its block (I10 -> I10-I16)."""
        return {category: block for category, (_, block) in self._categories.items()}

    def blocks(self) -> dict[str, str]:
        """ICD-10-CM block -> title (I10-I16 -> Hypertensive diseases)."""
        return dict(self._blocks)

    def pcs_tables(self) -> dict[str, str]:
        """ICD-10-PCS table (first 3 characters) -> title."""
        return dict(self._tables)


@functools.cache
def _load_shipped() -> Icd10Hierarchy:
    cm = read_table("icd10cm_codes.tsv.gz", CM_HEADER)
    pcs = read_table("icd10pcs_codes.tsv.gz", PCS_HEADER)
    categories = read_table("icd10cm_categories.tsv", CATEGORY_HEADER)
    blocks = read_table("icd10cm_blocks.tsv", BLOCK_HEADER)
    tables = read_table("icd10pcs_tables.tsv", PCS_TABLE_HEADER)
    return Icd10Hierarchy(
        cm_rows=[(row[0], row[1]) for row in cm],
        pcs_rows=[(row[0], row[1]) for row in pcs],
        categories={category: (title, block) for category, title, block in categories},
        blocks={row[0]: row[1] for row in blocks},
        pcs_tables={row[0]: row[1] for row in tables},
    )


@functools.cache
def inclusion_terms() -> Mapping[str, tuple[str, ...]]:
    """ICD-10-CM label -> the inclusion terms the tabular list gives under that code
    (I50.1 -> "Cardiac asthma", "Left heart failure", ...), in the tabular list's order.

    Read once, on first use (only derived concepts need it), from
    icd10cm_inclusion_terms.tsv.gz: the April 2026 CMS tabular XML (see PROVENANCE.md), the
    only shipped source of these synonyms. A code the tabular list gives no inclusion
    term is absent; terms are listed under the code itself, not under its descendants.
    """
    terms: dict[str, list[str]] = {}
    for code, term in read_table("icd10cm_inclusion_terms.tsv.gz", INCLUSION_HEADER):
        terms.setdefault(_cm_label(code), []).append(term)
    return MappingProxyType({code: tuple(found) for code, found in terms.items()})
