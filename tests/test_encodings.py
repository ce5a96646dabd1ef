"""Text encodings: one rule per reader kind, the same for every file of that kind.

A UTF-8 byte order mark and CRLF line ends (what Excel and Windows tools write) are read
as if they were not there; a NUL byte or binary garbage is refused with the file and row,
and the message shows neither (it may be a note, and it is no use on a terminal). The
kinds: MIMIC CSV tables (`cec.readers.tables.TableReader`, plain and gzip), line-based lists (code
lists, split files, the Edin et al. split CSV: `cec.plumbing.io.read_text_lines`) and JSONL
(`cec.plumbing.io.read_jsonl`).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cec.datasets.mimic3 import PrepareOptions, prepare_dataset
from cec.datasets.splits import read_edin_split, read_split_file
from cec.icd.code_lists import read_code_list
from cec.plumbing.errors import InputError
from cec.plumbing.io import read_jsonl
from cec.readers.tables import TableReader
from tests.conftest import mini_tables, write_table


def _rows(path: Path) -> list[dict[str, str]]:
    reader = TableReader(path, ("ROW_ID", "SUBJECT_ID", "ICD9_CODE"), table="DIAGNOSES_ICD")
    return [row.values for row in reader]


@dataclass(frozen=True)
class Kind:
    """A reader kind: its file name, a clean file (lines end in LF, no BOM) whose second
    line is a record, the reader, and whether the file is gzipped before it is read."""

    name: str
    filename: str
    clean: bytes
    read: Callable[[Path], Any]
    gz: bool = False


KINDS = [
    Kind(
        "MIMIC CSV",
        "DIAGNOSES_ICD.csv",
        b'"ROW_ID","SUBJECT_ID","HADM_ID","SEQ_NUM","ICD9_CODE"\n1,1,101,1,"5849"\n'
        b'2,1,101,2,"V4581"\n',
        _rows,
    ),
    Kind(
        "MIMIC CSV, gzip",
        "DIAGNOSES_ICD.csv.gz",
        b'"ROW_ID","SUBJECT_ID","HADM_ID","SEQ_NUM","ICD9_CODE"\n1,1,101,1,"5849"\n'
        b'2,1,101,2,"V4581"\n',
        _rows,
        gz=True,
    ),
    Kind("code list", "codes.txt", b"# codes\n584.9\nV45.81  # a V code\n96.71\n", read_code_list),
    Kind("split file", "train_50_hadm_ids.csv", b"HADM_ID\n101\n102\n", read_split_file),
    Kind(
        "Edin split CSV",
        "mimiciv_icd10_split.csv",
        b"_id,split\n201,train\n202,val\n203,test\n",
        read_edin_split,
    ),
    Kind(
        "JSONL",
        "train.jsonl",
        b'{"hadm_id": "1", "text": "a note", "labels": ["A"]}\n'
        b'{"hadm_id": "2", "text": "caf\xc3\xa9", "labels": []}\n',
        lambda path: list(read_jsonl(path)),
    ),
]
BOM = b"\xef\xbb\xbf"
READABLE = {
    "BOM": lambda data: BOM + data,
    "CRLF": lambda data: data.replace(b"\n", b"\r\n"),
    "BOM and CRLF": lambda data: BOM + data.replace(b"\n", b"\r\n"),
}


def _second_line(data: bytes, insert: bytes) -> bytes:
    """`data` with `insert` after the first character of its second line (a record)."""
    first, rest = data.split(b"\n", 1)
    return first + b"\n" + rest[:1] + insert + rest[1:]


REFUSED = {
    "a NUL byte": (b"\x00", "NUL byte"),
    "binary garbage": (b"\xff\xfe\x80\x9b[2J", "not"),  # with a terminal escape
}


def _write(tmp_path: Path, kind: Kind, data: bytes) -> Path:
    path = tmp_path / kind.filename
    path.write_bytes(gzip.compress(data) if kind.gz else data)
    return path


@pytest.mark.parametrize("variant", list(READABLE))
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_a_bom_and_crlf_read_as_the_clean_file(kind: Kind, variant: str, tmp_path: Path) -> None:
    clean_dir, dirty_dir = tmp_path / "clean", tmp_path / "dirty"
    clean_dir.mkdir()
    dirty_dir.mkdir()
    expected = kind.read(_write(clean_dir, kind, kind.clean))
    assert expected  # the clean file says something
    assert kind.read(_write(dirty_dir, kind, READABLE[variant](kind.clean))) == expected


@pytest.mark.parametrize("fault", list(REFUSED))
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_nul_and_garbage_are_refused_at_their_row_without_the_bytes(
    kind: Kind, fault: str, tmp_path: Path
) -> None:
    insert, expect = REFUSED[fault]
    path = _write(tmp_path, kind, _second_line(kind.clean, insert))
    with pytest.raises(InputError) as err:
        kind.read(path)
    message = str(err.value)
    assert err.value.row == 2 and str(path) in message and expect in message
    assert message.isprintable() and "\\x" not in message, message  # no byte, no repr of one
    assert "[2J" not in message


def test_a_mimic_copy_saved_with_bom_and_crlf_gives_the_same_dataset(
    tmp_path: Path, code_list: Callable[..., Path]
) -> None:
    """End to end: every MIMIC-III table re-saved by a Windows tool (BOM, CRLF, also
    inside the quoted notes, where the csv module keeps them as the note's own)."""
    codes = code_list(["584.9", "585.9", "96.71", "V45.81", "486"])
    datasets = []
    for name, edit in (("clean", lambda d: d), ("windows", READABLE["BOM and CRLF"])):
        mimic = tmp_path / name
        mimic.mkdir()
        for table, rows in mini_tables().items():
            plain = write_table(mimic, table, rows, gz=False)
            data = plain.read_bytes()
            if name == "windows" and table == "NOTEEVENTS":
                # keep the notes' own line ends: only the row ends become CRLF
                data = data.replace(b'"\n', b'"\r\n')
                plain.write_bytes(BOM + data)
            else:
                plain.write_bytes(edit(data))
        out = tmp_path / f"out-{name}"
        prepare_dataset(mimic, codes, out, None, PrepareOptions(progress=False))
        datasets.append({s: (out / f"{s}.jsonl").read_bytes() for s in ("train", "dev", "test")})
    assert datasets[0] == datasets[1]
