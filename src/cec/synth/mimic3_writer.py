"""Stream the planned synthetic MIMIC-III to gzip CSVs shaped exactly like v1.4."""

from __future__ import annotations

import gzip
import io
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from cec.icd.icd9 import Icd9Hierarchy
from cec.plumbing.errors import InputError
from cec.plumbing.io import atomic_dir, check_output_folder, write_json
from cec.readers.tables import QUOTED_COLUMNS, TABLE_COLUMNS
from cec.synth.deid import Filler
from cec.synth.knowledge import Knowledge, load_knowledge
from cec.synth.notes import DischargeSummaryWriter, other_note, padding_words, stay_dates
from cec.synth.plan import SPLITS, Admission, Plan, make_plan, rng_for

log = logging.getLogger(__name__)

P_ADDENDUM = 0.15
P_DISCHARGE_WITHOUT_HADM = 0.01


class CsvTable:
    """A MIMIC table writer: header quoted, character columns quoted, NULL empty."""

    def __init__(self, fh: IO[str], table: str) -> None:
        self.fh = fh
        self.columns = TABLE_COLUMNS[table]
        quoted = QUOTED_COLUMNS[table]
        self.quote = [c in quoted for c in self.columns]
        self.rows = 0
        fh.write(",".join(f'"{c}"' for c in self.columns) + "\n")

    def write(self, *values: Any) -> None:
        self.rows += 1
        fields = []
        for value, quote in zip((self.rows, *values), self.quote, strict=True):
            if value is None or value == "":
                fields.append("")
            elif quote:
                fields.append('"' + str(value).replace('"', '""') + '"')
            else:
                fields.append(str(value))
        self.fh.write(",".join(fields) + "\n")


def _open(path: Path) -> IO[str]:
    """gzip with a fixed header (no mtime, fixed name) so a seed gives identical bytes."""
    raw = open(path, "wb")  # noqa: SIM115 - closed with the wrapper
    gz = gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, compresslevel=1, mtime=0)
    return _ClosingText(gz, raw)


class _ClosingText(io.TextIOWrapper):
    """A text wrapper that also closes the file under the gzip stream."""

    def __init__(self, gz: gzip.GzipFile, raw: IO[bytes]) -> None:
        super().__init__(gz, encoding="utf-8", newline="")
        self._raw = raw

    def close(self) -> None:
        super().close()
        self._raw.close()


def check_synth_folder(out_dir: str | Path) -> None:
    """Refuse to replace a path that is not a folder this command wrote: a file, or a
    folder holding files but no `synth_manifest.json` (a user's real MIMIC-III, say)."""
    out_dir = Path(out_dir)
    check_output_folder(out_dir)
    ours = (out_dir / "synth_manifest.json").is_file()
    # empty folders do not count: Snakemake makes the output folders before the job runs
    if out_dir.is_dir() and not ours and any(p.is_file() for p in out_dir.rglob("*")):
        raise InputError(
            "a non-empty folder that cec synth-mimic did not write (no "
            "synth_manifest.json): it would be replaced whole; give a new folder",
            file=out_dir,
        )


def write_synthetic_mimic(
    out_dir: str | Path,
    n_admissions: int,
    seed: int,
    *,
    top50_sizes: Sequence[int] | None = None,
    rare_sizes: Sequence[int] | None = None,
    other_notes_per_admission: float = 30.0,
    note_words: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the five tables, the split files and a manifest into `out_dir` atomically:
    the folder is built aside and swapped in whole (see `cec.plumbing.io.atomic_dir`).

    `note_words`: the mean words a discharge summary should have (None: the generator's
    own, about `cec.synth.notes.DEFAULT_MEAN_WORDS`; real MIMIC-III ones are longer, see
    benchmarks/bench_paper_scale.py). Longer notes get neutral result and course lines
    from a generator of their own, so codes, splits and other notes do not change."""
    check_synth_folder(out_dir)
    start = time.perf_counter()
    knowledge = load_knowledge()
    plan = make_plan(
        n_admissions,
        seed,
        knowledge,
        tuple(top50_sizes) if top50_sizes else None,  # type: ignore[arg-type]
        tuple(rare_sizes) if rare_sizes else None,  # type: ignore[arg-type]
    )
    hierarchy = Icd9Hierarchy.load()
    titles = {}
    for group in knowledge.groups.values():
        for code, ck in group.items():
            info = hierarchy.info(code, ck.kind)
            if info is not None:
                titles[code] = info.title
    composer = DischargeSummaryWriter(knowledge, titles)
    counts: Counter[str] = Counter()
    with atomic_dir(out_dir) as tmp:
        for table, kind in (("D_ICD_DIAGNOSES", "diagnosis"), ("D_ICD_PROCEDURES", "procedure")):
            with _open(tmp / f"{table}.csv.gz") as fh:
                t = CsvTable(fh, table)
                for code, short, long in hierarchy.d_icd_rows(kind):  # type: ignore[arg-type]
                    t.write(code, short, long)
                counts[table] = t.rows
        with (
            _open(tmp / "DIAGNOSES_ICD.csv.gz") as dfh,
            _open(tmp / "PROCEDURES_ICD.csv.gz") as pfh,
            _open(tmp / "NOTEEVENTS.csv.gz") as nfh,
        ):
            dx = CsvTable(dfh, "DIAGNOSES_ICD")
            px = CsvTable(pfh, "PROCEDURES_ICD")
            notes = CsvTable(nfh, "NOTEEVENTS")
            for adm in tqdm(
                plan.admissions,
                desc="synthetic admissions",
                unit="adm",
                disable=not progress,
                file=sys.stderr,
                mininterval=2.0,
            ):
                _write_admission(
                    adm,
                    seed,
                    knowledge,
                    composer,
                    dx,
                    px,
                    notes,
                    other_notes_per_admission,
                    counts,
                    note_words,
                )
            counts["DIAGNOSES_ICD"] = dx.rows
            counts["PROCEDURES_ICD"] = px.rows
            counts["NOTEEVENTS"] = notes.rows
        _write_splits(tmp, plan)
        manifest = {
            "generator": "cec synth-mimic",
            "admissions": n_admissions,
            "seed": seed,
            "subjects": len({a.subject_id for a in plan.admissions}),
            "other_notes_per_admission": other_notes_per_admission,
            **({} if note_words is None else {"note_words": note_words}),
            "rows": dict(counts),
            "splits": {
                "mimic3_50": {s: len(plan.top50_split[s]) for s in SPLITS},
                "rare50": {s: len(plan.rare50_split[s]) for s in SPLITS},
            },
            "seconds": round(time.perf_counter() - start, 2),
        }
        write_json(tmp / "synth_manifest.json", manifest)
    return manifest


def _write_admission(
    adm: Admission,
    seed: int,
    knowledge: Knowledge,
    composer: DischargeSummaryWriter,
    dx: CsvTable,
    px: CsvTable,
    notes: CsvTable,
    other_mean: float,
    counts: Counter[str],
    note_words: float | None = None,
) -> None:
    """Write one stay's code rows, discharge summary (and addendum) and other notes."""
    rng = rng_for(seed, "notes", adm.index)
    hierarchy = Icd9Hierarchy.load()
    for seq, code in enumerate(adm.diagnoses, start=1):
        dx.write(adm.subject_id, adm.hadm_id, seq, hierarchy.mimic_code(code, "diagnosis"))
    for seq, code in enumerate(adm.procedures, start=1):
        # MIMIC's string ("0407"), not the label's ("40.7"): the demo takes the real path
        px.write(adm.subject_id, adm.hadm_id, seq, hierarchy.mimic_code(code, "procedure"))
    admit, discharge, dob = stay_dates(rng)
    sex = rng.choice("MF")
    if adm.has_discharge_summary:
        padding = rng_for(seed, "note-length", adm.index)
        report, addendum = composer.compose(
            rng,
            adm.diagnoses + adm.procedures,
            admit,
            discharge,
            dob,
            sex,
            with_addendum=rng.random() < P_ADDENDUM,
            extra_words=padding_words(padding, note_words),
            padding_rng=padding,
        )
        notes.write(
            adm.subject_id,
            adm.hadm_id,
            discharge.isoformat(),
            None,
            None,
            "Discharge summary",
            "Report",
            None,
            None,
            report,
        )
        counts["discharge_reports"] += 1
        if addendum is not None:
            later = discharge + timedelta(days=rng.randint(0, 20))
            notes.write(
                adm.subject_id,
                adm.hadm_id,
                later.isoformat(),
                None,
                None,
                "Discharge summary",
                "Addendum",
                None,
                None,
                addendum,
            )
            counts["discharge_addenda"] += 1
        if rng.random() < P_DISCHARGE_WITHOUT_HADM:
            # a clinic letter filed as a discharge summary but outside any admission
            text, _ = composer.compose(rng, [], admit, discharge, dob, sex, False)
            notes.write(
                adm.subject_id,
                None,
                admit.isoformat(),
                None,
                None,
                "Discharge summary",
                "Report",
                None,
                None,
                text,
            )
            counts["discharge_without_hadm_id"] += 1
    fill = Filler(rng, admit, {})
    n_other = rng.randint(0, max(0, round(2 * other_mean)))
    stay_days = max(1, (discharge - admit).days)
    for _ in range(n_other):
        when = admit + timedelta(days=rng.randint(0, stay_days), minutes=rng.randint(0, 1439))
        category, description, text = other_note(rng, knowledge, fill)
        hadm = adm.hadm_id if rng.random() > 0.04 else None  # outpatient: no HADM_ID
        charttime = f"{when.isoformat()} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00"
        iserror = "1" if category.startswith("Nursing") and rng.random() < 0.003 else None
        notes.write(
            adm.subject_id,
            hadm,
            when.isoformat(),
            charttime,
            charttime,
            category,
            description,
            rng.randint(14000, 21000),
            iserror,
            text,
        )
        counts["other_notes"] += 1


def _write_splits(root: Path, plan: Plan) -> None:
    for name, split, suffix in (
        ("mimic3_50", plan.top50_split, "50_hadm_ids"),
        ("rare50", plan.rare50_split, "rare50_hadm_ids"),
    ):
        folder = root / "splits" / name
        folder.mkdir(parents=True, exist_ok=True)
        for s in SPLITS:
            (folder / f"{s}_{suffix}.csv").write_text(
                "".join(f"{h}\n" for h in split[s]), encoding="utf-8"
            )
