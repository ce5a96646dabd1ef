"""Errors that point a user at the exact place in their input that is wrong.

Researchers feed the workflow multi-GB CSVs they did not write; an error that says only
"KeyError: 'ICD9_CODE'" costs them an afternoon. Every input problem is raised as an
`InputError` naming the file, and where known the row (1-based, counting the header as
row 1, as a spreadsheet shows it) and the field.
"""

from __future__ import annotations

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
