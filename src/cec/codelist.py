"""The label space of a dataset: a file of dotted ICD-9 codes, one per line.

Dotted strings are unambiguous about their kind (a procedure's dot follows 2 digits, a
diagnosis's 3, an E-code's 4; a dotless code is a 3-character diagnosis category), so the
list itself says which MIMIC table each label must come from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cec.codes import Kind
from cec.errors import InputError

_PROCEDURE = re.compile(r"^\d{2}\.\d{1,2}$")
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


def read_code_list(path: str | Path) -> list[LabelCode]:
    """Read a code list; `#` starts a comment. Returns codes in canonical (sorted) order."""
    path = Path(path)
    if not path.is_file():
        raise InputError("code list not found", file=path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"code list is not UTF-8 ({exc.reason})", file=path) from None
    seen: dict[str, int] = {}
    codes: list[LabelCode] = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        kind = kind_of_dotted(text)
        if kind is None:
            raise InputError(
                f"{text!r} is not a dotted ICD-9 code (expected e.g. 584.9, 96.71, V45.81, "
                "E849.7, 486)",
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
    return sorted(codes, key=lambda c: c.code)
