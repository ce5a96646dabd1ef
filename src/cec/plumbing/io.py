"""Atomic file output: a result appears complete or not at all.

Snakemake removes outputs of failed jobs, but `cec` is also run by hand; writing to a
temporary sibling and renaming on success means an interrupted run never leaves a
half-written file that a later step would trust.
"""

from __future__ import annotations

import contextlib
import ctypes
import gzip
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # what open() would give: results are shared files
DIR_MODE = 0o777 & ~_UMASK
log = logging.getLogger(__name__)
_HOST = socket.gethostname().split(".")[0] or "host"


# Tests kill a command at its N-th file boundary (a temporary written, a rename, a swap)
# to check that every kill leaves the old output or the new one; unset, it costs nothing.
KILL_AT_ENV = "CEC_TEST_KILL_AT_BOUNDARY"
_boundaries = 0


def _boundary() -> None:
    global _boundaries
    target = os.environ.get(KILL_AT_ENV)
    if not target:
        return
    _boundaries += 1
    if _boundaries == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


def temp_prefix(path: Path) -> str:
    """`.{name}.{host}-{pid}.`: a temporary sibling says whose it is, so that the next run
    can tell a killed run's leftovers from a live run's work in progress."""
    return f".{path.name}.{_HOST}-{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temporary siblings of `path` (`.{name}.{host}-{pid}.*.part`) that a
    killed run on this host left behind: only those whose process is gone. Temporaries of
    live processes and of other hosts (a shared cluster file system) are left alone.
    Each removal is logged; returns what was removed."""
    path = Path(path)
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.{re.escape(_HOST)}-(\d+)\.[^/]*\.part$")
    for sibling in path.parent.iterdir():
        match = pattern.match(sibling.name)
        if match is None or _alive(int(match.group(1))):
            continue
        folder = sibling.is_dir() and not sibling.is_symlink()
        if folder:
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)
        log.warning(
            "removed %s: a temporary %s left by a killed run (pid %s)",
            sibling,
            "folder" if folder else "file",
            match.group(1),
        )
        removed.append(sibling)
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600
        _fsync(tmp)  # the data is on disk before the name points at it
        _boundary()
        os.replace(tmp, path)
        _boundary()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(path: str | Path, *, compress: bool | None = None) -> Iterator[IO[str]]:
    """Open a text file for writing that is renamed into place on success.

    Gzip is chosen from the `.gz` suffix unless `compress` says otherwise; level 1 keeps
    multi-GB synthetic tables fast to write while staying a standard gzip stream.
    """
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    with atomic_path(path) as tmp:
        if compress:
            with gzip.open(tmp, "wt", encoding="utf-8", newline="", compresslevel=1) as fh:
                yield fh
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                yield fh


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where
    the system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(
        at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange
    )
    return result == 0


def _share(tree: Path) -> None:
    """Give every file and folder under `tree` the modes open() and mkdir() would: some
    writers (safetensors, mkstemp) make 0600 files, which others on a shared cluster file
    system could then not read."""
    os.chmod(tree, DIR_MODE)
    for root, dirs, files in os.walk(tree):
        for name in dirs:
            os.chmod(Path(root, name), DIR_MODE)
        for name in files:
            os.chmod(Path(root, name), FILE_MODE)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a directory under a temporary name and swap it into place on success.

    A reader sees the whole old folder or the whole new one, never a mix: where the
    folder exists, the two are exchanged in one atomic rename (then the old one is
    removed). Where the system cannot exchange, the old folder is renamed aside first,
    so a kill between the two renames leaves the path missing (never mixed) and the old
    folder in a temporary sibling that the next run removes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".part", dir=path.parent))
    try:
        yield tmp
        _share(tmp)
        _boundary()
        if path.exists() and _exchange(tmp, path):
            _boundary()
            shutil.rmtree(tmp, ignore_errors=True)  # now the old folder
            return
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".part", dir=path.parent))
            os.replace(path, old / "old")
            _boundary()
            os.replace(tmp, path)
            _boundary()
            shutil.rmtree(old, ignore_errors=True)
            return
        os.replace(tmp, path)
        _boundary()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _below_a_file(path: Path) -> None:
    from cec.plumbing.errors import InputError

    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise InputError(f"cannot write below {parent}: it is a file", file=path)


def _nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists: where a write would land first."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()  # a relative path whose every part is missing


def _prove_writable(folder: Path, path: Path) -> None:
    """Create and remove a temporary file in `folder`. Permission bits do not say whether
    a write will succeed (root ignores them; a read-only mount or a full quota overrides
    them), so only a real write tells; it costs one empty file."""
    from cec.plumbing.errors import InputError

    try:
        fd, name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".probe.part", dir=folder)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"cannot write in {folder}: {reason}", file=path) from None
    os.close(fd)
    os.unlink(name)


def check_output_folder(path: str | Path) -> None:
    """Fail before any work where `path` cannot become a folder: it is a file, one of its
    parents is, or the place it would be built in (its nearest existing ancestor, and the
    folder itself where it exists) cannot be written. Checked by a real write, before a
    command reads gigabytes of input only to find it cannot save the result."""
    from cec.plumbing.errors import InputError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError("exists and is not a folder", file=path)
    _below_a_file(path)
    _prove_writable(_nearest_existing(path.parent), path)
    if path.is_dir():
        _prove_writable(path, path)


def check_output_file(path: str | Path) -> None:
    """Fail before any work where `path` cannot become a file: it is a folder, one of its
    parents is a file, or its nearest existing parent cannot be written (a real write)."""
    from cec.plumbing.errors import InputError

    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder: give the path of a file to write", file=path)
    _below_a_file(path)
    _prove_writable(_nearest_existing(path.parent), path)


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write one JSON object per line, atomically; return the number of lines."""
    n = 0
    with atomic_write(path) as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False))
            fh.write("\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Read a JSONL file, naming the file and line of any malformed record: a line that is
    not a JSON object (a cut line), a blank line between records, a NUL byte or bytes that
    are not UTF-8 (`decode_line`: lines are decoded one by one, so the row is exact).
    Blank lines at the very end are accepted (a trailing newline or two), and so are a
    UTF-8 byte order mark and CRLF line ends.

    JSONL files hold notes: a message names the row and a character offset, never a part
    of the line."""
    from cec.plumbing.errors import InputError

    blank = None
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            line = decode_line(raw.rstrip(b"\r\n"), path, number)
            if not line.strip():
                blank = blank or number
                continue
            if blank is not None:
                raise InputError("blank line between records", file=path, row=blank)
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                message = (
                    f"not valid JSON at character {exc.pos + 1} of {len(line)} "
                    f"({exc.msg}): a cut or malformed line"
                )
                raise InputError(message, file=path, row=number) from None
            except RecursionError:
                raise InputError("JSON nested too deeply", file=path, row=number) from None
            if not isinstance(record, dict):
                found = json_type(record)
                raise InputError(f"not a JSON object (found {found})", file=path, row=number)
            yield record


# JSON names of the Python types json.loads returns: messages speak the file's language
_JSON_TYPES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type ("an array"), for messages that must not
    show the value itself."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def decode_line(raw: bytes, path: str | Path, number: int) -> str:
    """One line of a text file (without its line end) as text, or a located InputError.

    The one rule of every line-based reader (JSONL, code lists, split files): a UTF-8
    byte order mark on the first line is dropped; a NUL byte or bytes that are not UTF-8
    are refused naming the row and byte offset, never the bytes around them (a line may
    be a note, and binary garbage is no use on a terminal)."""
    from cec.plumbing.errors import InputError

    nul = raw.find(b"\x00")
    if nul >= 0:
        raise InputError(
            f"a NUL byte at byte {nul + 1}: a binary file, not UTF-8 text", file=path, row=number
        )
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(not_utf8(exc, in_line=True), file=path, row=number) from None
    return line.removeprefix("\ufeff") if number == 1 else line


def read_text_lines(path: str | Path) -> list[str]:
    """The lines of a small text file (a code list, a split file) under `decode_line`'s
    rule; lines end at LF, CRLF or CR. Whole-file: these lists are at most megabytes."""
    data = Path(path).read_bytes()
    return [decode_line(raw, path, n) for n, raw in enumerate(data.splitlines(), start=1)]


# A dataset record's fields (what `assemble` writes) and what each must be.
RECORD_FIELDS: dict[str, str] = {
    "hadm_id": "an integer or a string of digits",
    "subject_id": "an integer or a string of digits",
    "text": "a string",
    "labels": "an array of strings",
}


def _field_fault(name: str, value: Any) -> str | None:
    """What is wrong with one field of a record, in words that never show its value."""
    if name == "labels":
        if not isinstance(value, list):
            return f"expected an array of strings, found {json_type(value)}"
        for i, label in enumerate(value):
            if not isinstance(label, str):
                return f"expected an array of strings, item {i + 1} is {json_type(label)}"
        return None
    if name != "text" and isinstance(value, int) and not isinstance(value, bool):
        return None
    if not isinstance(value, str):
        return f"expected {RECORD_FIELDS[name]}, found {json_type(value)}"
    if name != "text" and not value.isdecimal():
        return f"expected {RECORD_FIELDS[name]}, found a string of {len(value)} characters"
    return None


def check_record(record: dict[str, Any], path: str | Path, row: int) -> dict[str, Any]:
    """Return `record` if it has every field of a dataset record with the right type,
    else raise an InputError naming the file, row and field. A record holds a note: the
    message names the field and the JSON type found, never a value (nor the names of
    fields it does not know, which are the file's text too)."""
    from cec.plumbing.errors import InputError

    for name in RECORD_FIELDS:
        if name not in record:
            raise InputError("missing from the record", file=path, row=row, field=name)
        fault = _field_fault(name, record[name])
        if fault is not None:
            raise InputError(fault, file=path, row=row, field=name)
    return record


def read_dataset(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of one split file of a dataset (`{split}.jsonl`, as
    `cec.datasets.assembly.assemble` writes them), each checked by `check_record`;
    the syntax of the file is `read_jsonl`'s to check. Here, in the shared layer, so that
    every stage that reads a dataset reads it by one rule."""
    for row, record in enumerate(read_jsonl(path), start=1):
        yield check_record(record, path, row)


def not_utf8(exc: UnicodeDecodeError, *, in_line: bool = False) -> str:
    """A decoding error in words: the offending byte's value (and, where the error was
    met decoding one line, its offset in the line), never the text around it."""
    where = f" at byte {exc.start + 1} of the line" if in_line else ""
    return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x}{where} cannot be decoded)"


def first_undecodable_row(path: str | Path) -> int | None:
    """The 1-based line of the first bytes that are not UTF-8: text readers decode in
    chunks, so their error offset cannot name the row; this re-reads the file line by
    line, only after such an error."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


_PLAIN_CELL = re.compile(r"[A-Za-z_][A-Za-z0-9_ ./-]{0,39}")


def describe_header(cells: list[str], known: Iterable[str], *, private: bool) -> str:
    """A header row in words for an error message, under the privacy rule of note tables.

    A "header" may be a data row (a file without its header), and in a note table that
    row is a note: with `private`, only cells that are column names the format defines
    are shown, the others are counted with their sizes. Other tables also show cells
    that look like column names (a renamed column), never binary or long text."""
    names = set(known)

    def showable(cell: str) -> bool:
        return cell in names or (not private and _PLAIN_CELL.fullmatch(cell) is not None)

    shown = [c for c in cells if showable(c)]
    hidden = [len(c) for c in cells if not showable(c)]
    parts = [", ".join(shown)] if shown else []
    if hidden:
        sizes = ", ".join(map(str, hidden[:5])) + (", ..." if len(hidden) > 5 else "")
        what = "cell" if len(hidden) == 1 else "cells"
        parts.append(f"{len(hidden)} other {what} ({sizes} characters) not shown")
    return "; ".join(parts) or "no cells"


def write_json(path: str | Path, obj: Any) -> None:
    """Write pretty JSON atomically."""
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")
