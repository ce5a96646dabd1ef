"""From labelled admissions with their discharge document to a dataset folder.

What a dataset is does not depend on where its admissions came from: MIMIC-III
(`cec.datasets.mimic3`) and MIMIC-IV (`cec.datasets.mimic4`) each read their own tables into
`Admissions`, and this module makes the split, counts what was dropped and why, and
writes train/dev/test JSONL and the data report. One implementation keeps the two
sources' datasets and reports the same in form, so that the stages after it never ask
which MIMIC a dataset came from.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cec.datasets.splits import SPLITS, unknown_ids
from cec.icd.code_lists import LabelCode
from cec.plumbing.artifacts import write_code_rows
from cec.plumbing.errors import InputError
from cec.plumbing.io import atomic_dir, check_output_folder, write_json, write_jsonl
from cec.readers.tables import EXAMPLES

log = logging.getLogger(__name__)

DATASET_FILES = (*(f"{split}.jsonl" for split in SPLITS), "codes.tsv", "data_report.json")


def examples(values: list[int] | set[int]) -> list[int]:
    return sorted(values)[:EXAMPLES]


@dataclass
class Admissions:
    """What a source reader found: the listed labels of every coded admission, the
    patient of every admission read, the admissions with any code and those with a
    discharge document, and the documents of the candidates (`text`, and how many note
    rows were joined into it)."""

    labels: dict[int, set[str]]
    subjects: dict[int, int]
    coded_hadms: set[int]
    discharge_hadms: set[int]
    documents: dict[int, tuple[str, int]] = field(default_factory=dict)

    @property
    def with_listed(self) -> set[int]:
        return {h for h, codes in self.labels.items() if codes}


@dataclass(frozen=True)
class SplitPlan:
    """How a source's admissions are split: the lists given (`given`, with the file each
    came from in `sources`), or made by `make` over the eligible admissions, as `made`
    says in the data report; and the sizes a paper reports for the split, if any."""

    given: Mapping[str, list[int]] | None
    sources: Mapping[str, str | Path] | None
    make: Callable[[set[int]], dict[str, list[int]]]
    made: dict[str, Any]
    literature_sizes: Mapping[str, int] | None = None


def warn(report: dict[str, Any], message: str) -> None:
    report["warnings"].append(message)
    log.warning(message)


def _choose_split(
    found: Admissions, plan: SplitPlan, report: dict[str, Any]
) -> dict[str, list[int]]:
    """Train/dev/test admission ids: the given lists, or `plan.make(eligible)`.

    Every admission that is not in the dataset is counted under its reason in
    report["admissions"]["dropped"], so that a user can reconcile our counts with a paper's.
    """
    with_listed = found.with_listed
    discharge = found.discharge_hadms
    known = found.coded_hadms | discharge
    dropped: dict[str, dict[str, Any]] = {}

    def drop(reason: str, hadms: set[int]) -> None:
        if hadms:
            dropped[reason] = {"count": len(hadms), "examples": examples(hadms)}

    admissions: dict[str, Any] = {
        "with_any_code": len(found.coded_hadms),
        "with_discharge_summary": len(discharge),
        "with_listed_code": len(with_listed),
    }
    drop("has discharge summary but no listed code", discharge - with_listed)
    drop("has listed code but no discharge summary", with_listed - discharge)
    eligible = with_listed & discharge
    admissions["with_listed_code_and_discharge_summary"] = len(eligible)
    if plan.given is not None:
        assert plan.sources is not None
        for split, ids in plan.given.items():
            unknown = unknown_ids(ids, known)
            if unknown:
                raise InputError(
                    f"{len(unknown)} HADM_ID(s) of the {split} split file appear in no "
                    f"MIMIC table read (e.g. {', '.join(map(str, unknown[:EXAMPLES]))}); "
                    "is the split for another MIMIC version or dataset?",
                    file=plan.sources[split],
                    field="HADM_ID",
                )
        listed_in_splits = {h for ids in plan.given.values() for h in ids}
        drop("not in the split files", eligible - listed_in_splits)
        drop("in a split file but has no listed code", listed_in_splits - with_listed)
        drop(
            "in a split file but has no discharge summary",
            (listed_in_splits & with_listed) - discharge,
        )
        split_ids = {s: sorted(h for h in ids if h in eligible) for s, ids in plan.given.items()}
        report["split"] = {
            "source": "split files",
            "files": {s: str(plan.sources[s]) for s in SPLITS},
            # admissions of a split file that kept no label of the list (under another
            # code format, or another MIMIC version, they may have had some)
            "lost_every_label": {
                s: {"count": len(lost), "hadm_ids": sorted(lost)}
                for s, ids in plan.given.items()
                if (lost := set(ids) - with_listed)
            },
        }
    else:
        split_ids = plan.make(eligible)
        report["split"] = dict(plan.made)
        warn(
            report,
            "no split files given: made a seeded patient-level split; numbers are not "
            "comparable with papers that use the published splits",
        )
    admissions["dropped"] = dropped
    report["admissions"] = admissions
    report["split"]["sizes"] = {s: len(split_ids[s]) for s in SPLITS}
    report["split"]["patients"] = {
        s: len({found.subjects[h] for h in split_ids[s]}) for s in SPLITS
    }
    return split_ids


def _compare_sizes(report: dict[str, Any], literature: Mapping[str, int] | None) -> None:
    """Warn where the split sizes differ from the ones a paper reports."""
    if not literature:
        return
    expected = {s: int(literature[s]) for s in SPLITS}
    sizes = report["split"]["sizes"]
    report["split"]["literature_sizes"] = expected
    off = {s: sizes[s] - expected[s] for s in SPLITS}
    if any(off.values()):
        warn(
            report,
            "split sizes differ from the literature's after filtering: "
            + ", ".join(f"{s} {sizes[s]} vs {expected[s]} ({off[s]:+d})" for s in SPLITS),
        )


def _length_stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "mean": round(statistics.fmean(ordered), 1),
        "median": float(statistics.median(ordered)),
        "p90": float(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]),
        "max": float(ordered[-1]),
    }


def _build_records(
    codes: list[LabelCode],
    found: Admissions,
    split_ids: Mapping[str, list[int]],
    report: dict[str, Any],
) -> dict[str, list[dict[str, Any]]]:
    """The JSONL records of each split, and their label frequencies and lengths in the
    report; warns about codes without a training example and empty splits."""
    frequencies: dict[str, dict[str, int]] = {}
    lengths: dict[str, dict[str, Any]] = {}
    records: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        freq: Counter[str] = Counter()
        chars: list[int] = []
        words: list[int] = []
        n_notes: list[int] = []
        recs = []
        for hadm in split_ids[split]:
            text, parts = found.documents[hadm]
            code_list = sorted(found.labels[hadm])
            freq.update(code_list)
            chars.append(len(text))
            words.append(len(text.split()))
            n_notes.append(parts)
            recs.append(
                {
                    "hadm_id": str(hadm),
                    "subject_id": str(found.subjects[hadm]),
                    "text": text,
                    "labels": code_list,
                }
            )
        records[split] = recs
        frequencies[split] = {c.code: freq.get(c.code, 0) for c in codes}
        lengths[split] = {
            "characters": _length_stats(chars),
            "words": _length_stats(words),
            "discharge_notes_per_admission": _length_stats(n_notes),
            "labels_per_admission": _length_stats([len(r["labels"]) for r in recs]),
        }
    report["label_frequency"] = frequencies
    report["note_length"] = lengths
    unseen = [c.code for c in codes if frequencies["train"][c.code] == 0]
    report["codes_without_train_examples"] = unseen
    if unseen:
        warn(
            report, f"{len(unseen)} listed code(s) have no training admission: {', '.join(unseen)}"
        )
    for split in SPLITS:
        if not split_ids[split]:
            warn(report, f"the {split} split is empty")
    return records


def check_dataset_folder(out_dir: str | Path) -> None:
    """Fail before any work where `--out` cannot be a dataset folder: it is a file, lies
    below a file, or holds files that a dataset does not have (they would be lost when
    the new folder is swapped in)."""
    out_dir = Path(out_dir)
    check_output_folder(out_dir)
    if out_dir.is_dir():
        foreign = sorted(
            p.name
            for p in out_dir.iterdir()
            if p.name not in DATASET_FILES and not p.name.endswith(".part")
        )
        if foreign:
            raise InputError(
                f"holds files that cec prepare does not write ({', '.join(foreign[:5])}); "
                "they would be replaced with the folder: give a new or a dataset folder",
                file=out_dir,
            )


def _write_dataset(
    out_dir: Path, records: Mapping[str, list[dict[str, Any]]], report: dict[str, Any]
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        write_jsonl(out_dir / f"{split}.jsonl", records[split])
    write_json(out_dir / "data_report.json", report)


def check_dataset_output(out_dir: str | Path, whole_folder: bool) -> None:
    """Before reading any input: a folder `cec prepare` builds whole must be one it may
    replace; under Snakemake (which made the folder) it must be writable."""
    if whole_folder:
        check_dataset_folder(out_dir)
    else:
        check_output_folder(Path(out_dir))


def assemble(
    found: Admissions,
    codes: list[LabelCode],
    split: SplitPlan,
    report: dict[str, Any],
    code_rows: Callable[[dict[str, Any]], list[dict[str, str]]],
    out_dir: str | Path,
    *,
    write_codes: bool,
) -> dict[str, Any]:
    """Split, count and write one dataset from what a source read; returns the report.

    `code_rows` makes the codes.tsv rows (and notes its findings in the report) after the
    records are built. With `write_codes` the folder is the dataset's alone: built aside
    and swapped in whole, so that a killed run leaves the old dataset or the new one,
    never a mix. Without it (under Snakemake, where rule code_table writes codes.tsv) each
    file is renamed into place only when complete, the report last, and Snakemake removes
    the outputs of a job that did not finish."""
    out_dir = Path(out_dir)
    split_ids = _choose_split(found, split, report)
    _compare_sizes(report, split.literature_sizes)
    records = _build_records(codes, found, split_ids, report)
    rows = code_rows(report)
    if write_codes:
        with atomic_dir(out_dir) as tmp:
            _write_dataset(tmp, records, report)
            write_code_rows(tmp / "codes.tsv", rows)
    else:
        _write_dataset(out_dir, records, report)
    return report
