"""No reader of a note-bearing table puts a field's content into a message or a log.

A marker sentence stands in every field of every note table (MIMIC-III NOTEEVENTS,
MIMIC-IV discharge, a dataset's JSONL); each file is then broken in every way a reader
refuses (no header, a missing column, a wrong field count, bytes that are not UTF-8, a NUL
byte, a cut or corrupt gzip, binary garbage, bad quoting, malformed JSON, wrong types,
duplicate and inconsistent rows), and the command must end in a located error (exit 2)
whose text, like everything else on stderr and in the logs, never holds the marker.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cec.cli import main
from cec.plumbing.errors import InputError
from cec.plumbing.io import read_dataset, read_jsonl
from cec.readers.mimic4 import COLUMNS
from cec.readers.tables import TABLE_COLUMNS
from tests.conftest import mini_tables, write_table
from tests.test_mimic4 import _write as write4

M = "QZX-PRIVATE-NOTE-QZX"  # the marker: no message, log or report may show it
NOTE = f"note {M}".encode()  # in the note's text column of every table's first row
CODES3 = "584.9\n585.9\n96.71\nV45.81\n486\n"


def _csv(rows: list[list[object]]) -> list[bytes]:
    """Lines of a CSV as MIMIC writes it (quoted where needed), one bytes object each."""
    out = []
    for row in rows:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC).writerow(row)
        out.append(buffer.getvalue().encode("utf-8"))
    return out


def _note_rows3() -> list[list[object]]:
    """NOTEEVENTS with the marker in every field that is not an integer key."""
    dated = [f"2151-08-04 {M}", M, M]
    return [
        list(TABLE_COLUMNS["NOTEEVENTS"]),
        [1, 1, 101, *dated, "Discharge summary", f"Report {M}", M, M, f"A's note {M}, 2"],
        [2, 2, 102, *dated, "Discharge summary", f"Report {M}", M, M, f"B's note {M}"],
        [3, 1, 101, *dated, f"Nursing {M}", M, M, M, f"nursing {M}"],
        [4, 3, 103, *dated, "Discharge summary", f"Report {M}", M, M, f"C's note {M}"],
    ]


def _note_rows4() -> list[list[object]]:
    """MIMIC-IV discharge with the marker in every field that is not an integer key."""
    return [
        list(COLUMNS["note/discharge"]),
        [f"202-DS-{M}", 2, 202, "DS", 1, M, M, f"the note {M}, two"],
        [f"203-DS-{M}", 3, 203, "DS", 1, M, M, f"note three {M}"],
        [f"203-XX-{M}", 3, 203, M, 2, M, M, f"other type {M}"],
    ]


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@dataclass(frozen=True)
class Broken:
    """One way to break a note table: `edit` gets its lines (header first) as CSV rows'
    bytes and returns the file's bytes (plain; `gz` compresses them, `after_gz` then
    damages the compressed bytes); `expect` is a part of the message."""

    name: str
    expect: str
    edit: Callable[[list[bytes]], bytes]
    gz: bool = True
    after_gz: Callable[[bytes], bytes] | None = None


def _join(lines: list[bytes]) -> bytes:
    return b"".join(lines)


def _set(rows: Callable[[], list[list[object]]], row: int, col: int, value: object) -> bytes:
    table = rows()
    table[row][col] = value
    return _join(_csv(table))


def _random_bytes(n: int) -> bytes:
    return random.Random(7).randbytes(n)


def _bad_crc(data: bytes) -> bytes:
    """A gzip whose data decode but whose checksum (the trailer's first 4 bytes) is off."""
    return data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:]


def _corrupt(data: bytes) -> bytes:
    """Flip bytes in the middle of the deflate stream (its header stays valid)."""
    middle = bytearray(data)
    for i in range(20, min(len(middle) - 10, 60)):
        middle[i] ^= 0x5A
    return bytes(middle)


def _common(rows: Callable[[], list[list[object]]], text_col: int) -> list[Broken]:
    """The breaks shared by both MIMIC note tables (`text_col`: the note's column)."""
    return [
        Broken("no header row", "not a header", lambda ls: _join(ls[1:])),
        Broken(
            "a column renamed to text",
            "missing column",
            lambda ls: (
                _join([ls[0].replace(b'"TEXT"', f'"{M}"'.encode()), *ls[1:]])
                if b'"TEXT"' in ls[0]
                else _join([ls[0].replace(b'"text"', f'"{M}"'.encode()), *ls[1:]])
            ),
        ),
        Broken(
            "a row with an extra field",
            "fields, found",
            lambda ls: _join([*ls[:2], ls[2].rstrip(b"\n") + f',"{M}"\n'.encode(), *ls[3:]]),
        ),
        Broken(
            "a row with a field missing",
            "fields, found",
            lambda ls: _join([*ls[:2], ls[2].rsplit(b",", 1)[0] + b"\n", *ls[3:]]),
        ),
        Broken(
            "bytes that are not UTF-8 in the note",
            "not valid UTF-8",
            lambda ls: _join(ls).replace(NOTE, NOTE + b"\xff\xfe", 1),
        ),
        Broken(
            "bytes that are not UTF-8 in a column no reader uses",
            "not valid UTF-8",
            lambda ls: _join(ls).replace(f'"{M}",'.encode(), f'"{M}'.encode() + b'\x80",', 1),
        ),
        Broken(
            "a NUL byte in the note",
            "NUL byte",
            lambda ls: _join(ls).replace(NOTE, NOTE + b"\x00", 1),
        ),
        Broken("a cut gzip", "truncated", _join, after_gz=lambda d: d[: len(d) // 2]),
        Broken("corrupt gzip data", "row", _join, after_gz=_corrupt),
        Broken("a gzip checksum that does not match", "not valid gzip", _join, after_gz=_bad_crc),
        Broken(
            "binary garbage with the marker in it",
            "row 1",
            lambda ls: _random_bytes(300) + M.encode() + _random_bytes(300),
            gz=False,
        ),
        Broken(
            "an unterminated quote",
            "malformed CSV",
            lambda ls: _join(ls) + f'9,1,101,"{M}'.encode(),
        ),
        Broken(
            "a stray quote in a quoted field",
            "malformed CSV",
            lambda ls: _join(ls).replace(f'"{M}"'.encode(), f'"{M}"{M}"'.encode(), 1),
        ),
        Broken(
            "the patient is not a number",
            "not an integer",
            lambda ls: _set(rows, 1, 1, f"1{M}"),
        ),
        Broken(
            "the admission is not a number",
            "not an integer",
            lambda ls: _set(rows, 1, 2, f"{M}"),
        ),
        Broken(
            "the note's patient is not the admission's",
            "belongs to",
            lambda ls: _set(rows, 1, 1, 77),
        ),
        Broken(
            "a row repeats a key with other content",
            "other content",
            lambda ls: _join(
                [
                    *ls,
                    _csv([rows()[1][:text_col] + [f"changed {M}"] + rows()[1][text_col + 1 :]])[0],
                ]
            ),
        ),
    ]


BROKEN3 = [
    *_common(_note_rows3, 10),
    Broken("the key is not a number", "not an integer", lambda ls: _set(_note_rows3, 1, 0, M)),
]
BROKEN4 = [
    *_common(_note_rows4, 7),
    Broken("note_seq is not a number", "not an integer", lambda ls: _set(_note_rows4, 1, 4, M)),
]


def _file_bytes(case: Broken, rows: list[list[object]]) -> bytes:
    data = case.edit(_csv(rows))
    if case.gz:
        data = _gz(data)
        if case.after_gz is not None:
            data = case.after_gz(data)
    return data


def _mimic3(root: Path, notes: bytes) -> list[str]:
    mimic = root / "mimic"
    mimic.mkdir(parents=True)
    for table, rows in mini_tables().items():
        if table != "NOTEEVENTS":
            write_table(mimic, table, rows)
    name = "NOTEEVENTS.csv.gz" if notes[:2] == b"\x1f\x8b" else "NOTEEVENTS.csv"
    (mimic / name).write_bytes(notes)
    (root / "codes.txt").write_text(CODES3, encoding="utf-8")
    return ["prepare", "--mimic-dir", str(mimic), "--codes", str(root / "codes.txt"),
            "--out", str(root / "out"), "--quiet"]  # fmt: skip


def _mimic4(root: Path, notes: bytes) -> list[str]:
    mimic4 = root / "mimic-iv"
    write4(mimic4, "diagnoses_icd", [[1, 201, 1, "5849", 9], [2, 202, 1, "I509", 10],
                                     [3, 203, 1, "N179", 10]])  # fmt: skip
    write4(mimic4, "procedures_icd", [[2, 202, 1, "2160-01-02", "0DTJ4ZZ", 10]])
    write4(mimic4, "d_icd_diagnoses", [["I509", 10, "Heart failure, unspecified"]])
    write4(mimic4, "d_icd_procedures", [["0DTJ4ZZ", 10, "Resection of Appendix"]])
    name = "discharge.csv.gz" if notes[:2] == b"\x1f\x8b" else "discharge.csv"
    (mimic4 / "note").mkdir(parents=True, exist_ok=True)
    (mimic4 / "note" / name).write_bytes(notes)
    (root / "codes.txt").write_text("I50.9\nN17.9\n", encoding="utf-8")
    return ["prepare", "--mimic4-dir", str(mimic4), "--icd-version", "10",
            "--codes", str(root / "codes.txt"), "--out", str(root / "out"), "--quiet"]  # fmt: skip


def _run(
    argv: list[str], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> tuple[int | None, str]:
    """(exit status or None for an exception, all the text a user or a log would see)."""
    caplog.set_level(logging.DEBUG)
    capsys.readouterr()
    try:
        status: int | None = main(argv)
        escaped = ""
    except BaseException:  # noqa: BLE001 - a traceback is itself a failure, and is text too
        status, escaped = None, traceback.format_exc()
    captured = capsys.readouterr()
    return status, "\n".join([captured.out, captured.err, caplog.text, escaped])


def _assert_private(status: int | None, seen: str, expect: str) -> None:
    assert M not in seen, f"the marker reached the output:\n{seen}"
    assert status == 2, f"exit status {status}, not 2:\n{seen}"
    assert expect in seen, f"{expect!r} not in:\n{seen}"
    assert "\x00" not in seen and "\ufffd" not in seen


@pytest.mark.parametrize("case", BROKEN3, ids=lambda c: c.name)
def test_noteevents_errors_never_show_a_field(
    case: Broken,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    argv = _mimic3(tmp_path, _file_bytes(case, _note_rows3()))
    _assert_private(*_run(argv, capsys, caplog), case.expect)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", BROKEN4, ids=lambda c: c.name)
def test_mimic4_discharge_errors_never_show_a_field(
    case: Broken,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    argv = _mimic4(tmp_path, _file_bytes(case, _note_rows4()))
    _assert_private(*_run(argv, capsys, caplog), case.expect)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("source", ["mimic3", "mimic4"])
def test_a_table_there_twice_is_refused_without_a_field(
    source: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    build, rows = (_mimic3, _note_rows3) if source == "mimic3" else (_mimic4, _note_rows4)
    argv = build(tmp_path, _gz(_join(_csv(rows()))))
    gz = next(p for p in tmp_path.rglob("*.csv.gz") if p.name.startswith(("NOTE", "disch")))
    gz.with_name(gz.name.removesuffix(".gz")).write_bytes(_join(_csv(rows()))[:-20])
    _assert_private(*_run(argv, capsys, caplog), "there twice")


@pytest.mark.parametrize("source", ["mimic3", "mimic4"])
def test_a_good_run_shows_no_field_in_logs_or_report(
    source: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The marker reaches the dataset's notes (where it belongs) and nothing else: not
    stderr, not the log, not data_report.json (a CATEGORY or note_type that is not
    MIMIC's own is counted there, not named)."""
    build, rows = (_mimic3, _note_rows3) if source == "mimic3" else (_mimic4, _note_rows4)
    argv = build(tmp_path, _gz(_join(_csv(rows()))))
    status, seen = _run(argv, capsys, caplog)
    assert status == 0, seen
    assert M not in seen
    out = tmp_path / "out"
    assert M not in (out / "data_report.json").read_text(encoding="utf-8")
    assert M in "".join(
        (out / f"{s}.jsonl").read_text(encoding="utf-8") for s in ("train", "dev", "test")
    )


# --- dataset JSONL -------------------------------------------------------------------

RECORD = {"hadm_id": "1", "subject_id": "7", "text": f"a note {M}", "labels": ["A"],
          f"extra {M}": M}  # fmt: skip
PRED = "hadm_id\tcode\tprob\n1\tA\t0.9\n1\tB\t0.1\n2\tA\t0.2\n2\tB\t0.8\n"


def _record(**changes: object) -> bytes:
    return json.dumps({**RECORD, **changes}).encode() + b"\n"


GOOD = _record() + _record(hadm_id="2", labels=["B"])
BROKEN_JSONL = [
    ("a cut line", "not valid JSON", GOOD + json.dumps(RECORD).encode()[:40] + b"\n"),
    ("bytes that are not UTF-8", "not UTF-8", GOOD.replace(M.encode(), M.encode() + b"\xff", 1)),
    ("a NUL byte", "NUL byte", GOOD.replace(M.encode(), M.encode() + b"\x00", 1)),
    ("an array, not an object", "not a JSON object", GOOD + json.dumps([M, M]).encode() + b"\n"),
    ("a string, not an object", "not a JSON object", GOOD + json.dumps(M).encode() + b"\n"),
    ("a blank line between records", "blank line", _record() + b"\n" + _record(hadm_id="2")),
    ("a bad escape", "not valid JSON", GOOD.replace(M.encode(), M.encode() + b"\\q", 1)),
    (
        "a raw control character",
        "not valid JSON",
        GOOD.replace(M.encode(), M.encode() + b"\x01", 1),
    ),
    ("nesting too deep", "JSON", GOOD + b"[" * 100_000 + json.dumps(M).encode() + b"]" * 100_000),
]


@pytest.mark.parametrize(("name", "expect", "data"), BROKEN_JSONL, ids=[c[0] for c in BROKEN_JSONL])
def test_jsonl_errors_never_show_a_field(
    name: str,
    expect: str,
    data: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    gold, pred = tmp_path / "gold.jsonl", tmp_path / "pred.tsv"
    gold.write_bytes(data)
    pred.write_text(PRED, encoding="utf-8")
    with pytest.raises(InputError) as err:
        list(read_jsonl(gold))
    assert M not in str(err.value) and err.value.row is not None
    argv = ["evaluate", "--pred", str(pred), "--gold", str(gold), "--bootstrap", "0",
            "--out", str(tmp_path / "m.json")]  # fmt: skip
    _assert_private(*_run(argv, capsys, caplog), expect)
    assert not (tmp_path / "m.json").exists()


WRONG_TYPES = [
    ("text", {"text": [M]}),
    ("text", {"text": {M: M}}),
    ("labels", {"labels": M}),
    ("labels", {"labels": [1, M]}),
    ("hadm_id", {"hadm_id": M}),
    ("subject_id", {"subject_id": {"x": M}}),
    ("hadm_id", {"hadm_id": True}),
]


@pytest.mark.parametrize(("field", "change"), WRONG_TYPES)
def test_dataset_records_of_the_wrong_type_are_named_not_shown(
    field: str, change: dict[str, object], tmp_path: Path
) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(_record() + json.dumps({**RECORD, **change}).encode() + b"\n")
    with pytest.raises(InputError) as err:
        list(read_dataset(path))
    assert (err.value.row, err.value.field) == (2, field)
    assert M not in str(err.value)
    missing = {k: v for k, v in RECORD.items() if k != "text"}
    path.write_bytes(json.dumps(missing).encode() + b"\n")
    with pytest.raises(InputError, match="missing") as err:
        list(read_dataset(path))
    assert err.value.field == "text" and M not in str(err.value)
    path.write_bytes(GOOD)
    assert [r["hadm_id"] for r in read_dataset(path)] == ["1", "2"]


def test_gold_labels_are_named_not_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    gold, pred = tmp_path / "gold.jsonl", tmp_path / "pred.tsv"
    gold.write_bytes(_record(labels=[M]) + _record(hadm_id="2", labels=["B"]))
    pred.write_text(PRED, encoding="utf-8")
    argv = ["evaluate", "--pred", str(pred), "--gold", str(gold), "--bootstrap", "0",
            "--out", str(tmp_path / "m.json")]  # fmt: skip
    _assert_private(*_run(argv, capsys, caplog), "field labels")
