"""The label space of a dataset: a file of label codes of one ICD version, one per line.

Label strings are unambiguous about their kind within a version, so the list itself says
which MIMIC table each label must come from:

- ICD-9: a procedure's dot follows 2 digits, a diagnosis's 3, an E-code's 4; a dotless
  code is a 3-character diagnosis category. caml-mimic's procedure strings
  (`cec.icd.codes.caml_procedure`) have the procedure shape too, except those of the
  00 category, whose leading zeros caml-mimic lost: 1-2 digits and a trailing dot ("66."
  for 00.66, "9." for 00.09), read as procedures as well (no diagnosis ends in a dot);
- ICD-10: a procedure (ICD-10-PCS) is 7 characters without a dot; a diagnosis
  (ICD-10-CM) is a 3-character category with a dot before any further characters.

Across versions they are not (V45.81 is an ICD-9 code and has the shape of an ICD-10-CM
one), so the reader is told the version.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cec.icd.codes import CodeFormatError, Kind, code_text, format_icd10
from cec.plumbing.errors import InputError
from cec.plumbing.io import atomic_path, read_text_lines

log = logging.getLogger(__name__)

_PROCEDURE = re.compile(r"^\d{2}\.\d{1,2}$|^\d{1,2}\.$")  # or caml's "66."
_DIAGNOSIS = re.compile(r"^(\d{3}|V\d{2})(\.\d{1,2})?$|^E\d{3}(\.\d)?$")


@dataclass(frozen=True)
class LabelCode:
    """One code of the label space and the MIMIC table it is read from."""

    code: str
    kind: Kind


def kind_of_dotted(code: str) -> Kind | None:
    """Return the kind implied by a dotted code's shape, or None if it is not well formed."""
    if _PROCEDURE.match(code):
        return "procedure"
    if _DIAGNOSIS.match(code):
        return "diagnosis"
    return None


def kind_of_icd10(code: str) -> Kind | None:
    """The kind of an ICD-10 label string, or None if it is not one as the workflow writes
    them (`cec.readers.mimic4.format_icd10`: CM dotted after the category, PCS without a dot)."""
    kind: Kind = "procedure" if len(code) == 7 and "." not in code else "diagnosis"
    try:
        return kind if format_icd10(code, kind) == code else None
    except CodeFormatError:
        return None


_SHAPES = {
    9: (kind_of_dotted, "a dotted ICD-9 code (expected e.g. 584.9, 96.71, V45.81, E849.7, 486)"),
    10: (
        kind_of_icd10,
        "an ICD-10 label code (expected e.g. I50.9, I10, S72.001A, or a 7-character "
        "ICD-10-PCS code such as 02HV33Z)",
    ),
}


# Edin et al. write every ICD-10-CM code with a dot after its category, also a bare
# category ("I10."); the workflow writes "I10" (`cec.icd.codes.format_icd10`)
_EDIN_BARE_CATEGORY = re.compile(r"[A-Z][0-9][0-9A-Z]\.")


def read_code_list(path: str | Path, version: int = 9) -> list[LabelCode]:
    """Read a code list of ICD `version` (9 or 10); `#` starts a comment. Codes are read
    as every code reader reads them (`cec.icd.codes.code_text`: case does not matter).
    An ICD-10 category written with Edin et al.'s trailing dot ("I10.") is read as the
    category ("I10"), and the log says how many were. Returns codes in canonical (sorted)
    order."""
    if version not in _SHAPES:
        raise ValueError(f"version must be 9 or 10, got {version!r}")
    classify, expected = _SHAPES[version]
    path = Path(path)
    if not path.is_file():
        raise InputError("code list not found", file=path)
    lines = read_text_lines(path)  # BOM, CRLF, NUL and non-UTF-8: cec.plumbing.io's one rule
    seen: dict[str, int] = {}
    codes: list[LabelCode] = []
    trailing_dots = 0
    for number, line in enumerate(lines, start=1):
        text = code_text(line.split("#", 1)[0])
        if not text:
            continue
        if version == 10 and _EDIN_BARE_CATEGORY.fullmatch(text):
            text = text[:-1]
            trailing_dots += 1
        kind = classify(text)
        if kind is None:
            raise InputError(
                f"{text!r} is not {expected}",
                file=path,
                row=number,
                field="code",
            )
        if text in seen:
            raise InputError(
                f"code {text} is listed twice (first on line {seen[text]})",
                file=path,
                row=number,
                field="code",
            )
        seen[text] = number
        codes.append(LabelCode(text, kind))
    if not codes:
        raise InputError("code list is empty: a dataset needs at least one label code", file=path)
    if trailing_dots:
        log.info(
            "%s: %d ICD-10 categories written with a trailing dot (Edin et al.'s form, "
            "e.g. I10.) read without it",
            path,
            trailing_dots,
        )
    return sorted(codes, key=lambda c: c.code)


def code_counts(
    codes: Mapping[int, Iterable[str]], weights: Mapping[int, int] | None = None
) -> list[tuple[str, int]]:
    """(label string, count), most frequent first: the ranking of a counted code list
    (MIMIC-III as caml-mimic counts, MIMIC-IV as Edin et al. count). A code counts once per
    admission, or `weights[hadm]` times (0 for an admission `weights` lacks), and ties are
    broken by the string itself (ascending), so that the ranking does not depend on file
    order."""
    counts: dict[str, int] = defaultdict(int)
    for hadm, labels in codes.items():
        weight = 1 if weights is None else weights.get(hadm, 0)
        if not weight:
            continue
        for code in set(labels):
            counts[code] += weight
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def write_counted_list(
    out_path: str | Path, header: list[str], chosen: list[tuple[str, int]]
) -> None:
    """Write a counted code list: `header` (comment lines saying how it was counted), then
    one code per line with its count as a comment, so that `read_code_list` reads it back."""
    lines = header + [f"{code}  # {count}" for code, count in chosen]
    with atomic_path(out_path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")
