"""Streaming, validating readers for the MIMIC-III v1.4 CSV tables.

NOTEEVENTS is 3.8 GB uncompressed: it is read row by row so that preparing a dataset
runs in bounded memory. Every field the workflow uses is checked as it is read, so a bad
byte or a renamed column is reported with its file, row and field instead of surfacing
later as a puzzling KeyError or a silently wrong label.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from tqdm import tqdm

from cec.errors import InputError

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


def table_path(
    mimic_dir: str | Path, name: str, *, source: str = "MIMIC-III", shown: str | None = None
) -> Path:
    """Locate NAME.csv.gz or NAME.csv in `mimic_dir` (PhysioNet ships MIMIC-III's names in
    upper case, MIMIC-IV's in lower case); the error names the table as `shown`."""
    mimic_dir = Path(mimic_dir)
    candidates = [mimic_dir / f"{name}.csv.gz", mimic_dir / f"{name}.csv"]
    for cand in candidates:
        if cand.is_file():
            return cand
    raise InputError(
        f"{source} table {shown or name} not found (looked for {candidates[0].name} and "
        f"{candidates[1].name})",
        file=mimic_dir,
    )


@dataclass
class Row:
    """One CSV record with its 1-based row number (the header is row 1)."""

    number: int
    values: dict[str, str]


class TableReader:
    """Iterate a MIMIC CSV (plain or gzip) as validated records.

    Decoding uses surrogateescape so a stray non-UTF-8 byte does not abort the whole
    stream at an unknown position; `field()` then checks just the fields a caller uses
    and reports the exact row and column of the bad byte.
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
    ) -> None:
        self.path = Path(path)
        self.source = source
        self.required = tuple(required)
        self.table = table or self.path.name.split(".")[0]
        self.progress = progress
        self.desc = desc or self.table
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
            text = io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape", newline="")
        except Exception:
            raw.close()
            raise
        return raw, text

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
            except (csv.Error, gzip.BadGzipFile, EOFError, OSError) as exc:
                raise InputError(f"cannot read header: {exc}", file=self.path, row=1) from None
            header = [h.strip().lstrip("\ufeff") for h in header]
            missing = [c for c in self.required if c not in header]
            if missing:
                raise InputError(
                    f"missing column(s) {', '.join(missing)}; the header has "
                    f"{', '.join(header)} (expected {self.source} {self.table} columns)",
                    file=self.path,
                    row=1,
                    field=missing[0],
                )
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
                except (gzip.BadGzipFile, EOFError, OSError) as exc:
                    raise InputError(
                        f"file is truncated or not valid gzip ({exc})",
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
                if number % 20000 == 0:
                    bar.update(raw.tell() - bar.n)
                yield Row(number, {name: fields[i] for name, i in index.items()})
            bar.update(total - bar.n)
        finally:
            bar.close()
            text.close()
            raw.close()

    def field(self, row: Row, name: str) -> str:
        """Return a field, raising an InputError if it holds bytes that are not UTF-8."""
        value = row.values[name]
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                bad = value[exc.start].encode("utf-8", "surrogateescape")
                raise InputError(
                    f"bytes that are not valid UTF-8 ({bad!r} at character {exc.start})",
                    file=self.path,
                    row=row.number,
                    field=name,
                ) from None
        return value

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
                f"not an integer: {value[:40]!r}", file=self.path, row=row.number, field=name
            ) from None
