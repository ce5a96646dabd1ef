"""Errors that point a user at the exact place in their input that is wrong.

Researchers feed the workflow multi-GB CSVs they did not write; an error that says only
"KeyError: 'ICD9_CODE'" costs them an afternoon. Every input problem is raised as an
`InputError` naming the file, and where known the row (1-based, counting the header as
row 1, as a spreadsheet shows it) and the field.
"""

from __future__ import annotations

import os
from pathlib import Path


class InputError(Exception):
    """A problem with user-supplied input, located as precisely as we can."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.row = row
        self.field = field
        self.message = message
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)

    def restated(self, message: str) -> InputError:
        """The same place with another message: a caller that knows more (which config
        named this file, how to rebuild it) says so without losing the location."""
        return InputError(message, file=self.file, row=self.row, field=self.field)


def os_error_message(exc: OSError, out: str | Path | None = None) -> str:
    """One line for an operating-system error (no space left, read-only file system,
    permission denied): `file PATH: REASON`, from the error's own fields and never from
    `exc.args`, which may hold what was being read or written. A write error carries no
    path: it is the output's, `out`. A path inside a temporary sibling of the output
    (`cec.plumbing.io`'s `.NAME.HOST-PID.*.part`) is reported as the output, the name the
    user gave."""
    reason = exc.strerror or f"{type(exc).__name__} (an operating-system error)"
    if not isinstance(exc.filename, str | bytes | os.PathLike):  # None, or a descriptor
        return f"file {out}: {reason}" if out is not None else reason
    path = Path(os.fsdecode(exc.filename))
    if out is not None and any(
        part.startswith(".") and part.endswith(".part") for part in path.parts
    ):
        path = Path(out)
    if isinstance(exc.filename2, str | bytes | os.PathLike):  # a rename, a link
        return f"file {path} -> {os.fsdecode(exc.filename2)}: {reason}"
    return f"file {path}: {reason}"
