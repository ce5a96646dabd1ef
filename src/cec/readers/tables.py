"""Streaming, validating readers for the MIMIC-III v1.4 CSV tables.

NOTEEVENTS is 3.8 GB uncompressed: it is read row by row so that preparing a dataset
runs in bounded memory. Every field the workflow uses is checked as it is read, so a bad
byte or a renamed column is reported with its file, row and field instead of surfacing
later as a puzzling KeyError or a silently wrong label.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import IO, Any, cast

from tqdm import tqdm

from cec.plumbing.errors import InputError
from cec.plumbing.io import describe_header

# Exact v1.4 headers (../shared/reference/mimic3_tables.md). Readers require only the
# columns they use; the synthetic writer emits all of them in this order.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "NOTEEVENTS": (
        "ROW_ID",
        "SUBJECT_ID",
        "HADM_ID",
        "CHARTDATE",
        "CHARTTIME",
        "STORETIME",
        "CATEGORY",
        "DESCRIPTION",
        "CGID",
        "ISERROR",
        "TEXT",
    ),
    "DIAGNOSES_ICD": ("ROW_ID", "SUBJECT_ID", "HADM_ID", "SEQ_NUM", "ICD9_CODE"),
    "PROCEDURES_ICD": ("ROW_ID", "SUBJECT_ID", "HADM_ID", "SEQ_NUM", "ICD9_CODE"),
    "D_ICD_DIAGNOSES": ("ROW_ID", "ICD9_CODE", "SHORT_TITLE", "LONG_TITLE"),
    "D_ICD_PROCEDURES": ("ROW_ID", "ICD9_CODE", "SHORT_TITLE", "LONG_TITLE"),
}

# Columns that PostgreSQL's CSV export (how PhysioNet built v1.4) wraps in quotes: the
# character columns. Integers, dates and timestamps are bare; NULL is an empty field.
QUOTED_COLUMNS: dict[str, frozenset[str]] = {
    "NOTEEVENTS": frozenset({"CATEGORY", "DESCRIPTION", "ISERROR", "TEXT"}),
    "DIAGNOSES_ICD": frozenset({"ICD9_CODE"}),
    "PROCEDURES_ICD": frozenset({"ICD9_CODE"}),
    "D_ICD_DIAGNOSES": frozenset({"ICD9_CODE", "SHORT_TITLE", "LONG_TITLE"}),
    "D_ICD_PROCEDURES": frozenset({"ICD9_CODE", "SHORT_TITLE", "LONG_TITLE"}),
}

# TEXT fields of real notes exceed the csv module's default 128 KiB field limit.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


# Tables that hold notes. Their fields may be a patient's text: a message about them
# names the file, row, field and sizes or offsets, never a field's content, and shows of
# a header only the cells that are column names the format defines (a file without its
# header would otherwise print its first note as "the header").
# how many examples a report or message lists (of malformed values, unknown ids)
EXAMPLES = 5
NOTE_TABLES = frozenset({"NOTEEVENTS", "discharge", "discharge_detail"})


def table_path(
    mimic_dir: str | Path, name: str, *, source: str = "MIMIC-III", shown: str | None = None
) -> Path:
    """Locate NAME.csv.gz or NAME.csv in `mimic_dir` (PhysioNet ships MIMIC-III's names in
    upper case, MIMIC-IV's in lower case); the error names the table as `shown`.

    Where both are there the table is refused, naming both: they may differ (a file
    unpacked and then edited), and picking one silently would build a dataset from the
    copy the user did not mean."""
    mimic_dir = Path(mimic_dir)
    candidates = [mimic_dir / f"{name}.csv.gz", mimic_dir / f"{name}.csv"]
    present = [cand for cand in candidates if cand.is_file()]
    if len(present) == 2:
        raise InputError(
            f"{source} table {shown or name} is there twice, as {present[0].name} and "
            f"{present[1].name}: remove the one that should not be read",
            file=mimic_dir,
        )
    if present:
        return present[0]
    raise InputError(
        f"{source} table {shown or name} not found (looked for {candidates[0].name} and "
        f"{candidates[1].name})",
        file=mimic_dir,
    )


@dataclass
class Row:
    """One CSV record with its 1-based row number (the header is row 1): the columns a
    reader asked for, and every field of the row (to compare whole rows)."""

    number: int
    values: dict[str, str]
    fields: list[str] = dataclass_field(default_factory=list)


def _read_failure(exc: BaseException) -> str:
    """Why a compressed or plain stream could not be read, in words that hold none of
    its bytes (gzip's own message quotes the bytes it did not expect)."""
    if isinstance(exc, EOFError):
        return "the gzip stream ends before its end marker"
    if isinstance(exc, gzip.BadGzipFile):
        return str(exc).split(" (", 1)[0]
    if isinstance(exc, zlib.error):
        return f"corrupt gzip data: {exc}"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


_STREAM_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error, OSError)


class TableReader:
    """Iterate a MIMIC CSV (plain or gzip) as validated records.

    The text rule of every MIMIC table, in this one place: UTF-8 with an optional byte
    order mark, LF or CRLF line ends (the csv module's own); a NUL byte or bytes that are
    not UTF-8 in any field are refused naming the row, the column and the character
    offset, never the bytes (PostgreSQL, which exported MIMIC, can hold neither, so such
    a file is damaged). Decoding uses surrogateescape so a stray byte does not abort the
    stream at an unknown position but is found, located, in its row.

    Reading a note table (`NOTE_TABLES`, or `private=True`) no message shows a field's
    content: see `describe_header` and `shown`.
    """

    def __init__(
        self,
        path: str | Path,
        required: Sequence[str],
        *,
        table: str | None = None,
        progress: bool = False,
        desc: str | None = None,
        source: str = "MIMIC-III v1.4",
        columns: Sequence[str] | None = None,
        private: bool | None = None,
    ) -> None:
        self.path = Path(path)
        self.source = source
        self.required = tuple(required)
        self.table = table or self.path.name.split(".")[0]
        self.columns = tuple(columns or TABLE_COLUMNS.get(self.table, self.required))
        self.private = self.table in NOTE_TABLES if private is None else private
        self.progress = progress
        self.desc = desc or self.table
        self.header: list[str] = []  # the file's header, once iteration has read it
        if not self.path.is_file():
            raise InputError("file not found", file=self.path)

    def _open(self) -> tuple[IO[bytes], IO[str]]:
        raw = open(self.path, "rb")  # noqa: SIM115 - closed in __iter__
        try:
            magic = raw.read(2)
            raw.seek(0)
            binary: IO[bytes] = (
                cast(IO[bytes], gzip.GzipFile(fileobj=raw)) if magic == b"\x1f\x8b" else raw
            )
            # utf-8-sig: a byte order mark (Excel writes one) is dropped before the csv
            # module sees it, so a quoted first column name stays a quoted name
            text = io.TextIOWrapper(
                binary, encoding="utf-8-sig", errors="surrogateescape", newline=""
            )
        except Exception:
            raw.close()
            raise
        return raw, text

    def shown(self, value: str) -> str:
        """A field's value for a message: itself (cut, quoted) in a code table; only its
        size in a note table, whose every field may be a patient's text."""
        if self.private:
            return f"a value of {len(value)} characters"
        return repr(value[:40])

    def _column(self, header: list[str], index: int) -> str:
        """A column's name for a message: its header cell where that is a name the
        format defines, else its position (a header cell may be text, see `shown`)."""
        if index < len(header) and header[index] in self.columns:
            return header[index]
        return f"column {index + 1}"

    def _check_text(self, fields: list[str], header: list[str], number: int) -> None:
        """Refuse a NUL byte or bytes that are not UTF-8 in any field of a row."""
        joined = "".join(fields)  # one pass in C for the common all-ASCII, NUL-free row
        if joined.isascii() and "\x00" not in joined:
            return
        for index, value in enumerate(fields):
            nul = value.find("\x00")
            if nul >= 0:
                raise InputError(
                    f"a NUL byte at character {nul + 1} of {len(value)}: the file is "
                    "damaged or not a CSV text file",
                    file=self.path,
                    row=number,
                    field=self._column(header, index),
                )
            if value.isascii():
                continue
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                bad = value[exc.start].encode("utf-8", "surrogateescape")[0]
                raise InputError(
                    f"bytes that are not valid UTF-8 (byte 0x{bad:02x} at character "
                    f"{exc.start + 1} of {len(value)})",
                    file=self.path,
                    row=number,
                    field=self._column(header, index),
                ) from None

    def _check_header(self, header: list[str]) -> None:
        self._check_text(header, [], 1)
        missing = [c for c in self.required if c not in header]
        if not missing:
            return
        expected = f"{self.source} {self.table} columns"
        if not any(cell in self.columns for cell in header):
            raise InputError(
                f"not a header: none of its {len(header)} cells is a {self.source} "
                f"{self.table} column name; is the header row missing? (a {self.table} file "
                f"starts with the row {','.join(self.columns)})",
                file=self.path,
                row=1,
            )
        raise InputError(
            f"missing column(s) {', '.join(missing)}; the header has "
            f"{describe_header(header, self.columns, private=self.private)} "
            f"(expected {expected})",
            file=self.path,
            row=1,
            field=missing[0],
        )

    def __iter__(self) -> Iterator[Row]:
        raw, text = self._open()
        total = self.path.stat().st_size
        bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=self.desc,
            disable=not self.progress,
            file=sys.stderr,
            mininterval=2.0,
        )
        try:
            reader = csv.reader(text, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise InputError("file is empty (no header row)", file=self.path) from None
            except csv.Error as exc:
                raise InputError(f"cannot read header: {exc}", file=self.path, row=1) from None
            except _STREAM_ERRORS as exc:
                raise InputError(
                    f"cannot read header: file is truncated or not valid gzip "
                    f"({_read_failure(exc)})",
                    file=self.path,
                    row=1,
                ) from None
            header = [h.strip() for h in header]
            self._check_header(header)
            self.header = header
            index = {name: header.index(name) for name in self.required}
            width = len(header)
            number = 1
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    raise InputError(
                        f"malformed CSV ({exc})", file=self.path, row=number + 1
                    ) from None
                except _STREAM_ERRORS as exc:
                    raise InputError(
                        f"file is truncated or not valid gzip ({_read_failure(exc)})",
                        file=self.path,
                        row=number + 1,
                    ) from None
                number += 1
                if not fields:
                    continue
                if len(fields) != width:
                    raise InputError(
                        f"expected {width} fields, found {len(fields)}",
                        file=self.path,
                        row=number,
                    )
                self._check_text(fields, header, number)
                if number % 20000 == 0:
                    bar.update(raw.tell() - bar.n)
                yield Row(number, {name: fields[i] for name, i in index.items()}, fields)
            bar.update(total - bar.n)
        finally:
            bar.close()
            text.close()
            raw.close()

    def field(self, row: Row, name: str) -> str:
        """Return a field (its text was checked as the row was read)."""
        return row.values[name]

    def digest(self, row: Row) -> bytes:
        """A fingerprint of a whole row: two rows with the same digest hold the same
        fields. Kept instead of the row, so that comparing rows costs 16 bytes per row,
        not a copy of its note."""
        h = hashlib.blake2b(digest_size=16)
        for value in row.fields:
            h.update(value.encode("utf-8", "surrogateescape"))
            h.update(b"\x1f")
        return h.digest()

    def is_duplicate(
        self, row: Row, key: object, kept: dict[Any, tuple[bytes, int]], field: str
    ) -> bool:
        """True where `row` repeats, field for field, a kept row of the same key (ROW_ID,
        note_id), which the caller then skips and counts; an InputError where it shares
        a kept row's key but not its content. The key identifies a note row in MIMIC, so
        two rows with one key are a copy (a file concatenated twice) or a damaged file.
        `kept` maps key -> (digest, row number). The message names rows, never fields."""
        digest = self.digest(row)
        first = kept.setdefault(key, (digest, row.number))
        if first[1] == row.number:
            return False
        if first[0] == digest:
            return True
        raise InputError(
            f"this row has the {field} of row {first[1]} but other content: a {self.table} "
            f"table holds one row per {field}",
            file=self.path,
            row=row.number,
            field=field,
        )

    def check_subject(
        self, subjects: dict[int, int], hadm: int, subject: int, row: Row, field: str
    ) -> None:
        """Record an admission's patient in `subjects`, or refuse a row that gives it
        another one: an admission has one patient in every MIMIC table, and a
        patient-level split built on a wrong one would put a patient's stays into two
        splits. The identifiers are named; they are keys, not a note's content."""
        previous = subjects.setdefault(hadm, subject)
        if previous != subject:
            admission = "HADM_ID" if field.isupper() else "hadm_id"  # MIMIC-III or IV
            raise InputError(
                f"{admission} {hadm} belongs to {field} {previous} in the rows read before "
                f"but to {subject} here",
                file=self.path,
                row=row.number,
                field=field,
            )

    def integer(self, row: Row, name: str, *, allow_empty: bool = False) -> int | None:
        """Parse an identifier column (MIMIC writes them as bare integers)."""
        value = self.field(row, name).strip()
        if not value:
            if allow_empty:
                return None
            raise InputError(
                "empty value where an integer is required",
                file=self.path,
                row=row.number,
                field=name,
            )
        try:
            return int(value)
        except ValueError:
            raise InputError(
                f"not an integer: {self.shown(value)}",
                file=self.path,
                row=row.number,
                field=name,
            ) from None
