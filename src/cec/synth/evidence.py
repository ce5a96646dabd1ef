"""Evidence in a synthetic note for the codes the hand-written knowledge does not cover.

A synthetic MIMIC-IV admission carries, besides its knowledge codes (its ICD version's 50
labels and their confounders, written up from resources/synth/*.yaml), 2 to 11 background
codes drawn from the whole code set. A dataset that labels every frequent code (the full
code set), candidate retrieval over code titles (TF-IDF neighbours, BM25) and
concept-based coding all look in the note for what a code stands for; a background code
with nothing in the note would be an unlearnable label and a candidate no retriever can
find, which real notes, written by the clinicians whose text the coder read, are not.

So every background code gets one short sentence made from its public title (the d_icd
long title), in the section where a clinician would write it: a diagnosis in the
discharge-diagnosis list, the hospital course or the past medical history; a procedure in
"Major Surgical or Invasive Procedure" or the hospital course. The wording varies, as it
does between clinicians, but deterministically (the caller's seeded generator):

- the *form* of the title: as written, lower-cased, a paraphrase without the coders'
    qualifiers ("unspecified", "other", "NOS", "NEC", bracketed synonyms; acronyms keep
    their case), or only the head of that paraphrase (the part before the first comma:
    "fracture of shaft of left femur" for "..., initial encounter for closed fracture");
- the *sentence*: one of several templates per section ("# {P}: stable during this
    admission; ...", "Underwent {p} on {date} without complication.").

`title_forms` lists a title's forms (lower-cased); a note holds the evidence of a code when
one of them occurs in it as whole words (`found_in`), which is what the tests check for
every (admission, code) pair. The knowledge codes keep their own evidence, coder noise
included (7% of them are coded without any): this module does not touch it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from cec.icd.codes import Kind
from cec.synth.deid import Filler
from cec.synth.knowledge import Knowledge
from cec.synth.notes import ExtraEvidence

# ------------------------------------------------------------------------ the title's forms

_BRACKETED = re.compile(r"\s*(?:\[[^\[\]]*\]|\([^()]*\))")
# "of unspecified site", "or unspecified type", "unspecified part of": a qualifier with its
# noun, which alone would read "fracture of part of femur"
_NOUNS = r"(?:site|sites|part|parts|region|type|organ|side)"
_QUALIFIED_NOUN = re.compile(
    rf"\b(?:(?:of|at|in|or) )?unspecified {_NOUNS}\b(?! of\b)|\bunspecified {_NOUNS} of\b",
    re.IGNORECASE,
)
_QUALIFIERS = re.compile(
    r"\b(?:other and unspecified|other specified|not elsewhere classified|unspecified|"
    r"other(?! than| eye| side)|nos|nec)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z][\w']*")  # a hyphen ends a word: Non-ABO keeps ABO
_SPACES = re.compile(r"\s+")
# words that carry no meaning of their own: a segment of only these is dropped, and a
# segment does not start or end with a connector
_CONNECTORS = frozenset({"and", "or", "of", "with", "without", "in", "the", "at", "by", "to"})
_EMPTY_NOUNS = frozenset({"site", "sites", "part", "parts", "region", "type", "organ", "side"})
STOPWORDS = _CONNECTORS | _EMPTY_NOUNS | {"a", "an", "for", "on", "as", "from", "due", "not"}


def _case_folded(text: str) -> str:
    """Lower-case every word but acronyms and numerals (HIV, C7, IIIA), as a clinician
    writes a title in a sentence."""
    return _WORD.sub(
        lambda m: m.group() if len(m.group()) > 1 and m.group().isupper() else m.group().lower(),
        text,
    )


def _clean_segment(segment: str) -> str:
    """One comma-separated part of a title without its qualifiers; empty where nothing
    meaningful is left ("unspecified site"). Connectors left dangling by a removed
    qualifier go too ("of other" -> ""), others stay ("with or without mention of ...")."""
    plain = _QUALIFIERS.sub("", _QUALIFIED_NOUN.sub("", segment))
    words = _SPACES.sub(" ", plain).strip(" ;").split(" ")
    if plain != segment:
        while words and words[0].lower() in _CONNECTORS:
            words.pop(0)
        while words and words[-1].lower() in _CONNECTORS:
            words.pop()
    if all(w.lower() in STOPWORDS for w in words):
        return ""
    return " ".join(words)


def content_words(phrase: str) -> list[str]:
    """The words of a phrase that say something: not connectors, qualifiers or stopwords."""
    return [w for w in _WORD.findall(phrase.lower()) if w not in STOPWORDS and len(w) > 1]


@dataclass(frozen=True)
class TitleForms:
    """The ways a note may name a code: `title` as written, `lower`, `plain` (the
    paraphrase without qualifiers) and `head` (plain up to its first comma; None where that
    would leave fewer than two content words or is plain itself)."""

    title: str
    lower: str
    plain: str
    head: str | None

    def all(self) -> tuple[str, ...]:
        """Every form, lower-cased, each once: what `found_in` looks for."""
        forms = (self.lower, self.plain.lower(), (self.head or "").lower())
        return tuple(dict.fromkeys(f for f in forms if f))


def title_forms(title: str) -> TitleForms:
    """The forms of one d_icd long title. The paraphrase falls back to the lower-cased
    title where dropping the qualifiers would leave nothing ("Other", "Unspecified")."""
    title = _SPACES.sub(" ", title).strip()
    text = _case_folded(_BRACKETED.sub("", title))
    segments = [s for s in (_clean_segment(s) for s in text.split(",")) if s]
    plain = ", ".join(segments)
    if not content_words(plain):
        plain = title.lower()
    head = segments[0] if len(segments) > 1 else None
    if head is not None and len(content_words(head)) < 2:
        head = None
    return TitleForms(title=title, lower=title.lower(), plain=plain, head=head)


def phrase_pattern(forms: Sequence[str]) -> re.Pattern[str]:
    """A pattern for any of `forms` as whole words of a lower-cased text ("cough" is not
    found in "coughing"), longest first."""
    ordered = sorted(dict.fromkeys(f.lower() for f in forms), key=len, reverse=True)
    body = "|".join(re.escape(f) for f in ordered)
    return re.compile(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])")


# ------------------------------------------------------------------------------ the sentences

# Form of the title a sentence uses, with its weight: the paraphrase most often (clinicians
# rarely copy a title), the title as written least.
FORM_WEIGHTS = (("title", 0.2), ("lower", 0.15), ("plain", 0.4), ("head", 0.25))
# Section a background code's sentence goes to, with its weight
DIAGNOSIS_SECTIONS = (("diagnoses", 0.5), ("course", 0.3), ("history", 0.2))
PROCEDURE_SECTIONS = (("procedures", 0.7), ("course", 0.3))
P_ALSO_LISTED = 0.25  # a diagnosis written up elsewhere is listed among the diagnoses too
# {P}: the phrase with a capital first letter; {p}: as the form has it; {date}: a
# de-identified date of the stay
TEMPLATES: dict[tuple[Kind, str], tuple[str, ...]] = {
    ("diagnosis", "diagnoses"): ("{P}", "{P}", "{P}, stable"),
    ("diagnosis", "course"): (
        "# {P}: stable during this admission; no change to management.",
        "# {P}: noted on admission and monitored; no acute intervention needed.",
        "# {P}: continued outpatient management; follow up with PCP.",
        "Patient was also found to have {p}, managed supportively.",
        "{P} was addressed during this hospitalization.",
        "Also treated for {p} while inpatient.",
    ),
    ("diagnosis", "history"): ("- {P}", "- history of {p}", "- {P}, followed as outpatient"),
    ("procedure", "procedures"): ("{P}", "{P} ({date})", "{P} on {date}", "{P} at bedside"),
    ("procedure", "course"): (
        "Underwent {p} on {date} without complication.",
        "# s/p {p}: tolerated the procedure well.",
        "{P} was performed on {date}.",
        "On {date} the patient underwent {p}.",
    ),
}


def _weighted(rng: random.Random, choices: tuple[tuple[str, float], ...]) -> str:
    names = [name for name, _ in choices]
    return rng.choices(names, weights=[w for _, w in choices])[0]


class _Titles(Protocol):
    def title(self, code: str, kind: Kind) -> str | None: ...


class TitleEvidence:
    """Writes, and finds, the title-derived evidence of one ICD version's codes that its
    knowledge does not cover. Forms are computed once per code and kept (a 600-admission
    run meets a few thousand codes)."""

    def __init__(self, hierarchy: _Titles, knowledge: Knowledge) -> None:
        self.hierarchy = hierarchy
        self.knowledge = knowledge
        self.known = frozenset(c for g in knowledge.groups.values() for c in g)
        self._forms: dict[tuple[Kind, str], TitleForms] = {}
        self._patterns: dict[tuple[Kind, str], re.Pattern[str]] = {}

    def covers(self, code: str) -> bool:
        """Whether `code`'s evidence comes from a title here (not from the knowledge)."""
        return code not in self.known

    def forms(self, code: str, kind: Kind) -> TitleForms:
        key = (kind, code)
        forms = self._forms.get(key)
        if forms is None:
            title = self.hierarchy.title(code, kind)
            if not title:
                raise KeyError(f"{kind} code {code} has no title to write its evidence from")
            forms = self._forms[key] = title_forms(title)
        return forms

    def pattern(self, code: str, kind: Kind) -> re.Pattern[str]:
        """What `found_in` looks for: the title forms of a background code; the mentions
        (whole words) of a knowledge code, which its course heading and diagnosis lines
        draw from."""
        key = (kind, code)
        pattern = self._patterns.get(key)
        if pattern is None:
            if self.covers(code):
                phrases: Sequence[str] = self.forms(code, kind).all()
            else:
                phrases = self.knowledge.code(code).mentions
            pattern = self._patterns[key] = phrase_pattern(phrases)
        return pattern

    def found_in(self, text: str, code: str, kind: Kind) -> bool:
        """Whether a note holds evidence of `code`: one of its forms (or mentions) as whole
        words, case aside."""
        return self.pattern(code, kind).search(text.lower()) is not None

    def phrase(self, rng: random.Random, code: str, kind: Kind) -> str:
        """One seeded form of the code's title, as a sentence would use it."""
        forms = self.forms(code, kind)
        form = _weighted(rng, FORM_WEIGHTS)
        if form == "title":
            return forms.title
        if form == "lower":
            return forms.lower
        if form == "head" and forms.head is not None:
            return forms.head
        return forms.plain

    def _sentence(self, rng: random.Random, fill: Filler, code: str, kind: Kind, where: str) -> str:
        phrase = self.phrase(rng, code, kind)
        fill.context["p"] = phrase
        fill.context["P"] = phrase[:1].upper() + phrase[1:]
        return fill(rng.choice(TEMPLATES[(kind, where)]))

    def lines(
        self,
        rng: random.Random,
        admit: date,
        diagnoses: Sequence[str],
        procedures: Sequence[str],
    ) -> ExtraEvidence:
        """The sentences for the background codes of one admission, by section. `rng` is
        the admission's own (not the composer's): the knowledge text keeps its draws."""
        fill = Filler(rng, admit, {})
        extra = ExtraEvidence(rng)
        where_to: Mapping[str, list[str]] = {
            "diagnoses": extra.diagnoses,
            "course": extra.course,
            "history": extra.history,
            "procedures": extra.procedures,
        }
        for code in diagnoses:
            if not self.covers(code):
                continue
            where = _weighted(rng, DIAGNOSIS_SECTIONS)
            where_to[where].append(self._sentence(rng, fill, code, "diagnosis", where))
            if where != "diagnoses" and rng.random() < P_ALSO_LISTED:
                extra.diagnoses.append(self._sentence(rng, fill, code, "diagnosis", "diagnoses"))
        for code in procedures:
            if not self.covers(code):
                continue
            where = _weighted(rng, PROCEDURE_SECTIONS)
            where_to[where].append(self._sentence(rng, fill, code, "procedure", where))
        return extra
