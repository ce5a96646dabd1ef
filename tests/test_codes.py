"""cec.icd.codes: MIMIC's dotless ICD-9 codes to dotted form, by the kind of the source table."""

from __future__ import annotations

import pytest

from cec.icd.codes import (
    CodeFormatError,
    caml_procedure,
    category,
    format_code,
    label_code,
    undot,
)


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        # Numeric diagnoses: dot after 3 characters, leading zeros kept.
        ("5849", "diagnosis", "584.9"),
        ("0389", "diagnosis", "038.9"),
        ("25000", "diagnosis", "250.00"),
        ("4019", "diagnosis", "401.9"),
        # A 3-character diagnosis is a category without subdivisions: no dot.
        ("486", "diagnosis", "486"),
        ("311", "diagnosis", "311"),
        ("990", "diagnosis", "990"),
        # V-codes: dot after 3 characters.
        ("V4581", "diagnosis", "V45.81"),
        ("V1061", "diagnosis", "V10.61"),
        ("V183", "diagnosis", "V18.3"),
        ("V45", "diagnosis", "V45"),
        # E-codes: dot after 4 characters.
        ("E8497", "diagnosis", "E849.7"),
        ("E849", "diagnosis", "E849"),
        ("E9300", "diagnosis", "E930.0"),
        # Procedures: dot after 2 digits, leading zeros kept.
        ("9671", "procedure", "96.71"),
        ("0066", "procedure", "00.66"),
        ("966", "procedure", "96.6"),
        ("3893", "procedure", "38.93"),
        ("777", "procedure", "77.7"),
        ("520", "procedure", "52.0"),
    ],
)
def test_format_code(raw: str, kind: str, expected: str) -> None:
    assert format_code(raw, kind) == expected


def test_kind_comes_from_the_table_not_the_shape() -> None:
    assert format_code("9671", "procedure") == "96.71"
    assert format_code("9671", "diagnosis") == "967.1"


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        (" 5849 ", "diagnosis", "584.9"),
        ("\t0066\n", "procedure", "00.66"),
        ("  486", "diagnosis", "486"),
    ],
)
def test_surrounding_whitespace_is_stripped(raw: str, kind: str, expected: str) -> None:
    assert format_code(raw, kind) == expected


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("584.9", "diagnosis"),
        ("250.00", "diagnosis"),
        ("486", "diagnosis"),
        ("V45.81", "diagnosis"),
        ("E849.7", "diagnosis"),
        ("E849", "diagnosis"),
        ("96.71", "procedure"),
        ("00.66", "procedure"),
        ("96.6", "procedure"),
    ],
)
def test_format_code_is_idempotent(code: str, kind: str) -> None:
    assert format_code(code, kind) == code
    assert format_code(format_code(undot(code), kind), kind) == code


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("96.71", "diagnosis"),  # procedure dot position given as a diagnosis
        ("967.1", "procedure"),
        ("E84.97", "diagnosis"),
        ("E8497.", "diagnosis"),
        ("V458.1", "diagnosis"),
        ("486.", "diagnosis"),
        (".5849", "diagnosis"),
        ("0.066", "procedure"),
    ],
)
def test_dot_in_the_wrong_place_is_rejected(raw: str, kind: str) -> None:
    with pytest.raises(CodeFormatError, match="dot in the wrong place") as info:
        format_code(raw, kind)
    assert repr(raw) in str(info.value)
    assert kind in str(info.value)


@pytest.mark.parametrize("kind", ["diagnosis", "procedure"])
@pytest.mark.parametrize("raw", ["", "   ", "\t\n"])
def test_empty_code_is_rejected(raw: str, kind: str) -> None:
    with pytest.raises(CodeFormatError, match="empty") as info:
        format_code(raw, kind)
    assert kind in str(info.value)
    assert repr(raw) in str(info.value)


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("v4581", "diagnosis", "V45.81"),
        ("e8497", "diagnosis", "E849.7"),
        (" v45.81 ", "diagnosis", "V45.81"),
        ("v45", "diagnosis", "V45"),
    ],
)
def test_lower_case_v_and_e_codes_are_upper_cased(raw: str, kind: str, expected: str) -> None:
    """One rule for every reader (cec.icd.codes.code_text): the case of an ICD letter carries
    no meaning, so MIMIC-III no longer drops what MIMIC-IV keeps."""
    assert format_code(raw, kind) == expected


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("58A9", "diagnosis"),
        ("5E89", "diagnosis"),  # E only as a prefix
        ("X123", "diagnosis"),
        ("584-9", "diagnosis"),
        ("58 49", "diagnosis"),
        ("584..9", "diagnosis"),
        ("٥٨٤٩", "diagnosis"),  # non-ASCII digits
        ("V458", "procedure"),  # procedures are digits only
        ("96,71", "procedure"),
        ("96.7.1", "procedure"),
    ],
)
def test_wrong_characters_are_rejected(raw: str, kind: str) -> None:
    with pytest.raises(CodeFormatError, match="invalid characters") as info:
        format_code(raw, kind)
    assert repr(raw) in str(info.value)
    assert kind in str(info.value)


@pytest.mark.parametrize(
    ("raw", "pattern"),
    [
        ("584901", "3-5 characters"),
        ("58", "3-5 characters"),
        ("E84", "E-code"),
        ("E84971", "E-code"),
        ("V4", "V-code"),
        ("V45811", "V-code"),
    ],
)
def test_diagnosis_of_wrong_length_is_rejected(raw: str, pattern: str) -> None:
    with pytest.raises(CodeFormatError, match=pattern) as info:
        format_code(raw, "diagnosis")
    assert repr(raw) in str(info.value)
    assert "diagnosis" in str(info.value)


@pytest.mark.parametrize("raw", ["66", "1", "00"])
def test_short_procedure_names_lost_leading_zeros(raw: str) -> None:
    with pytest.raises(CodeFormatError, match="leading zeros") as info:
        format_code(raw, "procedure")
    message = str(info.value)
    assert repr(raw) in message
    assert "procedure" in message
    assert "3-4 digits" in message


def test_long_procedure_is_rejected_without_the_leading_zero_hint() -> None:
    with pytest.raises(CodeFormatError, match="3-4 digits") as info:
        format_code("96711", "procedure")
    assert "leading zeros" not in str(info.value)


def test_non_string_input_is_rejected() -> None:
    with pytest.raises(CodeFormatError, match="not a string"):
        format_code(66, "procedure")  # type: ignore[arg-type]


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        format_code("5849", "diagnoses")  # type: ignore[arg-type]


def test_code_format_error_is_a_value_error() -> None:
    assert issubclass(CodeFormatError, ValueError)


@pytest.mark.parametrize(
    ("code", "expected"),
    [("584.9", "5849"), ("00.66", "0066"), ("E849.7", "E8497"), ("486", "486"), ("5849", "5849")],
)
def test_undot(code: str, expected: str) -> None:
    assert undot(code) == expected


@pytest.mark.parametrize(
    ("code", "kind", "expected"),
    [
        ("584.9", "diagnosis", "584"),
        ("250.00", "diagnosis", "250"),
        ("038.9", "diagnosis", "038"),
        ("486", "diagnosis", "486"),
        ("V45.81", "diagnosis", "V45"),
        ("V45", "diagnosis", "V45"),
        ("E849.7", "diagnosis", "E849"),
        ("E849", "diagnosis", "E849"),
        ("96.71", "procedure", "96"),
        ("00.66", "procedure", "00"),
        ("96.6", "procedure", "96"),
        ("5849", "diagnosis", "584"),  # dotless input is accepted too
        ("9671", "diagnosis", "967"),
        ("9671", "procedure", "96"),
    ],
)
def test_category(code: str, kind: str, expected: str) -> None:
    assert category(code, kind) == expected


def test_category_rejects_malformed_codes() -> None:
    with pytest.raises(CodeFormatError):
        category("66", "procedure")


@pytest.mark.parametrize(
    ("raw", "caml"),
    [
        ("0407", "40.7"),  # KEPT's rare-50 "40.7" is ICD-9-CM 04.07
        ("9671", "96.71"),  # no leading zero: the same as ICD-9-CM
        ("0066", "66."),  # caml's own result: int 66, then a dot after two digits
        ("0010", "10."),
        ("331", "33.1"),  # a 3-digit procedure code
        ("009", "9."),
        ("9604", "96.04"),
        ("04.07", "40.7"),  # already dotted input is read the same way
    ],
)
def test_caml_procedure_strings(raw: str, caml: str) -> None:
    assert caml_procedure(raw) == caml
    assert label_code(raw, "procedure", "caml") == caml
    assert label_code(raw, "procedure", "exact") == format_code(raw, "procedure")


@pytest.mark.parametrize(
    ("raw", "dotted"),
    [
        ("V4581", "V45.81"),
        ("E8497", "E849.7"),
        ("0389", "038.9"),
        ("4019", "401.9"),
        ("486", "486"),
    ],
)
def test_caml_leaves_diagnoses_as_strings(raw: str, dotted: str) -> None:
    # caml-mimic's DIAGNOSES_ICD column held V and E codes, so pandas kept it as text
    assert label_code(raw, "diagnosis", "caml") == dotted == label_code(raw, "diagnosis")


def test_caml_still_rejects_malformed_codes() -> None:
    with pytest.raises(CodeFormatError):
        caml_procedure("66")  # lost zeros in the input itself: not a MIMIC string
    with pytest.raises(ValueError, match="code_format"):
        label_code("0407", "procedure", "kept")
