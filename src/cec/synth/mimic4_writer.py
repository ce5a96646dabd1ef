"""Stream a synthetic MIMIC-IV v2.2 (`hosp/`) and MIMIC-IV-Note v2.2 (`note/`) to gzip CSVs.

The tables have MIMIC-IV's exact columns and conventions: lower-case headers, quoting only
where a field needs it, codes without a dot, `icd_version` 9 or 10, subject_id 8 digits
starting with 1, hadm_id 8 digits starting with 2 (in no particular order), dates shifted
into 2100-2200 per patient. d_icd_diagnoses / d_icd_procedures list every code of both
versions, as the real ones do.

ICD-9 and ICD-10 admissions live side by side, as in MIMIC-IV (the switch came in October
2015): a fraction of the admissions (default 40%) are the stays before the switch, coded in
ICD-9 with the MIMIC-III knowledge (the MIMIC-IV-ICD9-50 labels are the MIMIC-III-50 codes);
the rest are coded in ICD-10 through the overlay codes_icd10_top50.yaml (the
MIMIC-IV-ICD10-50 labels). Each admission is coded in one version only; a patient's stays
keep their order in time, and an ICD-9 stay never follows an ICD-10 one.

Discharge notes are MIMIC-IV-Note's: note_type "DS", note_id "{subject_id}-DS-{note_seq}"
with note_seq increasing per patient, charttime the discharge day at midnight, a later
storetime, de-identified spans written "___". About 3% of the admissions with a note have a
second DS row, a later addition that the reader joins after the first (note_seq order);
about 15% have no discharge note at all. discharge_detail holds an "author" row (its value
de-identified) for part of the notes.

Split files follow Edin et al. (2023), as CSV (`_id,split`, split in train/val/test,
65/10/25): one per ICD version, listing that version's admissions that have a discharge
note. The split is drawn per patient, so a patient's admissions of both versions share it.
Every label of both lists is planted in at least two training admissions where sampling
left it rarer.

Every code an admission holds has evidence in its discharge note: the knowledge codes
their hand-written mentions and findings (coder noise included: 7% are coded without any,
as in MIMIC-III), every other code (the background codes drawn from the whole code set,
which the full-code-set dataset labels) a short sentence made from its d_icd title, in the
section a clinician would write it (cec.synth.evidence; `mimic4_evidence` finds it again).

Planning reuses the MIMIC-III generator's pieces (patients' stay counts, code sampling by
prevalence and co-occurrence, the discharge-summary composer); every random choice draws
from a generator seeded by (seed, purpose, index), so a seed gives identical bytes.
"""

from __future__ import annotations

import csv
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from cec.icd.codes import Kind
from cec.icd.icd9 import Icd9Hierarchy
from cec.icd.icd10 import Icd10Hierarchy
from cec.plumbing.io import atomic_dir, write_json
from cec.readers.mimic4 import COLUMNS
from cec.synth.evidence import TitleEvidence
from cec.synth.knowledge import Knowledge, load_mimic4_knowledge
from cec.synth.mimic3_writer import _open, check_synth_folder
from cec.synth.notes import DischargeSummaryWriter
from cec.synth.plan import MIN_ADMISSIONS, _sample_codes, _subjects, rng_for

VERSIONS = (9, 10)
DEFAULT_ICD9_FRACTION = 0.4
SPLIT_FILES = {9: "splits/mimic4_icd9_split.csv", 10: "splits/mimic4_icd10_split.csv"}
# the synthetic split file's shares (Edin et al.'s file format; their script's shares are
# 75/10/15: cec.datasets.mimic4.DEFAULT_FRACTIONS)
SPLIT_SHARES = (("train", 0.65), ("val", 0.10), ("test", 0.25))
MIN_TRAIN = 2  # training admissions every label gets at least
P_NO_NOTE = 0.15
P_SECOND_NOTE = 0.03
P_AUTHOR = 0.4
# Patients: subject_id = 10,000,000 + STEP * k + jitter; MIMIC-IV's ids end below 20,000,000
SUBJECT_STEP = 20
MAX_SUBJECTS = 10_000_000 // SUBJECT_STEP - 1
HADM_SPAN = 10_000_000
WINDOW_DAYS = 4018  # about 11 years: MIMIC-IV's 2008-2019, the switch inside it
_DEID = re.compile(r"\[\*\*.*?\*\*\]")
_RUN = re.compile(r"___(?: ___)+")
_NOTE_HEAD = " \nName:  ___                     Unit No:   ___\n \n"


@dataclass
class Stay:
    """One admission of the plan: its patient, ICD version, codes (label strings, in
    seq_num order) and dates."""

    index: int
    subject_id: int
    hadm_id: int
    version: int
    diagnoses: list[str]
    procedures: list[str]
    admit: date
    discharge: date
    dob: date
    sex: str
    has_note: bool
    split: str


@dataclass
class Mimic4Plan:
    stays: list[Stay]
    # ICD version -> split -> hadm_ids with a discharge note, sorted
    splits: dict[int, dict[str, list[int]]] = field(default_factory=dict)


def _hadm_ids(seed: int) -> tuple[int, int]:
    """(multiplier, offset) of an affine bijection on [0, 10^7): hadm_ids look random and
    never collide, and do not depend on how many admissions come after."""
    rng = rng_for(seed, "mimic4-hadm")
    a = rng.randrange(1_000_001, HADM_SPAN)
    while a % 2 == 0 or a % 5 == 0:  # coprime with 10^7
        a += 1
    return a, rng.randrange(HADM_SPAN)


def _split_of(r: float) -> str:
    edge = 0.0
    for name, share in SPLIT_SHARES:
        edge += share
        if r < edge:
            return name
    return SPLIT_SHARES[-1][0]


def _cm_billable(labels: list[str]) -> list[str]:
    """ICD-10-CM codes without a longer code under them: headers (I50, I50.2) are listed in
    d_icd_diagnoses but never coded."""
    undotted = sorted((c.replace(".", ""), c) for c in labels)
    return [
        label
        for i, (raw, label) in enumerate(undotted)
        if i + 1 == len(undotted) or not undotted[i + 1][0].startswith(raw)
    ]


def _backgrounds(knowledge: Mapping[int, Knowledge]) -> dict[int, tuple[list[str], list[str]]]:
    """Per version, the (diagnosis, procedure) codes stays draw besides the knowledge's."""
    out: dict[int, tuple[list[str], list[str]]] = {}
    h9, h10 = Icd9Hierarchy.load(), Icd10Hierarchy.load()
    for version in VERSIONS:
        special = set(knowledge[version].groups["top50"])
        if version == 9:
            dx, px = h9.leaves("diagnosis"), h9.leaves("procedure")
        else:
            dx, px = _cm_billable(h10.leaves("diagnosis")), h10.leaves("procedure")
        out[version] = ([c for c in dx if c not in special], [c for c in px if c not in special])
    return out


def plan_mimic4(
    n_admissions: int, seed: int, icd9_fraction: float = DEFAULT_ICD9_FRACTION
) -> Mimic4Plan:
    """Decide every admission, its ICD version, codes, dates and split."""
    if n_admissions < MIN_ADMISSIONS:
        raise ValueError(f"the synthetic MIMIC-IV needs at least {MIN_ADMISSIONS} admissions")
    if not 0.0 <= icd9_fraction <= 1.0:
        raise ValueError(f"the ICD-9 fraction must lie in [0, 1], got {icd9_fraction}")
    knowledge = {v: load_mimic4_knowledge(v) for v in VERSIONS}
    background = _backgrounds(knowledge)
    subjects = _subjects(n_admissions, seed)
    if len(subjects) > MAX_SUBJECTS:
        raise ValueError(
            f"{n_admissions} admissions need {len(subjects)} patients; MIMIC-IV's 8-digit "
            f"subject_ids leave room for {MAX_SUBJECTS}"
        )
    a, b = _hadm_ids(seed)
    stays: list[Stay] = []
    for k, (_, n_stays) in enumerate(subjects):
        rng = rng_for(seed, "mimic4-subject", k)
        subject_id = 10_000_000 + SUBJECT_STEP * k + rng.randrange(SUBJECT_STEP)
        anchor = date(2110, 1, 1) + timedelta(days=rng.randint(0, 365 * 70))
        sex = rng.choice("MF")
        dob = anchor - timedelta(days=rng.randint(18 * 365, 85 * 365))
        split = _split_of(rng.random())
        when = rng.random()
        # the first stay's place in the real 2008-2019 window (later ones may pass its end);
        # the switch to ICD-10 lies at icd9_fraction
        for s in range(n_stays):
            if s:  # later stays come later: at least 24 days (a stay lasts at most 21)
                when += rng.uniform(0.006, 0.12)
            i = len(stays)
            version = 9 if when < icd9_fraction else 10
            codes = rng_for(seed, "mimic4-codes", i)
            dx, px = _sample_codes(codes, knowledge[version], *background[version])
            admit = anchor + timedelta(days=round(when * WINDOW_DAYS))
            stays.append(
                Stay(
                    index=i,
                    subject_id=subject_id,
                    hadm_id=20_000_000 + (a * i + b) % HADM_SPAN,
                    version=version,
                    diagnoses=dx,
                    procedures=px,
                    admit=admit,
                    discharge=admit + timedelta(days=codes.randint(1, 21)),
                    dob=dob,
                    sex=sex,
                    has_note=codes.random() >= P_NO_NOTE,
                    split=split,
                )
            )
    for version in VERSIONS:
        _ensure_training_stay(stays, version, seed)
        _cover_labels(stays, version, knowledge[version], seed)
    splits: dict[int, dict[str, list[int]]] = {
        v: {name: [] for name, _ in SPLIT_SHARES} for v in VERSIONS
    }
    for stay in stays:
        if stay.has_note:
            splits[stay.version][stay.split].append(stay.hadm_id)
    return Mimic4Plan(stays, {v: {s: sorted(h) for s, h in d.items()} for v, d in splits.items()})


def _ensure_training_stay(stays: list[Stay], version: int, seed: int) -> None:
    """Give `version` a training admission with a note where its draws gave it none.

    A small N drawn by patient can leave every ICD-9 stay in val or test (seed 14 does so
    up to 29 admissions), and the labels then have nowhere to be planted. One seeded
    patient with a stay of the version moves to train whole (the split stays
    patient-level); if none of the version's stays has a note, that stay gets one. Plans
    that already had such an admission are left as they were: same seed, same bytes."""
    mine = [s for s in stays if s.version == version]
    if not mine or any(s.has_note and s.split == "train" for s in mine):
        return
    with_note = [s for s in mine if s.has_note]
    chosen = rng_for(seed, "mimic4-train-stay", version).choice(with_note or mine)
    chosen.has_note = True
    for stay in stays:
        if stay.subject_id == chosen.subject_id:
            stay.split = "train"


def _cover_labels(stays: list[Stay], version: int, knowledge: Knowledge, seed: int) -> None:
    """Plant each label of `version` in training admissions (with a note) until it has
    MIN_TRAIN of them, round-robin over a seeded order; never next to a code it excludes."""
    top = knowledge.groups["top50"]
    train = [s for s in stays if s.version == version and s.has_note and s.split == "train"]
    if not train:
        if any(s.version == version for s in stays):
            raise ValueError(
                f"no ICD-{version} admission fell into the training split: raise --admissions"
            )
        return
    rng = rng_for(seed, "mimic4-cover", version)
    rng.shuffle(train)
    counts = Counter(c for s in train for c in s.diagnoses + s.procedures)
    turn = 0
    for code, ck in top.items():
        if ck.role != "label":
            continue
        need = MIN_TRAIN - counts[code]
        for _ in range(len(train)):
            if need <= 0:
                break
            stay = train[turn % len(train)]
            turn += 1
            held = [c for c in stay.diagnoses + stay.procedures if c in top]
            if code in held or any(code in top[c].excludes or c in ck.excludes for c in held):
                continue
            if ck.kind == "diagnosis":
                stay.diagnoses.insert(0, code)
            else:
                stay.procedures.append(code)
            need -= 1


class _Table:
    """A MIMIC-IV CSV: lower-case header, fields quoted only where needed, NULL empty."""

    def __init__(self, fh: IO[str], name: str) -> None:
        self.writer = csv.writer(fh, lineterminator="\n")
        self.writer.writerow(COLUMNS[name])
        self.rows = 0

    def write(self, *values: Any) -> None:
        self.writer.writerow(["" if v is None else v for v in values])
        self.rows += 1


def mimic4_text(report: str) -> str:
    """A composed summary as MIMIC-IV-Note writes it: the name line on top, every
    de-identified span (a name in two parts too) as three underscores."""
    text = _RUN.sub("___", _DEID.sub("___", report))
    return _NOTE_HEAD + text.replace("Attending:___", "Attending: ___")


def _stamp(day: date, rng: random.Random, lo_hours: int, hi_hours: int) -> str:
    moment = datetime(day.year, day.month, day.day) + timedelta(
        hours=rng.randint(lo_hours, hi_hours), minutes=rng.randint(0, 59)
    )
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@cache
def mimic4_evidence(version: int) -> TitleEvidence:
    """The evidence of one ICD version's codes as the synthetic MIMIC-IV writes it: title
    sentences for background codes, the knowledge's mentions for the others. Its
    `found_in(text, code, kind)` says whether a note holds a code's evidence."""
    hierarchy = Icd9Hierarchy.load() if version == 9 else Icd10Hierarchy.load()
    return TitleEvidence(hierarchy, load_mimic4_knowledge(version))


def write_synthetic_mimic4(
    out_dir: str | Path,
    n_admissions: int,
    seed: int,
    *,
    icd9_fraction: float = DEFAULT_ICD9_FRACTION,
    progress: bool = True,
) -> dict[str, Any]:
    """Write hosp/, note/, the split files and a manifest into `out_dir` atomically: the
    folder is built aside and swapped in whole (see `cec.plumbing.io.atomic_dir`); a non-empty
    folder this command did not write is refused."""
    check_synth_folder(out_dir)
    start = time.perf_counter()
    plan = plan_mimic4(n_admissions, seed, icd9_fraction)
    h9, h10 = Icd9Hierarchy.load(), Icd10Hierarchy.load()
    evidence = {version: mimic4_evidence(version) for version in VERSIONS}
    composers: dict[int, DischargeSummaryWriter] = {}
    for version, found in evidence.items():  # one knowledge and hierarchy per version
        knowledge = found.knowledge
        titles = {
            code: title
            for code, ck in knowledge.groups["top50"].items()
            if (title := found.hierarchy.title(code, ck.kind)) is not None
        }
        composers[version] = DischargeSummaryWriter(knowledge, titles)
    counts: Counter[str] = Counter()
    with atomic_dir(out_dir) as tmp:
        for folder in ("hosp", "note", "splits"):
            (tmp / folder).mkdir()
        dictionaries: tuple[tuple[str, Kind], ...] = (
            ("d_icd_diagnoses", "diagnosis"),
            ("d_icd_procedures", "procedure"),
        )
        for name, kind in dictionaries:
            with _open(tmp / "hosp" / f"{name}.csv.gz") as fh:
                table = _Table(fh, f"hosp/{name}")
                for code, _, title in h9.d_icd_rows(kind):
                    table.write(code, 9, title)
                for code, title in h10.d_icd_rows(kind):
                    table.write(code, 10, title)
                counts[name] = table.rows
        with (
            _open(tmp / "hosp" / "diagnoses_icd.csv.gz") as dfh,
            _open(tmp / "hosp" / "procedures_icd.csv.gz") as pfh,
            _open(tmp / "note" / "discharge.csv.gz") as nfh,
            _open(tmp / "note" / "discharge_detail.csv.gz") as afh,
        ):
            tables = {
                "diagnoses_icd": _Table(dfh, "hosp/diagnoses_icd"),
                "procedures_icd": _Table(pfh, "hosp/procedures_icd"),
                "discharge": _Table(nfh, "note/discharge"),
                "discharge_detail": _Table(afh, "note/discharge_detail"),
            }
            next_seq: dict[int, int] = {}
            for stay in tqdm(
                plan.stays,
                desc="synthetic MIMIC-IV admissions",
                unit="adm",
                disable=not progress,
                file=sys.stderr,
                mininterval=2.0,
            ):
                if stay.subject_id not in next_seq:
                    first = rng_for(seed, "mimic4-note-seq", stay.subject_id).randint(1, 25)
                    next_seq[stay.subject_id] = first
                _write_stay(
                    stay,
                    seed,
                    h9,
                    composers[stay.version],
                    evidence[stay.version],
                    tables,
                    next_seq,
                    counts,
                )
            for name, table in tables.items():
                counts[name] = table.rows
        for version in VERSIONS:
            with open(tmp / SPLIT_FILES[version], "w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(("_id", "split"))
                rows = [(h, s) for s, hadms in plan.splits[version].items() for h in hadms]
                writer.writerows(sorted(rows))
        by_version = Counter(s.version for s in plan.stays)
        manifest = {
            "generator": "cec synth-mimic --version iv",
            "release": "MIMIC-IV v2.2 (hosp) + MIMIC-IV-Note v2.2 (note), synthetic",
            "admissions": n_admissions,
            "seed": seed,
            "icd9_fraction": icd9_fraction,
            "subjects": len({s.subject_id for s in plan.stays}),
            "admissions_by_version": {str(v): by_version[v] for v in VERSIONS},
            "rows": {name: n for name, n in counts.items() if name != "two_notes"},
            "admissions_with_two_discharge_notes": counts["two_notes"],
            "splits": {
                Path(SPLIT_FILES[v]).stem: {s: len(h) for s, h in plan.splits[v].items()}
                for v in VERSIONS
            },
            "seconds": round(time.perf_counter() - start, 2),
        }
        write_json(tmp / "synth_manifest.json", manifest)
    return manifest


def _stored(code: str, kind: Kind, version: int, h9: Icd9Hierarchy) -> str:
    """The icd_code MIMIC-IV stores for a label string: no dot; ICD-9 zero-padded as
    MIMIC-III's (cec.icd.icd9's mimic_code)."""
    return h9.mimic_code(code, kind) if version == 9 else code.replace(".", "")


def _write_stay(
    stay: Stay,
    seed: int,
    h9: Icd9Hierarchy,
    composer: DischargeSummaryWriter,
    evidence: TitleEvidence,
    tables: dict[str, _Table],
    next_seq: dict[int, int],
    counts: Counter[str],
) -> None:
    """One admission's code rows, its discharge note(s) and their author rows."""
    rng = rng_for(seed, "mimic4-notes", stay.index)
    ids = (stay.subject_id, stay.hadm_id)
    for seq, code in enumerate(stay.diagnoses, start=1):
        stored = _stored(code, "diagnosis", stay.version, h9)
        tables["diagnoses_icd"].write(*ids, seq, stored, stay.version)
    days = (stay.discharge - stay.admit).days
    for seq, code in enumerate(stay.procedures, start=1):
        day = stay.admit + timedelta(days=rng.randint(0, days))
        stored = _stored(code, "procedure", stay.version, h9)
        tables["procedures_icd"].write(*ids, seq, day.isoformat(), stored, stay.version)
    if not stay.has_note:
        return
    extra = evidence.lines(
        rng_for(seed, "mimic4-title-evidence", stay.index),
        stay.admit,
        stay.diagnoses,
        stay.procedures,
    )
    report, later = composer.compose(
        rng,
        stay.diagnoses + stay.procedures,
        stay.admit,
        stay.discharge,
        stay.dob,
        stay.sex,
        with_addendum=rng.random() < P_SECOND_NOTE,
        extra=extra,
    )
    notes = [(stay.discharge, mimic4_text(report))]
    if later is not None:
        notes.append((stay.discharge + timedelta(days=rng.randint(0, 3)), mimic4_text(later)))
        counts["two_notes"] += 1
    for day, text in notes:
        seq = next_seq[stay.subject_id]
        next_seq[stay.subject_id] = seq + 1
        note_id = f"{stay.subject_id}-DS-{seq}"
        tables["discharge"].write(
            note_id,
            stay.subject_id,
            stay.hadm_id,
            "DS",
            seq,
            f"{day.isoformat()} 00:00:00",
            _stamp(day, rng, 6, 40),
            text,
        )
        if rng.random() < P_AUTHOR:
            tables["discharge_detail"].write(note_id, stay.subject_id, "author", "___", 1)
