"""A runtime privacy guard: no request may carry a run of 8+ words from any note.

MIMIC's data use agreement forbids sending notes to third-party APIs. The concept prompts
are built from public ICD text only, and the Snakemake DAG keeps notes out of that rule's
content inputs; this guard is the second line of defence for the day someone changes a
template or a code table. It keeps only 64-bit hashes of the notes' 8-word shingles, so
the file it reads cannot give back any text, and its refusals never quote the match.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from cec.plumbing.errors import InputError

SHINGLE_WORDS = 8
_WORD = re.compile(r"[a-z0-9]+")


class PrivacyGuardError(InputError, RuntimeError):
    """A request was refused because it shares a word run with a note (one line naming
    the prompt, never the words: a job's log shows it, not a traceback)."""


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _hash(words: list[str]) -> int:
    digest = hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def shingle_hashes(text: str, n: int = SHINGLE_WORDS) -> np.ndarray:
    """Hashes of every run of n consecutive words (lower-cased, punctuation ignored)."""
    words = _words(text)
    if len(words) < n:
        return np.empty(0, dtype=np.uint64)
    return np.fromiter(
        (_hash(words[i : i + n]) for i in range(len(words) - n + 1)),
        dtype=np.uint64,
        count=len(words) - n + 1,
    )


@functools.cache
def public_icd_hashes() -> np.ndarray:
    """Shingles of the public ICD-9-CM and ICD-10-CM/PCS titles (leaves and parents).

    Notes sometimes quote a code title verbatim, and the prompts must show the titles; a
    run that is public ICD text is not a leak, so it never counts as a match. Both
    versions count for every dataset: a MIMIC-IV note may quote either.
    """
    from cec.icd.icd9 import Icd9Hierarchy
    from cec.icd.icd10 import Icd10Hierarchy

    icd9 = Icd9Hierarchy.load()
    icd10 = Icd10Hierarchy.load()
    texts: set[str] = set()
    for kind in ("diagnosis", "procedure"):
        for _code, short, long in icd9.d_icd_rows(kind):  # type: ignore[arg-type]
            texts |= {short, long}
        for _code, long in icd10.d_icd_rows(kind):  # type: ignore[arg-type]
            texts.add(long)
        for hierarchy in (icd9, icd10):
            for code in hierarchy.leaves(kind):  # type: ignore[arg-type]
                texts.add(hierarchy.parent_title(code, kind))  # type: ignore[arg-type]
    parts = [shingle_hashes(t) for t in sorted(texts)]
    hashes = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)
    hashes.flags.writeable = False  # shared by every guard of the process (cached)
    return hashes


class NoteShingleGuard:
    """Sorted unique shingle hashes of a set of notes; membership by binary search.

    Shingles that are also public ICD text are removed at construction (see
    `public_icd_hashes`), so quoting a code title is allowed and anything else is not.
    """

    def __init__(self, hashes: np.ndarray, public: np.ndarray | None = None) -> None:
        notes = np.unique(hashes.astype(np.uint64))
        public = public_icd_hashes() if public is None else public
        self.hashes = np.setdiff1d(notes, public, assume_unique=False)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> NoteShingleGuard:
        parts = [shingle_hashes(t) for t in texts]
        return cls(np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64))

    @classmethod
    def load(cls, path: str | Path) -> NoteShingleGuard:
        # the file holds what a guard kept: public ICD text was removed before `save`, so
        # loading does not build the public set again (2 s of shingling per job)
        from cec.plumbing.artifacts import damaged

        try:
            hashes = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise damaged(path, "missing") from None
        except (ValueError, EOFError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise  # the disk's fault, not the file's: the CLI names the path
            raise damaged(path, "not a whole .npy array of note hashes: cut or damaged") from None
        if hashes.ndim != 1 or hashes.dtype != np.uint64:
            raise damaged(
                path, f"expected a 1-D uint64 array, found {hashes.ndim}-D {hashes.dtype}"
            )
        return cls(hashes, public=np.empty(0, dtype=np.uint64))

    def save(self, path: str | Path) -> None:
        from cec.plumbing.io import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, self.hashes, allow_pickle=False)

    def __len__(self) -> int:
        return int(self.hashes.size)

    def shares_run(self, text: str) -> bool:
        """True if any 8-word run of `text` occurs in a note."""
        if self.hashes.size == 0:
            return False
        probe = shingle_hashes(text)
        if probe.size == 0:
            return False
        idx = np.searchsorted(self.hashes, probe)
        idx[idx == self.hashes.size] = 0
        return bool(np.any(self.hashes[idx] == probe))

    def check(self, text: str, what: str) -> None:
        """Refuse `text` (naming `what`, never quoting the text) if it shares a run."""
        if self.shares_run(text):
            raise PrivacyGuardError(
                f"refused to send {what}: it shares a run of {SHINGLE_WORDS} or more words "
                "with a note of the dataset (MIMIC text must never reach an external API)"
            )
