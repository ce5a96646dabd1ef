"""ICD-9-CM code strings: MIMIC's dotless codes to the dotted form the literature uses.

MIMIC-III stores codes without dots ("5849", "9671", "V4581", "E8497", "0066"). Where the dot
goes depends on the code's *kind*, which only the source table knows: "9671" in
PROCEDURES_ICD is 96.71 (a procedure's dot follows 2 digits) but in DIAGNOSES_ICD it would be
967.1 (a diagnosis's dot follows 3 characters, an E-code's 4). Guessing the kind from the
shape silently mislabels codes, so every function here takes the kind explicitly.

The rules follow caml-mimic and KEPT, so dotted codes match the published MIMIC-III-50 and
rare-50 label lists exactly.

Malformed input raises `CodeFormatError` instead of being passed through: a procedure
"66" is almost always "0066" after a `pd.read_csv` without `dtype=str`, and turning it
into a label would quietly corrupt the dataset.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

Kind = Literal["diagnosis", "procedure"]

_KINDS: tuple[str, ...] = get_args(Kind)

# Undotted shapes, per kind. E-codes have a 3-digit category plus one optional digit;
# V-codes and numeric diagnoses a 3-character category plus up to two digits.
_E_CODE = re.compile(r"E\d{3,4}")
_V_CODE = re.compile(r"V\d{2,4}")
_NUMERIC_DIAGNOSIS = re.compile(r"\d{3,5}")
_PROCEDURE = re.compile(r"\d{3,4}")
_ALLOWED_CHARS = re.compile(r"[0-9EV.]+")
_DIGITS = re.compile(r"\d+")


class CodeFormatError(ValueError):
    """A code string that is not a well-formed ICD-9-CM code of the stated kind."""


def code_text(raw: str) -> str:
    """A code string as the workflow compares it: without surrounding space, upper case.

    The one rule of every code reader (MIMIC-III, MIMIC-IV, code lists): ICD letters
    (V, E, the ICD-10 letters) carry no meaning in their case, and PhysioNet writes them
    in upper case, so a lower-case "v4581" is the code V45.81, not a malformed one that
    one reader drops and another keeps."""
    return raw.strip().upper()


def _check_kind(kind: str) -> None:
    # A typo such as "diagnoses" must not fall through to the procedure branch.
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")


def _dot(undotted: str, kind: Kind) -> str:
    """Insert the dot into an already validated undotted code."""
    if kind == "procedure":
        return f"{undotted[:2]}.{undotted[2:]}"
    width = 4 if undotted.startswith("E") else 3
    if len(undotted) == width:
        # A category with no subdivision (486, V45, E849) has no dot.
        return undotted
    return f"{undotted[:width]}.{undotted[width:]}"


def _validate_undotted(undotted: str, raw: str, kind: Kind) -> None:
    """Raise CodeFormatError unless `undotted` has the shape of a `kind` code."""
    where = f"ICD-9 {kind} code {raw!r}"
    if not _ALLOWED_CHARS.fullmatch(undotted) or "." in undotted:
        raise CodeFormatError(
            f"{where} has invalid characters: expected digits, with an E or V prefix for "
            "supplementary diagnosis codes"
        )
    lost_zeros = (
        f"; a {len(undotted)}-digit code usually means leading zeros were lost when the "
        "column was read as integers (read ICD9_CODE as a string)"
    )
    if kind == "procedure":
        if _PROCEDURE.fullmatch(undotted):
            return
        if not _DIGITS.fullmatch(undotted):
            raise CodeFormatError(f"{where} has invalid characters: procedures are digits only")
        hint = lost_zeros if len(undotted) < 3 else ""
        raise CodeFormatError(f"{where} must have 3-4 digits, has {len(undotted)}{hint}")
    if undotted.startswith("E"):
        if not _E_CODE.fullmatch(undotted):
            raise CodeFormatError(
                f"{where}: an E-code is E plus 3-4 digits (4-5 characters), "
                f"got {len(undotted)} characters"
            )
        return
    if undotted.startswith("V"):
        if not _V_CODE.fullmatch(undotted):
            raise CodeFormatError(
                f"{where}: a V-code is V plus 2-4 digits (3-5 characters), "
                f"got {len(undotted)} characters"
            )
        return
    if _NUMERIC_DIAGNOSIS.fullmatch(undotted):
        return
    if not _DIGITS.fullmatch(undotted):
        raise CodeFormatError(f"{where} has invalid characters: E or V may only come first")
    hint = lost_zeros if len(undotted) < 3 else ""
    raise CodeFormatError(f"{where} must have 3-5 characters, has {len(undotted)}{hint}")


def format_code(raw: str, kind: Kind) -> str:
    """Return the dotted form of a MIMIC ICD-9 code of the given kind.

    Accepts the dotless MIMIC form ("5849") and, so that the function is idempotent, an
    already dotted code whose dot is where `kind` puts it ("584.9"). Surrounding whitespace
    is stripped and letters are upper-cased (`code_text`). Raises CodeFormatError, naming
    the value and the kind, for anything else.
    """
    _check_kind(kind)
    if not isinstance(raw, str):
        raise CodeFormatError(
            f"ICD-9 {kind} code {raw!r} is a {type(raw).__name__}, not a string; "
            "read ICD9_CODE as a string so leading zeros survive"
        )
    text = code_text(raw)
    if not text:
        raise CodeFormatError(f"ICD-9 {kind} code {raw!r} is empty")
    if "." not in text:
        _validate_undotted(text, raw, kind)
        return _dot(text, kind)
    undotted = text.replace(".", "", 1)
    _validate_undotted(undotted, raw, kind)
    expected = _dot(undotted, kind)
    if text != expected:
        raise CodeFormatError(
            f"ICD-9 {kind} code {raw!r} has its dot in the wrong place "
            f"(a {kind} of these digits is written {expected!r})"
        )
    return text


def undot(code: str) -> str:
    """Return the code without its dot, as MIMIC and the CMS files store it.

    Does not validate: callers hold codes that `format_code` already checked, and undotting
    must not need the kind.
    """
    return code.strip().replace(".", "")


def category(code: str, kind: Kind) -> str:
    """Return the category a code belongs to: its parent in the ICD-9-CM tabular list.

    Diagnoses: the 3-character category ("584.9" -> "584", "V45.81" -> "V45"), 4 characters
    for E-codes ("E849.7" -> "E849"); a category code is its own category ("486" -> "486").
    Procedures: the 2-digit category ("96.71" -> "96"). Accepts dotted or dotless input.
    """
    dotted = format_code(code, kind)
    if kind == "procedure":
        return dotted[:2]
    return dotted[:4] if dotted.startswith("E") else dotted[:3]


CodeFormat = Literal["exact", "caml"]
CODE_FORMATS: tuple[str, ...] = get_args(CodeFormat)


def caml_procedure(raw: str) -> str:
    """caml-mimic's string for a MIMIC procedure code.

    caml-mimic (and so KEPT and the literature's code lists) read PROCEDURES_ICD with
    pandas' default types: the code became an integer, losing its leading zeros, before
    the dot went after two digits. "0407" (ICD-9-CM 04.07) thus reads "40.7", "9671"
    "96.71", and "0066" "66." (caml's own result, trailing dot and all). The raw code is
    validated first, so malformed input still raises CodeFormatError.
    """
    digits = str(int(undot(format_code(raw, "procedure"))))
    return f"{digits[:2]}.{digits[2:]}"


def label_code(raw: str, kind: Kind, code_format: str = "exact") -> str:
    """The label string of a MIMIC code: ICD-9-CM's dotted form (`exact`), or as caml-mimic
    wrote it (`caml`: procedures as `caml_procedure`; diagnoses, read as strings there,
    keep their exact form)."""
    if code_format not in CODE_FORMATS:
        raise ValueError(f"code_format must be one of {CODE_FORMATS}, got {code_format!r}")
    if kind == "procedure" and code_format == "caml":
        return caml_procedure(raw)
    return format_code(raw, kind)


# ICD-10: MIMIC-IV stores codes without a dot
_CM = re.compile(r"[A-Z][0-9][0-9A-Z]([0-9A-Z]{1,4})?")  # category + up to 4 more
_PCS = re.compile(r"[0-9A-HJ-NP-Z]{7}")  # 7 characters; PCS never uses I or O


def format_icd10(raw: str, kind: Kind) -> str:
    """The label string of an ICD-10 code as MIMIC-IV stores it (no dot): ICD-10-CM with a
    dot after the category, ICD-10-PCS as its 7 characters. Idempotent for CM strings
    whose dot is already after the category. Raises CodeFormatError naming the value."""
    text = code_text(raw) if isinstance(raw, str) else ""
    if kind == "procedure":
        if not _PCS.fullmatch(text):
            raise CodeFormatError(
                f"ICD-10-PCS code {raw!r} must be 7 letters or digits (no I or O, no dot)"
            )
        return text
    if kind != "diagnosis":
        raise CodeFormatError(f"unknown code kind {kind!r} (diagnosis or procedure)")
    undotted = text.replace(".", "", 1) if text[3:4] == "." else text
    if not _CM.fullmatch(undotted):
        raise CodeFormatError(
            f"ICD-10-CM code {raw!r} must be a letter, a digit, a digit or letter, then up "
            "to 4 more letters or digits (a dot only after the third character)"
        )
    return undotted if len(undotted) == 3 else f"{undotted[:3]}.{undotted[3:]}"


def format_icd(raw: str, version: int, kind: Kind) -> str:
    """The label string of a MIMIC-IV code of either version."""
    if version == 9:
        return format_code(raw, kind)
    if version == 10:
        return format_icd10(raw, kind)
    raise CodeFormatError(f"icd_version {version!r} is neither 9 nor 10")
