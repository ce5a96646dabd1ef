"""Train/dev/test splits: the literature's split files, or a seeded patient-level split.

The published MIMIC-III-50 and rare-50 numbers are only comparable on the caml-mimic and
KEPT splits, so when a user supplies them they are used verbatim. Without them we split
by patient (never by admission: a patient's later stay must not leak into training) with
a seed, and the data report says so.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from pathlib import Path

from cec.plumbing.artifacts import SPLITS
from cec.plumbing.errors import InputError
from cec.plumbing.io import describe_header, read_text_lines


def find_split_files(split_dir: str | Path) -> dict[str, Path]:
    """Find one file per split: `{split}.csv` or `{split}_*.csv` (caml-mimic's
    `train_50_hadm_ids.csv`, KEPT's rare-50 lists)."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise InputError("split directory not found", file=split_dir)
    found: dict[str, Path] = {}
    for split in SPLITS:
        matches = sorted({*split_dir.glob(f"{split}.csv"), *split_dir.glob(f"{split}_*.csv")})
        if not matches:
            raise InputError(
                f"no split file for '{split}' (expected {split}.csv or {split}_*.csv, "
                f"e.g. {split}_50_hadm_ids.csv)",
                file=split_dir,
            )
        if len(matches) > 1:
            names = ", ".join(m.name for m in matches)
            raise InputError(f"several split files for '{split}': {names}", file=split_dir)
        found[split] = matches[0]
    return found


def read_split_file(path: str | Path) -> list[int]:
    """Read HADM_IDs, one per line; an optional header line naming HADM_ID is skipped."""
    path = Path(path)
    lines = read_text_lines(path)  # BOM, CRLF, NUL and non-UTF-8: cec.plumbing.io's one rule
    ids: list[int] = []
    seen: set[int] = set()
    for number, line in enumerate(lines, start=1):
        value = line.split(",", 1)[0].strip().strip('"')
        if not value:
            continue
        if number == 1 and value.upper() == "HADM_ID":
            continue
        try:
            hadm = int(value)
        except ValueError:
            raise InputError(
                f"not a HADM_ID: {value[:40]!r}", file=path, row=number, field="HADM_ID"
            ) from None
        if hadm in seen:
            raise InputError(f"HADM_ID {hadm} listed twice", file=path, row=number, field="HADM_ID")
        seen.add(hadm)
        ids.append(hadm)
    if not ids:
        raise InputError("split file lists no HADM_ID", file=path)
    return ids


def load_split_files(files: Mapping[str, str | Path]) -> dict[str, list[int]]:
    """Read the three split files and refuse an admission listed in two splits."""
    missing = [s for s in SPLITS if s not in files]
    if missing:
        raise InputError(f"no split file given for {', '.join(missing)}")
    for split in SPLITS:
        if not Path(files[split]).is_file():
            raise InputError(f"{split} split file not found", file=files[split])
    splits = {split: read_split_file(path) for split, path in files.items()}
    owner: dict[int, str] = {}
    for split in SPLITS:
        for hadm in splits[split]:
            if hadm in owner:
                raise InputError(
                    f"HADM_ID {hadm} is in both the {owner[hadm]} and {split} split files",
                    file=files[split],
                    field="HADM_ID",
                )
            owner[hadm] = split
    return splits


def patient_split(
    admissions: Mapping[int, int],
    fractions: Mapping[str, float],
    seed: int,
) -> dict[str, list[int]]:
    """Split admissions (hadm -> subject) by patient, seeded.

    Patients are shuffled, then dealt to the split whose share of admissions is furthest
    below its target, so the admission counts track `fractions` even when patients have
    different numbers of stays. Depends only on the ids and the seed, not on input order.
    """
    total = sum(fractions[s] for s in SPLITS)
    if total <= 0 or any(fractions[s] < 0 for s in SPLITS):
        raise ValueError(f"split fractions must be non-negative and sum > 0: {dict(fractions)}")
    by_subject: dict[int, list[int]] = {}
    for hadm, subject in admissions.items():
        by_subject.setdefault(subject, []).append(hadm)
    subjects = sorted(by_subject)
    random.Random(seed).shuffle(subjects)
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    assigned = 0
    for subject in subjects:
        stays = by_subject[subject]
        # deficit = target count minus current count after this assignment
        best = max(
            SPLITS,
            key=lambda s: fractions[s] / total * (assigned + len(stays)) - len(out[s]),
        )
        out[best].extend(stays)
        assigned += len(stays)
    return {s: sorted(v) for s, v in out.items()}


def unknown_ids(split_ids: Iterable[int], known: set[int]) -> list[int]:
    """HADM_IDs of a split file that appear nowhere in the MIMIC tables read."""
    return sorted(h for h in split_ids if h not in known)


# Edin et al. (2023) publish one file per MIMIC-IV version (mimiciv_icd9_split.feather,
# mimiciv_icd10_split.feather): a column `_id` (the hadm_id) and a column `split` that
# names train, val or test. Their `val` is our dev.
EDIN_SPLIT_NAMES = {"train": "train", "val": "dev", "test": "test"}


def _edin_rows(path: Path) -> list[tuple[int, str, str]]:
    """(row number, _id, split) of an Edin split file: Arrow IPC (.feather) or CSV."""
    if path.suffix == ".feather":
        try:
            from pyarrow import feather
        except ImportError:
            raise InputError(
                "reading a .feather split file needs pyarrow (pip install 'cec[edin]'), or "
                "give the same table as a CSV with the columns _id,split",
                file=path,
            ) from None
        try:
            table = feather.read_table(path, columns=["_id", "split"]).to_pydict()
        except Exception as exc:  # pyarrow raises several types for bad files and columns
            raise InputError(f"not an Edin et al. split file ({exc})", file=path) from None
        pairs = zip(table["_id"], table["split"], strict=True)
        return [(number, str(i), str(s)) for number, (i, s) in enumerate(pairs, start=2)]
    lines = read_text_lines(path)  # BOM, CRLF, NUL and non-UTF-8: cec.plumbing.io's one rule
    header = [h.strip().strip('"') for h in (lines[0] if lines else "").split(",")]
    if "_id" not in header or "split" not in header:
        shown = describe_header(header, ("_id", "split"), private=False) if lines else "nothing"
        raise InputError(
            f"the header has {shown}; an Edin et al. split file has the columns _id and split",
            file=path,
            row=1,
        )
    at_id, at_split = header.index("_id"), header.index("split")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [f.strip().strip('"') for f in line.split(",")]
        if len(fields) != len(header):
            raise InputError(
                f"expected {len(header)} fields, found {len(fields)}", file=path, row=number
            )
        rows.append((number, fields[at_id], fields[at_split]))
    return rows


def read_edin_split(path: str | Path) -> dict[str, list[int]]:
    """train/dev/test hadm_ids of an Edin et al. split file (their `val` is dev)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("split file not found", file=path)
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    seen: dict[int, int] = {}
    for number, raw_id, raw_split in _edin_rows(path):
        try:
            hadm = int(raw_id)
        except ValueError:
            raise InputError(
                f"not a hadm_id: {raw_id[:40]!r}", file=path, row=number, field="_id"
            ) from None
        split = EDIN_SPLIT_NAMES.get(raw_split.strip().lower())
        if split is None:
            raise InputError(
                f"split {raw_split[:20]!r} is none of train, val, test",
                file=path,
                row=number,
                field="split",
            )
        if hadm in seen:
            raise InputError(
                f"hadm_id {hadm} listed twice (first on row {seen[hadm]})",
                file=path,
                row=number,
                field="_id",
            )
        seen[hadm] = number
        out[split].append(hadm)
    if not seen:
        raise InputError("split file lists no admission", file=path)
    return out


def stratified_patient_split(
    admissions: Mapping[int, int],
    labels: Mapping[int, Iterable[str]],
    fractions: Mapping[str, float],
    seed: int,
) -> dict[str, list[int]]:
    """Split admissions (hadm -> subject) by patient, seeded, stratified by each
    patient's rarest label.

    A full iterative multi-label stratification (Sechidis et al., as Edin et al. used)
    costs a pass over every label per assignment; this cheap version keeps the property
    that matters most for a long-tailed label space. Patients are grouped by the least
    frequent code any of their admissions carries, rarest group first, shuffled within
    their group; each goes to the split with the largest deficit, counted in admissions,
    within its group plus overall. The group's term spreads a rare code's few patients
    over the splits in proportion instead of by chance; the overall term keeps the split
    sizes on `fractions` (alone, the group's term would send every single-patient group
    to train). Depends only on the ids, labels and seed, not on input order.
    """
    total = sum(fractions[s] for s in SPLITS)
    if total <= 0 or any(fractions[s] < 0 for s in SPLITS):
        raise ValueError(f"split fractions must be non-negative and sum > 0: {dict(fractions)}")
    share = {s: fractions[s] / total for s in SPLITS}
    frequency: dict[str, int] = {}
    for hadm in admissions:
        for code in set(labels.get(hadm, ())):
            frequency[code] = frequency.get(code, 0) + 1
    by_subject: dict[int, list[int]] = {}
    for hadm, subject in admissions.items():
        by_subject.setdefault(subject, []).append(hadm)

    def rarest(subject: int) -> tuple[int, str]:
        codes = {c for h in by_subject[subject] for c in labels.get(h, ())}
        return min(((frequency[c], c) for c in codes), default=(0, ""))

    strata: dict[tuple[int, str], list[int]] = {}
    for subject in sorted(by_subject):
        strata.setdefault(rarest(subject), []).append(subject)
    rng = random.Random(seed)
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    assigned = 0
    for key in sorted(strata):
        subjects = strata[key]
        rng.shuffle(subjects)
        group: dict[str, int] = dict.fromkeys(SPLITS, 0)
        in_group = 0
        for subject in subjects:
            stays = by_subject[subject]
            in_group += len(stays)
            assigned += len(stays)
            best = max(
                SPLITS,
                key=lambda s: (
                    (share[s] * in_group - group[s]) + (share[s] * assigned - len(out[s]))
                ),
            )
            out[best].extend(stays)
            group[best] += len(stays)
    return {s: sorted(v) for s, v in out.items()}
