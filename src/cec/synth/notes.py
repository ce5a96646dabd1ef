"""Discharge summaries whose wording implies their codes the way a coder reads them.

Evidence for a code is scattered over the sections where clinicians put it (chronic
conditions in the history, acute ones in the HPI and the hospital course, procedures in
their own section), in varied wording. Coders' noise is modelled too: some codes have no
textual evidence, some notes mention a condition that was not coded, and absent
conditions are often explicitly denied with the same vocabulary ("no evidence of PNA").
The code title itself appears only rarely. Codes outside the knowledge (the synthetic
MIMIC-IV's background codes) are written up elsewhere (cec.synth.evidence, from their
titles) and handed in as `ExtraEvidence`, which the composer only places.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from cec.synth.deid import Filler, deid_date
from cec.synth.knowledge import CodeKnowledge, Knowledge

P_EVIDENCE = 0.93  # a coded condition is documented in the text
P_TITLE_VERBATIM = 0.04  # the discharge diagnosis copies the code's title
# per absent label code, documented but not coded: common conditions are under-coded
# often; a rare code's documentation without its code must stay rarer than the code itself
P_UNCODED_MENTION = {"top50": 0.02, "rare50": 0.0005}
N_NEGATIONS = (1, 5)
# Mean words (whitespace-separated) of an admission's discharge summary (report + addenda)
# as the generator writes it by default: 872 over the 3,704 summaries of 4,000 admissions
# of seed 13 (sd 195; tests/test_paper_scale.py checks it). A requested mean
# (`note_words` of write_synthetic_mimic) adds neutral result and course lines to reach it.
DEFAULT_MEAN_WORDS = 872
# Spread of the added words: gamma with this shape (coefficient of variation 1/sqrt(2)), so
# that longer notes are longer in the sections that make real ones long (results, course)
PADDING_SHAPE = 2.0


def _sentences(rng: random.Random, pool: tuple[str, ...] | list[str], k: int) -> list[str]:
    if not pool:
        return []
    return rng.sample(list(pool), min(k, len(pool)))


def shuffled_tail(rng: random.Random, items: list[str]) -> list[str]:
    """The first item in place, the rest in a seeded random order. (`rng.shuffle(x[1:])`
    shuffles a copy and leaves x as it was: the HPI order never varied.)"""
    tail = items[1:]
    rng.shuffle(tail)
    return items[:1] + tail


@dataclass
class ExtraEvidence:
    """Finished lines for codes the knowledge does not cover, by the section they go to
    (see cec.synth.evidence), and the generator that places them among the knowledge's
    lines. It is the admission's own, not the composer's, so that a note gains these lines
    and keeps every other line it would have had without them."""

    rng: random.Random
    procedures: list[str] = field(default_factory=list)  # Major Surgical or Invasive Procedure
    history: list[str] = field(default_factory=list)  # Past Medical History
    course: list[str] = field(default_factory=list)  # Brief Hospital Course
    diagnoses: list[str] = field(default_factory=list)  # Discharge Diagnosis

    def merged(self, lines: list[str], extra: list[str]) -> list[str]:
        """`lines` with each of `extra` inserted at a seeded place."""
        out = list(lines)
        for line in extra:
            out.insert(self.rng.randint(0, len(out)), line)
        return out


class DischargeSummaryWriter:
    """Composes one admission's discharge summary from the knowledge base."""

    def __init__(self, knowledge: Knowledge, titles: dict[str, str]) -> None:
        self.k = knowledge
        self.b = knowledge.boilerplate
        self.titles = titles  # dotted code -> long title, for the rare verbatim copy
        self.label_codes = [
            c for g in knowledge.groups.values() for c, ck in g.items() if ck.role == "label"
        ]
        self.uncoded_rate = {
            c: P_UNCODED_MENTION.get(name, 0.0) for name, g in knowledge.groups.items() for c in g
        }

    def compose(
        self,
        rng: random.Random,
        codes: list[str],
        admit: date,
        discharge: date,
        dob: date,
        sex: str,
        with_addendum: bool,
        extra_words: int = 0,
        padding_rng: random.Random | None = None,
        extra: ExtraEvidence | None = None,
    ) -> tuple[str, str | None]:
        """Return the report text and, if any, an addendum text. `extra_words` (drawn by
        the caller, see `padding_words`) adds about that many words of neutral pertinent
        results and hospital-course lines, chosen with `padding_rng` so that the main
        generator's draws, hence every other part of the note, stay as they were. `extra`
        adds the evidence of codes outside the knowledge (the synthetic MIMIC-IV's
        background codes) to its sections, placed with its own generator for the same
        reason; without it (MIMIC-III) the note is what it always was."""
        known = [self.k.code(c) for c in codes if self._known(c)]
        documented = [ck for ck in known if rng.random() < P_EVIDENCE]
        present = {ck.code for ck in known}
        uncoded = [
            self.k.code(c)
            for c in self.label_codes
            if c not in present and rng.random() < self.uncoded_rate[c]
        ]
        documented += uncoded
        rng.shuffle(documented)
        age = max(18, admit.year - dob.year)
        complaint = (
            rng.choice(documented[0].mentions)
            if documented and rng.random() < 0.5
            else rng.choice(self.b["chief_complaints"])
        )
        fill = Filler(
            rng,
            admit,
            {"age": str(age), "sex_word": "man" if sex == "M" else "woman", "complaint": complaint},
        )
        chronic = [ck for ck in documented if ck.chronic]
        acute = [ck for ck in documented if not ck.chronic and ck.kind == "diagnosis"]
        procs = [ck for ck in documented if ck.kind == "procedure"]
        absent_pool = [c for c in self.label_codes if c not in present]
        negated = [self.k.code(c) for c in rng.sample(absent_pool, rng.randint(*N_NEGATIONS))]

        out: list[str] = []
        out.append(
            f"Admission Date:  {deid_date(admit)}              "
            f"Discharge Date:   {deid_date(discharge)}\n"
        )
        out.append(f"Date of Birth:  {deid_date(dob)}             Sex:   {sex}\n")
        out.append(f"Service: {rng.choice(self.b['services'])}\n")
        out.append(f"Allergies:\n{fill(rng.choice(self.b['allergies']))}\n")
        out.append(f"Attending:{fill('{doctor}')}.\n")
        out.append(f"Chief Complaint:\n{complaint}\n")
        proc_lines = [fill(rng.choice(ck.findings)) for ck in procs[:4]]
        if extra is not None:
            proc_lines = extra.merged(proc_lines, extra.procedures)
        out.append(
            "Major Surgical or Invasive Procedure:\n"
            + ("\n".join(proc_lines) if proc_lines else "None")
            + "\n"
        )
        hpi = [fill(rng.choice(self.b["hpi_openers"]))]
        hpi += [fill(s) for s in _sentences(rng, self.b["hpi_fillers"], rng.randint(2, 4))]
        for ck in acute[:3]:
            hpi.append(fill(rng.choice(ck.findings)))
        hpi = shuffled_tail(rng, hpi)
        out.append("History of Present Illness:\n" + " ".join(hpi) + "\n")
        pmh = [f"- {fill(rng.choice(ck.mentions))}" for ck in chronic]
        pmh += [
            f"- {fill(rng.choice(ck.mentions))}"
            for ck in known
            if ck.chronic and ck not in documented and rng.random() < 0.3
        ]
        if extra is not None:
            pmh = extra.merged(pmh, extra.history)
        out.append("Past Medical History:\n" + ("\n".join(pmh) if pmh else "None.") + "\n")
        out.append(f"Social History:\n{fill(rng.choice(self.b['social_history']))}\n")
        out.append(f"Family History:\n{fill(rng.choice(self.b['family_history']))}\n")
        exam = _sentences(rng, self.b["physical_exam"], rng.randint(4, 7))
        out.append("Physical Exam:\n" + "\n".join(fill(s) for s in exam) + "\n")
        results = [fill(s) for s in _sentences(rng, self.b["pertinent_results"], rng.randint(2, 5))]
        for ck in documented:
            if rng.random() < 0.35:
                results.append(fill(rng.choice(ck.findings)))
        extra_results, extra_course = self._padding(extra_words, padding_rng, admit, fill)
        results += extra_results
        out.append("Pertinent Results:\n" + "\n".join(results) + "\n")
        course: list[str] = []
        for ck in documented:
            heading = fill(rng.choice(ck.mentions))
            body = " ".join(fill(s) for s in _sentences(rng, ck.findings, rng.randint(1, 3)))
            course.append(f"# {heading}: {body}")
        for ck in negated:
            if ck.negations:
                course.append(fill(rng.choice(ck.negations)))
        course += [fill(s) for s in _sentences(rng, self.b["course_fillers"], rng.randint(2, 5))]
        rng.shuffle(course)
        for line in extra_course:  # at seeded places, after the main generator's shuffle
            assert padding_rng is not None
            course.insert(padding_rng.randint(0, len(course)), line)
        if extra is not None:
            course = extra.merged(course, extra.course)
        out.append("Brief Hospital Course:\n" + "\n".join(course) + "\n")
        home_meds = [fill(rng.choice(ck.meds)) for ck in chronic if ck.meds]
        home_meds += [
            fill(s) for s in _sentences(rng, self.b["medication_fillers"], rng.randint(1, 4))
        ]
        out.append("Medications on Admission:\n" + "\n".join(home_meds) + "\n")
        dc_meds = [fill(rng.choice(ck.meds)) for ck in documented if ck.meds and rng.random() < 0.8]
        dc_meds += [
            fill(s) for s in _sentences(rng, self.b["medication_fillers"], rng.randint(2, 6))
        ]
        rng.shuffle(dc_meds)
        out.append(
            "Discharge Medications:\n"
            + "\n".join(f"{i}. {m}" for i, m in enumerate(dc_meds, start=1))
            + "\n"
        )
        out.append(f"Discharge Disposition:\n{rng.choice(self.b['discharge_disposition'])}\n")
        dx_lines = [self._diagnosis_line(rng, ck, fill) for ck in documented]
        primary, secondary = dx_lines[:1], dx_lines[1:]
        if extra is not None and extra.diagnoses:
            # the knowledge's diagnosis comes first where there is one: background codes
            # are the secondary diagnoses of a stay
            if not primary:
                primary, secondary = extra.diagnoses[:1], extra.diagnoses[1:]
            else:
                secondary = extra.merged(secondary, extra.diagnoses)
        out.append(
            "Discharge Diagnosis:\nPrimary:\n"
            + ("\n".join(primary) or "see above")
            + ("\n\nSecondary:\n" + "\n".join(secondary) if secondary else "")
            + "\n"
        )
        out.append(f"Discharge Condition:\n{fill(rng.choice(self.b['discharge_condition']))}\n")
        instr = _sentences(rng, self.b["discharge_instructions"], rng.randint(2, 4))
        out.append("Discharge Instructions:\n" + " ".join(fill(s) for s in instr) + "\n")
        # follow-up visits are booked after discharge, not around the admission date
        later = Filler(rng, discharge + timedelta(days=7), fill.context)
        out.append(f"Followup Instructions:\n{later(rng.choice(self.b['followup']))}\n")
        report = "\n".join(out)
        addendum = None
        if with_addendum:
            parts = [fill(rng.choice(self.b["addendum"]))]
            if documented and rng.random() < 0.5:
                parts.append(fill(rng.choice(rng.choice(documented).findings)))
            addendum = "\n".join(parts) + f"\n\n{fill('{doctor}')}\n"
        return report, addendum

    def _padding(
        self, words: int, rng: random.Random | None, admit: date, fill: Filler
    ) -> tuple[list[str], list[str]]:
        """Neutral lines of about `words` words: results and course lines by turns."""
        if words <= 0:
            return [], []
        if rng is None:
            raise ValueError("extra_words needs a padding_rng")
        local = Filler(rng, admit, fill.context)
        pools = (self.b["pertinent_results"], self.b["course_fillers"])
        out: tuple[list[str], list[str]] = ([], [])
        added = 0
        turn = 0
        while added < words:
            line = local(rng.choice(pools[turn % 2]))
            out[turn % 2].append(line)
            added += len(line.split())
            turn += 1
        return out

    def _known(self, code: str) -> bool:
        try:
            self.k.code(code)
        except KeyError:
            return False
        return True

    def _diagnosis_line(self, rng: random.Random, ck: CodeKnowledge, fill: Filler) -> str:
        title = self.titles.get(ck.code)
        if title and rng.random() < P_TITLE_VERBATIM:
            return title
        return fill(rng.choice(ck.mentions))


# Non-discharge notes borrow neutral discharge-summary lines where clinicians would write
# them too, so they reach MIMIC's size (about 1.9 KB per NOTEEVENTS row on average).
_EXTRA_LINES = {
    "Physician": ("physical_exam", "pertinent_results", "course_fillers"),
    "Nursing": ("physical_exam", "course_fillers"),
    "Nursing/other": ("physical_exam",),
}


def other_note(rng: random.Random, knowledge: Knowledge, fill: Filler) -> tuple[str, str, str]:
    """(CATEGORY, DESCRIPTION, TEXT) of a non-discharge note: nursing, radiology, ..."""
    b = knowledge.boilerplate
    templates = b["other_notes"]
    category = rng.choice(sorted(templates))
    pool = list(templates[category])
    for key in _EXTRA_LINES.get(category, ()):
        pool += b[key]
    parts = [fill(rng.choice(pool)) for _ in range(rng.randint(3, 14))]
    description = rng.choice(b["other_note_descriptions"].get(category) or ["Report"])
    return category, description, "\n\n".join(parts) + "\n"


def padding_words(rng: random.Random, target_mean_words: float | None) -> int:
    """Words to add to one discharge summary so that the mean is `target_mean_words`:
    gamma-distributed around the difference from DEFAULT_MEAN_WORDS (0 when no target is
    set or the target is not above the default: notes are never cut)."""
    if target_mean_words is None:
        return 0
    gap = float(target_mean_words) - DEFAULT_MEAN_WORDS
    if gap <= 0:
        return 0
    return round(rng.gammavariate(PADDING_SHAPE, gap / PADDING_SHAPE))


def stay_dates(rng: random.Random) -> tuple[date, date, date]:
    """Admission, discharge and birth dates, shifted into 2100-2200 as MIMIC's are."""
    admit = date(2100, 1, 1) + timedelta(days=rng.randint(0, 36500))
    discharge = admit + timedelta(days=rng.randint(1, 21))
    dob = admit - timedelta(days=rng.randint(18 * 365, 90 * 365))
    return admit, discharge, dob
