"""MIMIC-IV v2.2 + MIMIC-IV-Note v2.2 -> one dataset of one ICD version.

A dataset holds the admissions coded in one ICD version (MIMIC-IV switched from ICD-9
to ICD-10 in October 2015; no admission mixes the two), labelled with the codes of its
code list, each with its one discharge document (`cec.readers.mimic4.collect_discharge_notes`:
the discharge summaries of the admission in note_seq order, then any addenda). The
split is Edin et al.'s published split file when given, else a seeded patient-level
split stratified by each patient's rarest label (`cec.datasets.splits.stratified_patient_split`).

Code lists are files of label strings (`config/codes/mimic4_*.txt`), or are counted
by `write_code_list` as Edin et al. count them: over the discharge rows of the
admissions that carry a code, ties by string. Counting keeps no note text (admission ids
and text digests only) and writes codes and counts, so concept generation (which sends
code titles to an API) has no note text upstream of it in the workflow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cec.datasets.assembly import Admissions, SplitPlan, assemble, check_dataset_output
from cec.datasets.splits import SPLITS, load_split_files, read_edin_split, stratified_patient_split
from cec.icd.code_lists import LabelCode, code_counts, read_code_list, write_counted_list
from cec.icd.codes import Kind
from cec.icd.icd9 import Icd9Hierarchy
from cec.icd.icd10 import Icd10Hierarchy
from cec.plumbing.artifacts import write_code_rows
from cec.plumbing.errors import InputError
from cec.readers.mimic4 import (
    SOURCE,
    TABLES,
    collect_discharge_notes,
    discharge_rows,
    read_admission_codes,
    read_titles,
    table_path,
)

log = logging.getLogger(__name__)

# Edin et al.'s MIMIC-IV split script holds out 15% of patients for test and 10% for
# validation (prepare_data/generate_mimiciv_splits.py: TEST_SIZE, VAL_SIZE)
DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.75, "dev": 0.10, "test": 0.15}


@dataclass
class Mimic4Options:
    """Choices of a MIMIC-IV dataset; defaults are documented in the config schema."""

    version: int = 10
    seed: int = 13
    # Edin et al.'s proportions (75/10/15), used when no split file is given
    fractions: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FRACTIONS))
    progress: bool = True
    literature_sizes: Mapping[str, int] | None = None


def _check_version(version: int) -> None:
    if version not in (9, 10):
        raise ValueError(f"icd_version must be 9 or 10, got {version!r}")


def _hierarchy(version: int) -> Icd9Hierarchy | Icd10Hierarchy:
    return Icd9Hierarchy.load() if version == 9 else Icd10Hierarchy.load()


def code_rows(
    codes: list[LabelCode],
    titles: Mapping[tuple[Kind, str], str],
    version: int,
    report: dict[str, Any],
) -> list[dict[str, str]]:
    """codes.tsv rows: MIMIC-IV's own title of a code where its d_icd table has it, the
    shipped CMS tables otherwise; parents always from the shipped hierarchy."""
    hierarchy = _hierarchy(version)
    rows = []
    untitled: list[str] = []
    without_parent: list[str] = []
    for lc in codes:
        title = titles.get((lc.kind, lc.code)) or hierarchy.title(lc.code, lc.kind) or ""
        if not title:
            untitled.append(lc.code)
        try:
            parent = hierarchy.parent(lc.code, lc.kind)
            parent_title = hierarchy.parent_title(lc.code, lc.kind)
        except KeyError:
            parent, parent_title = "", ""
            without_parent.append(lc.code)
        rows.append(
            {
                "code": lc.code,
                "kind": lc.kind,
                "description": title,
                "parent": parent,
                "parent_description": parent_title,
            }
        )
    report["codes_missing_from_dictionaries"] = untitled
    report["codes_without_parent"] = without_parent
    for what, missing in (("title", untitled), ("parent", without_parent)):
        if missing:
            message = (
                f"{len(missing)} listed code(s) have no ICD-{version} {what} (kept): "
                f"{', '.join(missing)}"
            )
            report["warnings"].append(message)
            log.warning(message)
    return rows


def write_code_table(
    root: str | Path, codes_file: str | Path, out_path: str | Path, version: int
) -> dict[str, Any]:
    """codes.tsv from the code list, the d_icd tables and the shipped hierarchy; reads no
    note (see the module docstring)."""
    _check_version(version)
    codes = read_code_list(codes_file, version)
    report: dict[str, Any] = {"warnings": []}
    rows = code_rows(codes, read_titles(root, version), version, report)
    write_code_rows(Path(out_path), rows)
    return report


def write_code_list(
    root: str | Path,
    version: int,
    out_path: str | Path,
    *,
    top: int | None = None,
    min_count: int = 1,
    progress: bool = False,
) -> list[tuple[str, int]]:
    """Count the codes of `version` as Edin et al. count them and write the `top` most
    frequent (or all) with a count of at least `min_count`, as a code list file whose
    comment lines say how it was counted; returns (code, count) as written.

    Edin et al. join the discharge notes with the codes and keep a code carried by 10 or
    more rows of that dataset: a code counts once for every distinct discharge row of an
    admission that carries it (`cec.readers.mimic4.discharge_rows`), and an admission
    without a discharge note does not count at all. Counting over every admission of
    hosp/ instead would let codes of admissions without a note pass the cut and change the
    label set. The top-N lists (`{top: 50}`) are ranked by the same count."""
    _check_version(version)
    if top is not None and top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    found = read_admission_codes(root, version, progress=progress)
    rows = discharge_rows(root, progress=progress)
    counted = {hadm for hadm in found.codes if rows.get(hadm)}
    ranked = [(c, n) for c, n in code_counts(found.codes, rows) if n >= min_count]
    chosen = ranked[:top] if top is not None else ranked
    if not chosen:
        raise InputError(
            f"no ICD-{version} code is carried by {min_count} or more discharge rows",
            file=table_path(root, "diagnoses_icd"),
        )
    what = f"the {top} most frequent" if top is not None else "all"
    header = [
        f"# {what} ICD-{version} codes of {SOURCE} hosp/diagnoses_icd + procedures_icd",
        f"# with a count of at least {min_count}, counted as Edin et al. count: once per "
        f"distinct note/discharge row of the {len(counted)} admissions that have both an "
        f"ICD-{version} code and a discharge note ({len(found.codes) - len(counted)} "
        "coded admissions without one do not count);",
        "# ranked by that count, ties by the code string. code  discharge rows",
    ]
    write_counted_list(out_path, header, chosen)
    return chosen


def _split_lists(
    split_file: str | Path | None, split_files: Mapping[str, str | Path] | None
) -> tuple[dict[str, list[int]] | None, dict[str, str | Path] | None]:
    """The given split as id lists, and the file each list came from."""
    if split_file is not None and split_files is not None:
        raise ValueError("give an Edin et al. split file or three split lists, not both")
    if split_file is not None:
        return read_edin_split(split_file), dict.fromkeys(SPLITS, split_file)
    if split_files is not None:
        return load_split_files(split_files), dict(split_files)
    return None, None


def prepare_mimic4_dataset(
    root: str | Path,
    codes_file: str | Path,
    out_dir: str | Path,
    opts: Mimic4Options | None = None,
    *,
    split_file: str | Path | None = None,
    split_files: Mapping[str, str | Path] | None = None,
    write_codes: bool = True,
) -> dict[str, Any]:
    """Build one dataset folder from MIMIC-IV (`root` holds hosp/ and note/); returns
    the data report that is also written. `split_file` is an Edin et al. split file
    (.feather or CSV with _id,split); `split_files` three HADM_ID lists; neither: a
    seeded stratified patient-level split."""
    opts = opts or Mimic4Options()
    _check_version(opts.version)
    root, out_dir = Path(root), Path(out_dir)
    check_dataset_output(out_dir, write_codes)  # before reading gigabytes of input
    codes = read_code_list(codes_file, opts.version)
    listed = {c.code for c in codes}
    for name in TABLES:  # fail fast on a missing table, before any long pass
        table_path(root, name)
    split_lists, split_sources = _split_lists(split_file, split_files)
    report: dict[str, Any] = {
        "source": SOURCE,
        "mimic_dir": str(root),
        "icd_version": opts.version,
        "code_list": str(codes_file),
        "n_codes": len(codes),
        "warnings": [],
    }
    titles = read_titles(root, opts.version)
    report["dictionaries"] = {
        kind: sum(1 for k, _ in titles if k == kind) for kind in ("diagnosis", "procedure")
    }
    kinds = {c.code: c.kind for c in codes}
    report["codes_not_in_mimic_dictionaries"] = [
        c for c in sorted(listed) if (kinds[c], c) not in titles
    ]
    found_codes = read_admission_codes(root, opts.version, keep=listed, progress=opts.progress)
    report["code_tables"] = {
        "rows_read": found_codes.rows_read,
        "rows_of_the_other_icd_version": found_codes.rows_of_other_version,
        "rows_with_unlisted_code": found_codes.rows_with_unlisted_code,
        f"admissions_with_an_icd{opts.version}_code": len(found_codes.subjects),
    }
    labels = {h: set(c) for h, c in found_codes.codes.items()}
    candidates = {h for h, c in labels.items() if c}
    if split_lists is not None:
        candidates &= {h for ids in split_lists.values() for h in ids}
    notes = collect_discharge_notes(
        root, candidates, progress=opts.progress, subjects=found_codes.subjects
    )
    report["discharge"] = notes.stats
    subjects = dict(found_codes.subjects)
    for hadm, (subject, _, _) in notes.documents.items():
        subjects.setdefault(hadm, subject)
    found = Admissions(
        labels=labels,
        subjects=subjects,
        coded_hadms=set(found_codes.subjects),
        discharge_hadms=notes.hadms,
        documents={h: (text, parts) for h, (_, text, parts) in notes.documents.items()},
    )
    split = SplitPlan(
        given=split_lists,
        sources=split_sources,
        make=lambda eligible: stratified_patient_split(
            {h: subjects[h] for h in eligible}, labels, opts.fractions, opts.seed
        ),
        made={
            "source": "seeded patient-level split stratified by each patient's rarest "
            "label (no split file given)",
            "seed": opts.seed,
            "fractions": dict(opts.fractions),
        },
        literature_sizes=opts.literature_sizes,
    )
    return assemble(
        found,
        codes,
        split,
        report,
        lambda rep: code_rows(codes, titles, opts.version, rep),
        out_dir,
        write_codes=write_codes,
    )


def shipped_code_rows(codes_file: str | Path, version: int) -> list[dict[str, str]]:
    """codes.tsv rows titled from the shipped CMS tables alone. The synthetic MIMIC-IV's
    d_icd tables hold the same titles, so these rows equal what the workflow writes for
    it; tools build the demo's concept recordings from them without a MIMIC-IV copy."""
    _check_version(version)
    return code_rows(read_code_list(codes_file, version), {}, version, {"warnings": []})
